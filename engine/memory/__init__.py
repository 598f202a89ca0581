"""Memory services: memorize, batch memorize, smart recall (exact and org-wide), digest, similar and
segment, the vector-index reconciler, LLM extraction. May import stores and the layers below."""
