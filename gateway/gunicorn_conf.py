"""Gunicorn settings for the gateway: ``gunicorn -c python:memrelay.gateway.gunicorn_conf memrelay.gateway.wsgi:app``.

The app is never preloaded: each gunicorn worker imports ``memrelay.gateway.wsgi`` after the fork and builds
its own services there (SQL pool, Redis client, Milvus client, background threads), so no connection, lock
or thread crosses a fork — the master runs no thread at all. :func:`when_ready` refuses to start a master that has built any of it.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from gunicorn.glogging import Logger

from memrelay.engine.core.threads import limit_blas_threads
from memrelay.gateway.logredact import redact_atoms

limit_blas_threads()  # the master sets it before its workers import numpy (also when gunicorn is run directly)

preload_app = False
worker_class = "gthread"
threads = 8
graceful_timeout = 10
timeout = 60
accesslog = "-"
logger_class = "memrelay.gateway.gunicorn_conf.RedactingLogger"
# gunicorn 27's control socket runs an asyncio thread in the master (stopped and restarted around each fork)
# on one shared default path ($HOME/.gunicorn/gunicorn.ctl); memrelay uses none of its commands.
control_socket_disable = True



class RedactingLogger(Logger):
    """gunicorn's logger with credentials masked in access-log lines (webhook path tokens, ``?token=``,
    API key headers)."""

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        return redact_atoms(super().atoms(resp, req, environ, request_time))


BUILT_AFTER_FORK = ("memrelay.gateway.wsgi", "memrelay.gateway.app", "memrelay.composition")


def when_ready(server: Any) -> None:
    """Fail fast if the master process imported the app (e.g. someone added ``--preload``)."""
    built = [m for m in BUILT_AFTER_FORK if m in sys.modules]
    if built:
        raise RuntimeError(f"gunicorn master built {built}: the gateway must be built after fork (no --preload)")


def post_worker_init(worker: Any) -> None:
    """Warm the web worker before it accepts its first connection (see :mod:`memrelay.warmup`).

    The warm-up runs in a thread while this one keeps the worker's heartbeat going (the arbiter kills a
    worker that is silent for ``timeout`` seconds, and importing litellm under load can take tens)."""
    from memrelay.gateway.app import warm_app

    done = threading.Event()

    def run() -> None:
        try:
            warm_app(worker.wsgi)
        finally:
            done.set()

    threading.Thread(target=run, name="memrelay-warm", daemon=True).start()
    while not done.wait(1.0):
        worker.notify()
