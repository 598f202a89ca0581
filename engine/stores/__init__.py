"""SQL stores, the source of truth: models and migrations, tenancy, collections, records, properties,
search, memories, the event log, the outbox, sources, metered LLM usage, retention. All SQL lives here.
May import core, domain and adapters."""
