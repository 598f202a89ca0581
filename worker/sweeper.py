"""Periodic maintenance run inside workers (one at a time, via a Redis lock):
re-enqueue events the log says are due, and purge expired soft deletes."""

from __future__ import annotations

import logging
import threading

import redis

from memrelay.composition import Services
from memrelay.engine.stores.retention import purge_history
from memrelay.queue.enqueue import enqueue_events, waiting_in_redis
from memrelay.worker.periodic import run_periodically, try_lock

log = logging.getLogger(__name__)
SWEEP_EVERY_S = 10
PURGE_EVERY_S = 3600
SCHEDULE_EVERY_S = 60


def sweep_once(eng: Services, conn: redis.Redis, *, stale_after_s: int = 30) -> int:
    """Enqueue every event received but not waiting in Redis, failed and due, or whose lease expired."""
    due = eng.events.due(stale_after_s=stale_after_s)
    waiting = waiting_in_redis(conn, due)
    return len(enqueue_events(eng, conn, [e for e in due if e not in waiting]))


def sweep_round(eng: Services, conn: redis.Redis) -> None:
    """One maintenance round; each task runs in one worker at a time at its own pace."""
    if try_lock(conn, "sweeper", SWEEP_EVERY_S - 1):
        n = sweep_once(eng, conn)
        if n:
            log.info("sweeper re-enqueued %d events", n)
    if try_lock(conn, "workflow-tick", SCHEDULE_EVERY_S):
        from memrelay.workflows.triggers import tick

        tick(eng)
    if try_lock(conn, "purge", PURGE_EVERY_S):
        purged = eng.records.purge_expired()
        if purged:
            log.info("purged %d expired soft-deleted records", purged)
        log.info("retention: %s", purge_history(eng.db))


def start_sweeper(eng: Services, conn: redis.Redis, stop: threading.Event) -> threading.Thread:
    """A daemon thread running the sweep (and the hourly purge) until ``stop`` is set."""
    return run_periodically("sweeper", SWEEP_EVERY_S, lambda: sweep_round(eng, conn), stop)
