"""Background maintenance loops in worker processes, coordinated across workers through fenced Redis leases.

Each maintenance task (sweeper, webhook dispatcher, workflow tick, purge, index reconcile) runs in
:func:`run_round`: one worker at a time holds the task's :class:`Lease` — a redis-py :class:`~redis.lock.Lock`
with a random token, whose extend and release are compare-and-set Lua scripts — with a TTL comfortably longer
than the round's deadline. The round calls :meth:`Round.guard` before every write the lease guards: it
re-checks (and renews) the lease and stops the round once its deadline has passed, so a worker that lost its
lease (paused past the TTL) or overran never keeps writing. The lease is released when the round ends; a
separate *pace* key (set once per period) keeps each task at its own rhythm however many workers run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import redis
from redis.exceptions import LockError

from memrelay.engine.core.errors import Conflict
from memrelay.queue import redis_keys

log = logging.getLogger(__name__)
LEASE_TTL_FACTOR = 2  # a lease outlives its round's deadline by this factor (and is renewed at every guard)


class LeaseLost(Conflict):
    """A maintenance lease is no longer held by this worker (it expired and someone else may hold it)."""

    code = "lease_lost"


class RoundOver(Conflict):
    """A maintenance round reached its deadline; the rest waits for the next round."""

    code = "round_over"


class Lease:
    """A fenced, expiring Redis lease on one maintenance task."""

    def __init__(self, conn: redis.Redis, name: str, ttl_s: float):
        self.name = name
        self._lock = conn.lock(redis_keys.lock(name), timeout=ttl_s, blocking=False, thread_local=False)

    def acquire(self) -> bool:
        """Take the lease; False when another worker holds it or Redis is unreachable."""
        try:
            return bool(self._lock.acquire(blocking=False))
        except redis.RedisError:
            return False

    def check(self) -> None:
        """Compare-and-extend: renew the TTL if the lease is still ours, else raise :class:`LeaseLost`."""
        try:
            self._lock.reacquire()
        except (LockError, redis.RedisError) as exc:
            raise LeaseLost(f"lease {self.name!r} lost: {exc}") from exc

    def release(self) -> bool:
        """Compare-and-delete: give the lease back if it is still ours (True)."""
        try:
            self._lock.release()
            return True
        except (LockError, redis.RedisError) as exc:
            log.warning("lease %r was not ours to release any more: %s", self.name, exc)
            return False


class Round:
    """One maintenance round: its lease and its deadline."""

    def __init__(self, lease: Lease, deadline_s: float):
        self.lease = lease
        self.deadline = time.monotonic() + deadline_s

    def guard(self) -> None:
        """Call before every write the lease guards: raises :class:`RoundOver` past the deadline and
        :class:`LeaseLost` when the lease is no longer ours (renewing it otherwise)."""
        if time.monotonic() > self.deadline:
            raise RoundOver(f"{self.lease.name} round reached its deadline")
        self.lease.check()


def run_round(conn: redis.Redis, name: str, *, every_s: float, deadline_s: float,
              body: Callable[[Round], object]) -> bool:
    """Run ``body`` once if no other worker holds task ``name``'s lease and the task is due this period.

    The lease (TTL :data:`LEASE_TTL_FACTOR` × ``deadline_s``) is released when the round ends. Returns True
    when the round ran (to completion or up to its deadline)."""
    lease = Lease(conn, name, ttl_s=max(1.0, deadline_s * LEASE_TTL_FACTOR))
    if not lease.acquire():
        return False
    try:
        try:
            due = conn.set(redis_keys.pace(name), "1", nx=True, px=max(1, int(every_s * 1000)))
        except redis.RedisError:
            return False
        if not due:
            return False
        try:
            body(Round(lease, deadline_s))
        except RoundOver as exc:
            log.info("%s", exc.message)
        except LeaseLost as exc:
            log.warning("%s; the round stopped before its next write", exc.message)
        return True
    finally:
        lease.release()


def run_periodically(name: str, every_s: float, tick: Callable[[], object], stop: threading.Event) -> threading.Thread:
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
