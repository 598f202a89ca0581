"""RQ job: a scheduled CRM sync of one source (a thin wrapper around ``memrelay.engine.ingest.backfill.sync_source``).

Schedule it from Python (a worker started by ``memrelay up``/``memrelay worker`` runs RQ's scheduler)::

    from memrelay.worker.jobs.sync import schedule_sync
    schedule_sync(conn, "src_123", every_s=900)      # first run now, then every 15 minutes

Each run is incremental from the previous finished run (or resumes an unfinished one) and, with
``reschedule_s``, enqueues the next run when it ends — also when it fails, after which the failure still
goes to RQ's failed registry. A per-source Redis lock makes overlapping runs skip. RQ 3's own cron
(``rq cron <config.py>`` with ``rq.cron.register(sync_source, "default", args=("src_123",),
interval=900)``) works as well.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import redis
from rq import get_current_job

from memrelay.connectors.timeutil import parse_datetime
from memrelay.engine.core.errors import BadRequest
from memrelay.queue import redis_keys
from memrelay.queue.connection import queue
from memrelay.worker.context import get_engine

SYNC_QUEUE = "default"
SYNC_JOB_TIMEOUT_S = 6 * 3600


def sync_source(source_id: str, since: str | None = None, memories: bool = True,
                reschedule_s: int | None = None) -> dict[str, Any]:
    """Sync one source from its CRM; ``since`` is an ISO date/time. Failures raise (RQ retries/records)."""
    from memrelay.engine.ingest.backfill import sync_source as run

    when = parse_datetime(since) if since else None
    if since and when is None:
        raise BadRequest(f"invalid since {since!r}: use an ISO date or date-time")
    job = get_current_job()
    conn = job.connection if job is not None else None
    lock = redis_keys.lock(f"sync:{source_id}")
    if conn is not None and not conn.set(lock, job.id if job else "1", nx=True, ex=SYNC_JOB_TIMEOUT_S):
        _reschedule(conn, source_id, memories, reschedule_s)
        return {"sourceId": source_id, "skipped": "another sync of this source is running"}
    try:
        return {"sourceId": source_id, **run(get_engine(), source_id, since=when, memories=memories).to_dict()}
    finally:
        if conn is not None:
            conn.delete(lock)
            _reschedule(conn, source_id, memories, reschedule_s)


def _reschedule(conn: redis.Redis, source_id: str, memories: bool, every_s: int | None) -> None:
    if every_s:
        schedule_sync(conn, source_id, every_s=every_s, first_in_s=every_s, memories=memories)


def schedule_sync(conn: redis.Redis, source_id: str, *, every_s: int | None = None, first_in_s: int = 0,
                  since: str | None = None, memories: bool = True) -> str:
    """Enqueue a sync of ``source_id`` in ``first_in_s`` seconds (repeating every ``every_s`` if given).
    Returns the job id."""
    q = queue(conn, SYNC_QUEUE)
    kwargs = {"source_id": source_id, "since": since, "memories": memories, "reschedule_s": every_s}
    options = {"job_timeout": SYNC_JOB_TIMEOUT_S, "result_ttl": 7 * 86400, "failure_ttl": 7 * 86400,
               "description": f"CRM sync of {source_id}"}
    if first_in_s > 0:
        job = q.enqueue_in(timedelta(seconds=first_in_s), sync_source, kwargs=kwargs, **options)
    else:
        job = q.enqueue(sync_source, kwargs=kwargs, **options)
    return job.id
