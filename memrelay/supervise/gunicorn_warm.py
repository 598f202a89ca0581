"""Gunicorn settings of ``memrelay serve`` and of `memrelay up`'s web workers: the gateway's settings
(:mod:`memrelay.gateway.gunicorn_conf`) plus a warm master.

Before it forks its web workers the master loads what every worker needs and what a fork shares untouched —
modules (also those the services import), the local embedder's weights, the token encoding
(:func:`memrelay.supervise.warm_parent.preload_parent`) — and freezes them out of the garbage collector, so the
workers share those pages copy-on-write instead of loading a copy each. `memrelay up` runs no gunicorn master: its
supervisor, which loaded all of it already, forks the web workers itself with these settings
(:mod:`memrelay.supervise.web_workers`), unless it cannot fork safely. The app itself is still built in each
worker after the fork (its SQL pool, Redis client, Milvus client and threads never cross a fork):
:func:`on_starting` refuses a master that built it (``--preload``) and :func:`when_ready` one that runs a thread.
Each worker then warms itself before it serves (``post_worker_init``).
"""

from __future__ import annotations

import sys
from typing import Any

from memrelay.gateway.gunicorn_conf import (  # noqa: F401  (gunicorn reads these names from this module)
    RedactingLogger,
    accesslog,
    control_socket_disable,
    graceful_timeout,
    logger_class,
    post_worker_init,
    preload_app,
    threads,
    timeout,
    worker_class,
)

BUILT_AFTER_FORK = ("memrelay.gateway.wsgi",)
"""Importing it builds the app and its services: only a web worker may, after the fork."""


def _refuse_a_built_app() -> None:
    built = [m for m in BUILT_AFTER_FORK if m in sys.modules]
    if built:
        raise RuntimeError(
            f"gunicorn master built {built}: the gateway must be built after fork (no --preload)"
        )


def on_starting(server: Any) -> None:
    """In the master, before any worker is forked: refuse a built app, then load what the workers share."""
    _refuse_a_built_app()
    from memrelay.engine.core.settings import load_settings
    from memrelay.supervise.warm_parent import preload_parent

    preload_parent(load_settings())


def when_ready(server: Any) -> None:
    """Fail fast if the master built the app or runs a thread (neither may be copied into a worker)."""
    from memrelay.warmup import fork_safe_or_raise

    _refuse_a_built_app()
    fork_safe_or_raise("gunicorn master")


WORKER_TITLE = "gunicorn: worker [memrelay.gateway.wsgi:app]"


def post_fork(server: Any, worker: Any) -> None:
    """In each web worker, right after the fork: its own command line (it would show its master's)."""
    from memrelay.supervise.forked import set_process_title

    set_process_title(WORKER_TITLE)
