"""Worker liveness as every process sees it: how often a worker beats and which workers count as alive.

Workers (:class:`memrelay.worker.runtime.MemrelayWorker`) beat at least every :data:`IDLE_BEAT_S` while idle
(rq's blocking dequeue waits ``WORKER_TTL_S - 15`` seconds) and every 2 s while busy; ``/readyz`` counts only
workers whose last beat is younger than :data:`STALE_AFTER_S`, so a killed worker stops counting within
seconds instead of when its Redis key expires.
"""

from __future__ import annotations

from datetime import UTC, datetime

import redis
from rq import Worker

WORKER_TTL_S = 20
"""rq ``worker_ttl``: the dequeue timeout is ``WORKER_TTL_S - 15`` = the idle beat."""
IDLE_BEAT_S = WORKER_TTL_S - 15
STALE_AFTER_S = 3 * IDLE_BEAT_S
"""A worker that has not beaten for this long is not counted as alive."""


def live_workers(conn: redis.Redis, *, now: datetime | None = None) -> list[str]:
    """Names of the registered workers that beat within :data:`STALE_AFTER_S`."""
    now = now or datetime.now(UTC)
    out = []
    for w in Worker.all(connection=conn):
        beat = w.last_heartbeat
        if beat is None:
            continue
        if beat.tzinfo is None:
            beat = beat.replace(tzinfo=UTC)
        if (now - beat).total_seconds() <= STALE_AFTER_S:
            out.append(w.name)
    return out
