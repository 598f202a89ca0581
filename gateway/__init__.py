"""Flask edge: REST API and webhook receivers. Verifies, records, enqueues, answers fast.

May import the composition root, the queue and everything below; never ``memrelay.worker``."""
