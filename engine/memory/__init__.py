"""Memory services: memorize, batch memorize, smart recall (exact and org-wide), digest, similar and
segment, the vector index kept in step with SQL (``MemoryIndex``), LLM extraction and deep recall.
May import stores and the layers below."""
