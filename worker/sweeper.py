"""Periodic maintenance run inside workers (one at a time, via a Redis lock): recover the jobs of dead
workers, re-enqueue events the log says are due, start due scheduled workflows, purge expired soft deletes."""

from __future__ import annotations

import logging
import threading

import redis
from rq.registry import StartedJobRegistry

from memrelay.composition import Services
from memrelay.engine.stores.retention import purge_history
from memrelay.queue.connection import QUEUES
from memrelay.queue.jobs import enqueue_each, live_job_ids, workflow_run_enqueuer
from memrelay.worker.periodic import run_periodically, try_lock
from memrelay.workflows.triggers import tick

log = logging.getLogger(__name__)
SWEEP_EVERY_S = 5
PURGE_EVERY_S = 3600
SCHEDULE_EVERY_S = 60


def recover_abandoned(services: Services, conn: redis.Redis) -> int:
    """Fail (or retry, per the job table) the jobs of workers that stopped heart-beating, then give back the
    leases of events whose job is no longer alive in Redis. Returns how many leases were given back."""
    for name in QUEUES:
        StartedJobRegistry(name, connection=conn).cleanup()
    leased = services.events.leased()
    alive = live_job_ids(conn, leased)
    return services.events.release([e for e in leased if e not in alive])


def sweep_once(services: Services, conn: redis.Redis, *, stale_after_s: int = 30) -> int:
    """Recover dead workers' events, then enqueue every event received but not waiting in Redis, failed and
    due, or whose lease was given back or expired. Returns how many were enqueued."""
    released = recover_abandoned(services, conn)
    if released:
        log.warning("re-driving %d event(s) whose worker died", released)
    due = services.events.due(stale_after_s=stale_after_s)
    waiting = live_job_ids(conn, due)
    return len(enqueue_each(conn, "process_event", [e for e in due if e not in waiting]))


def sweep_round(services: Services, conn: redis.Redis) -> None:
    """One maintenance round; each task runs in one worker at a time at its own pace."""
    if try_lock(conn, "sweeper", SWEEP_EVERY_S - 1):
        n = sweep_once(services, conn)
        if n:
            log.info("sweeper enqueued %d events", n)
    if try_lock(conn, "workflow-tick", SCHEDULE_EVERY_S):
        tick(services, enqueue=workflow_run_enqueuer(conn))
    if try_lock(conn, "purge", PURGE_EVERY_S):
        purged = services.records.purge_expired()
        if purged:
            log.info("purged %d expired soft-deleted records", purged)
        log.info("retention: %s", purge_history(services.db))


def start_sweeper(services: Services, conn: redis.Redis, stop: threading.Event,
                  every_s: float = SWEEP_EVERY_S) -> threading.Thread:
    """A daemon thread running the sweep (and the hourly purge) until ``stop`` is set."""
    return run_periodically("sweeper", every_s, lambda: sweep_round(services, conn), stop)
