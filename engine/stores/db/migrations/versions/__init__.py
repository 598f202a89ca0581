"""Alembic revisions, one module per schema step, identical on SQLite and PostgreSQL. Self-contained:
they import alembic and SQLAlchemy, never the current models."""
