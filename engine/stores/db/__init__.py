"""SQL source of truth: models, sessions and migrations (SQLite embedded, PostgreSQL at scale)."""
