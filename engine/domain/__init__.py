"""Domain rules with no I/O: type coercion, offline fact extraction, semantic topics and conflicts,
channel rules, guardrails, the starter schemas, and the one template language (``templates``).
May import ``memrelay.engine.core`` only."""
