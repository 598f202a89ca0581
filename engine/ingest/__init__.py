"""Ingest: applying inbound events (``EventPipeline``: mapping, identity, merges, deletions) and CRM
backfill/sync (``Backfill``) through the record store and memorize. May import ``memrelay.connectors`` and every engine layer."""
