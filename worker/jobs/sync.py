"""Job ``sync_source``: a scheduled CRM sync of one source (``services.backfill.sync_source``).

Schedule it with :func:`schedule_sync` (the workers' scheduler thread runs delayed jobs)::

    schedule_sync(conn, "src_123", every_s=900)      # first run now, then every 15 minutes

Each run is incremental from the previous finished run (or resumes an unfinished one) and, with
``reschedule_s``, enqueues the next run when it ends — also when it fails, after which the failure still
goes to RQ's failed registry. A per-source Redis lock makes overlapping runs skip.
"""

from __future__ import annotations

from typing import Any

import redis

from memrelay.connectors.timeutil import parse_datetime
from memrelay.engine.core.errors import BadRequest
from memrelay.queue import redis_keys
from memrelay.queue.jobs import JOBS, enqueue
from memrelay.worker.context import JobContext


def sync_source(ctx: JobContext, source_id: str, since: str | None = None, memories: bool = True,
                reschedule_s: int | None = None) -> dict[str, Any]:
    """Sync one source from its CRM; ``since`` is an ISO date/time. Failures raise (RQ records them)."""
    when = parse_datetime(since) if since else None
    if since and when is None:
        raise BadRequest(f"invalid since {since!r}: use an ISO date or date-time")
    conn = ctx.redis
    lock = redis_keys.lock(f"sync:{source_id}")
    if not conn.set(lock, "1", nx=True, ex=JOBS["sync_source"].timeout_s):
        _reschedule(conn, source_id, memories, reschedule_s)
        return {"sourceId": source_id, "skipped": "another sync of this source is running"}
    try:
        summary = ctx.services.backfill.sync_source(source_id, since=when, memories=memories)
        return {"sourceId": source_id, **summary.to_dict()}
    finally:
        conn.delete(lock)
        _reschedule(conn, source_id, memories, reschedule_s)


def _reschedule(conn: redis.Redis, source_id: str, memories: bool, every_s: int | None) -> None:
    if every_s:
        schedule_sync(conn, source_id, every_s=every_s, first_in_s=every_s, memories=memories)


def schedule_sync(conn: redis.Redis, source_id: str, *, every_s: int | None = None, first_in_s: int = 0,
                  since: str | None = None, memories: bool = True) -> str:
    """Enqueue a sync of ``source_id`` in ``first_in_s`` seconds (repeating every ``every_s`` if given).
    Returns the job id."""
    kwargs = {"source_id": source_id, "since": since, "memories": memories, "reschedule_s": every_s}
    return enqueue(conn, "sync_source", kwargs=kwargs, delay_s=first_in_s or None).id
