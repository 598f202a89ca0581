"""Background maintenance loops in worker processes, coordinated across workers through Redis leases."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import redis

from memrelay.queue import redis_keys

log = logging.getLogger(__name__)


def try_lock(conn: redis.Redis, name: str, ttl_s: float) -> bool:
    """Take a lease that expires by itself; False when another worker holds it or Redis is unreachable."""
    try:
        return bool(conn.set(redis_keys.lock(name), "1", nx=True, px=max(1, int(ttl_s * 1000))))
    except redis.RedisError:
        return False


def run_periodically(name: str, every_s: float, tick: Callable[[], None], stop: threading.Event) -> threading.Thread:
    """A daemon thread calling ``tick`` every ``every_s`` until ``stop``; a failing round is logged, and the
    next round runs as usual."""

    def loop() -> None:
        while not stop.wait(every_s):
            try:
                tick()
            except Exception:
                log.exception("%s round failed", name)

    thread = threading.Thread(target=loop, name=f"memrelay-{name}", daemon=True)
    thread.start()
    return thread
