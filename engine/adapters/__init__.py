"""Adapters to engines outside the SQL store: the Milvus vector index, embedders, the litellm client.
No SQL. May import ``memrelay.engine.core`` and ``memrelay.engine.domain``."""
