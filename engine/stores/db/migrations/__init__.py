"""Alembic migrations (run by ``memrelay migrate``); they may import the models in ``memrelay.engine.stores.db``."""
