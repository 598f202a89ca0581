"""Enqueueing helpers shared by the gateway, the sweeper and the CLI."""

from __future__ import annotations

import logging

import redis

from engine.core import Engine
from worker.connection import queue

log = logging.getLogger(__name__)
EVENT_JOB_TIMEOUT_S = 600


def enqueue_events(eng: Engine, conn: redis.Redis, event_ids: list[str]) -> list[str]:
    """Enqueue one job per event (job id = event id). Returns the ids enqueued; on a Redis outage the
    events stay 'received' in the log and the sweeper enqueues them later — nothing is lost."""
    from worker.jobs.events import process_event

    if not event_ids:
        return []
    done: list[str] = []
    try:
        q = queue(conn, "events")
        for eid in event_ids:
            q.enqueue_call(process_event, args=(eid,), job_id=eid, timeout=EVENT_JOB_TIMEOUT_S,
                           result_ttl=3600, failure_ttl=7 * 86400, description=f"event {eid}")
            done.append(eid)
    except redis.RedisError as exc:
        log.warning("could not enqueue events (%s); the sweeper will retry", exc)
    eng.events.mark_queued(done)
    return done
