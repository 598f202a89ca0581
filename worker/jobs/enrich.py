"""Enrichment jobs (``memrelay.engine.enrichment``): one chunk of a whole-collection run, the change-feed
sweep that marks inferred properties stale, and the per-org refresh of what is due; plus the worker tick that
enqueues the sweep. Sweep and refresh have fixed job ids and are only enqueued when not already live, so
bursts of changes collapse into one job (debounced by the stale marks' due times). The refresh is enqueued by
the sweep once a mark is due, never scheduled ahead: a refresh scheduled for a mark due tomorrow (``daily``)
would otherwise hold the fixed job id and delay one due in seconds."""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Any

import redis

from memrelay.composition import Services
from memrelay.engine.core.util import as_aware, utcnow
from memrelay.queue.jobs import enqueue, live_job_ids, spec
from memrelay.worker.context import JobContext
from memrelay.worker.periodic import run_periodically, run_round

log = logging.getLogger(__name__)
SWEEP_EVERY_S = 15.0


def run_enrichment_chunk(ctx: JobContext, run_id: str, org_id: str, chunk_index: int) -> dict[str, Any]:
    """Infer and write chunk ``chunk_index`` of enrichment run ``run_id`` (once; failures are recorded)."""
    return ctx.services.enrichment.process_chunk(run_id, org_id, chunk_index)


def sweep_enrichment(ctx: JobContext) -> dict[str, Any]:
    """Mark stale the inferred properties whose evidence changed, in every org that declares any, and enqueue
    the refresh of each org with a mark due now (by the enrichment clock)."""
    enrichment = ctx.services.enrichment
    swept = [enrichment.sweep(org_id) for org_id in enrichment.org_ids()]
    now = enrichment.clock()
    refreshing = [r["orgId"] for r in swept if r["nextDueAt"] is not None and as_aware(r["nextDueAt"]) <= now]
    for org_id in refreshing:
        enqueue_once(ctx.redis, "refresh_inferred", org_id)
    return {"orgs": len(swept), "marked": sum(r["marked"] for r in swept), "refreshing": len(refreshing)}


def refresh_inferred(ctx: JobContext, org_id: str) -> dict[str, Any]:
    """Re-infer the org's due stale properties (one batch); the next sweep enqueues what remains."""
    result = ctx.services.enrichment.refresh_due(org_id)
    return {**result, "nextDueAt": result["nextDueAt"].isoformat() if result["nextDueAt"] else None}


def enqueue_once(conn: redis.Redis, name: str, *args: Any, at: datetime | None = None) -> bool:
    """Enqueue job ``name`` (which has a fixed job id) at ``at`` unless it is already queued, scheduled or
    running. Returns whether it was enqueued."""
    job_id = spec(name).job_id_for(args, {})
    assert job_id is not None, name
    if job_id in live_job_ids(conn, [job_id]):
        return False
    delay = (as_aware(at) - utcnow()).total_seconds() if at is not None else 0.0
    enqueue(conn, name, *args, delay_s=delay if delay > 0.5 else None)
    return True


def start_enrichment(services: Services, conn: redis.Redis, stop: threading.Event,
                     every_s: float = SWEEP_EVERY_S) -> threading.Thread:
    """A daemon thread enqueueing the sweep about every ``every_s``, from one worker at a time."""

    def tick() -> None:
        run_round(conn, "enrichment-sweep", every_s=every_s, deadline_s=every_s,
                  body=lambda _round: enqueue_once(conn, "sweep_enrichment"))

    return run_periodically("enrichment-sweep", every_s, tick, stop)
