"""Domain rules with no I/O: type coercion, offline fact extraction, semantic topics and conflicts,
channel rules, guardrails, the starter schemas. May import ``memrelay.engine.core`` only."""
