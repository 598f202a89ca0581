"""RQ job functions: thin calls into the engine, taking ids and plain JSON."""
