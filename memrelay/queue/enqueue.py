"""Enqueueing helpers shared by the gateway, the sweeper and the CLI."""

from __future__ import annotations

import logging

import redis
from rq.job import Job

from memrelay.composition import Services
from memrelay.queue.connection import queue

log = logging.getLogger(__name__)
EVENT_JOB_TIMEOUT_S = 600


def enqueue_events(eng: Services, conn: redis.Redis, event_ids: list[str]) -> list[str]:
    """Enqueue one job per event (job id = event id). Returns the ids enqueued; on a Redis outage the
    events stay 'received' in the log and the sweeper enqueues them later — nothing is lost.

    The log keeps no 'queued' state: whether a job is waiting is asked of Redis itself (see
    ``waiting_in_redis``), which saves a write per delivery and cannot disagree with the queue."""
    from memrelay.worker.jobs.events import process_event

    if not event_ids:
        return []
    try:
        q = queue(conn, "events")
        with conn.pipeline() as pipe:  # one round trip for the whole delivery
            for eid in event_ids:
                q.enqueue_call(process_event, args=(eid,), job_id=eid, timeout=EVENT_JOB_TIMEOUT_S,
                               result_ttl=3600, failure_ttl=7 * 86400, description=f"event {eid}", pipeline=pipe)
            pipe.execute()
    except redis.RedisError as exc:
        log.warning("could not enqueue events (%s); the sweeper will retry", exc)
        return []
    return list(event_ids)


def waiting_in_redis(conn: redis.Redis, event_ids: list[str]) -> set[str]:
    """Ids whose job still exists in Redis (queued, scheduled or running): the sweeper leaves them alone."""
    if not event_ids:
        return set()
    with conn.pipeline() as pipe:
        for eid in event_ids:
            pipe.hget(f"{Job.redis_job_namespace_prefix}{eid}", "status")
        statuses = pipe.execute()
    return {eid for eid, st in zip(event_ids, statuses, strict=True)
            if st is not None and st.decode() in ("queued", "scheduled", "started", "deferred")}
