"""SQL source of truth: models, sessions and migrations (SQLite embedded, PostgreSQL at scale).

May import ``memrelay.engine.core`` only; the stores beside it use these models."""
