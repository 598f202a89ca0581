"""The ``memrelay`` command: up, serve, worker, keys, migrate, events, sync, workflows, index
maintenance and doctor. The top edge: may import everything."""
