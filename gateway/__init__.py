"""Flask edge: REST API and webhook receivers. Verifies, records, enqueues, answers fast."""
