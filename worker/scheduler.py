"""rq's scheduler (delayed jobs, retries with intervals) run as a thread of the worker process.

rq's ``work(with_scheduler=True)`` forks a scheduler process from the worker; memrelay's workers never
fork after building their services, so the same :class:`rq.scheduler.RQScheduler` rounds run here in a
daemon thread instead. One worker at a time holds rq's per-queue scheduler locks; when it dies, another
takes them over once they expire (about a minute).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import redis
from rq.scheduler import RQScheduler

log = logging.getLogger(__name__)
SCHEDULE_EVERY_S = 1.0


def schedule_once(conn: redis.Redis, queues: Sequence[str]) -> None:
    """Enqueue every scheduled job that is due on ``queues`` (when no other scheduler holds their locks)."""
    scheduler = RQScheduler(list(queues), connection=conn)
    scheduler.acquire_locks()
    if scheduler.acquired_locks:
        try:
            scheduler.enqueue_scheduled_jobs()
        finally:
            scheduler.release_locks()


def start_scheduler(conn: redis.Redis, queues: Sequence[str], stop: threading.Event,
                    every_s: float = SCHEDULE_EVERY_S) -> threading.Thread:
    """A daemon thread running rq scheduler rounds every ``every_s`` until ``stop``."""
    scheduler = RQScheduler(list(queues), connection=conn, interval=max(1, int(every_s)))

    def loop() -> None:
        registered = False
        while not stop.is_set():
            try:
                if scheduler.acquired_locks != set(queues):  # cheap: one script call per queue
                    scheduler.acquire_locks()
                if scheduler.acquired_locks:
                    if not registered:
                        scheduler.register_birth()
                        registered = True
                    scheduler.heartbeat()
                    scheduler.enqueue_scheduled_jobs()
            except redis.RedisError as exc:
                log.warning("scheduler round failed: %s", exc)
            except Exception:
                log.exception("scheduler round failed")
            stop.wait(every_s)
        try:
            scheduler.release_locks()
            if registered:
                scheduler.register_death()
        except redis.RedisError:
            pass

    thread = threading.Thread(target=loop, name="memrelay-scheduler", daemon=True)
    thread.start()
    return thread
