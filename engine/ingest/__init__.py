"""Ingest: applying inbound events (mapping, identity, merges, deletions) and CRM backfill/sync
through the stores and memory services. May import ``memrelay.connectors`` and every engine layer."""
