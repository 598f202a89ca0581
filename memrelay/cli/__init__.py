"""The ``memrelay`` command: up, serve, worker, keys, migrate, events, sync, workflows, index
maintenance and doctor. The top edge: may import everything."""

from memrelay.engine.core.threads import limit_blas_threads

limit_blas_threads()  # before any command module imports numpy: its BLAS pool is sized when it loads
