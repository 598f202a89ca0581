"""Proactive enrichment endpoints: whole-collection runs of an inferred property (start, status, resume) and
the stale inferred properties waiting for a refresh. Chunks run as ``run_enrichment_chunk`` jobs."""

from __future__ import annotations

from typing import Any

import redis
from flask import Blueprint

from memrelay.engine.core.errors import QueueUnavailable
from memrelay.engine.enrichment.runs import EnrichmentRunRequest
from memrelay.engine.stores.tenancy import KeyInfo
from memrelay.gateway.api import endpoint
from memrelay.gateway.schemas import enrichment as sch
from memrelay.gateway.state import state
from memrelay.queue.connection import require_queue
from memrelay.queue.jobs import enqueue

bp = Blueprint("enrichment", __name__, url_prefix="/api/v1/enrichment")


def _enqueue_chunks(org_id: str, run_id: str, chunks: list[int]) -> None:
    conn = state().redis
    try:
        with conn.pipeline() as pipe:
            for index in chunks:
                enqueue(conn, "run_enrichment_chunk", run_id, org_id, index, pipeline=pipe)
            pipe.execute()
    except redis.RedisError as exc:
        raise QueueUnavailable(f"the job queue (Redis) is unavailable: {exc.__class__.__name__}; "
                               f"resume run {run_id} once it is back") from exc


@endpoint(bp, "/runs", scope="write", body=EnrichmentRunRequest, response=sch.EnrichmentRun,
          also={202: sch.EnrichmentRun}, errors=(402, 404))
def start_run(auth: KeyInfo, body: EnrichmentRunRequest) -> tuple[dict[str, Any], int]:
    """Infer an inferred property for every record of a collection (or a search filter's matches) in
    background chunks. An LLM run is estimated first and refused (402) beyond the org's budget; ``dryRun``
    only answers the count and the estimate."""
    enrichment = state().services.enrichment
    if body.dryRun:
        return enrichment.start_run(auth.org_id, body), 200
    require_queue(state().redis)  # refuse (503) before the run exists
    run = enrichment.start_run(auth.org_id, body)
    _enqueue_chunks(auth.org_id, run["runId"], list(range(run["chunks"]["total"])))
    return run, 202


@endpoint(bp, "/runs/<run_id>", methods=("GET",), scope="read", response=sch.EnrichmentRun)
def run_status(auth: KeyInfo, run_id: str) -> dict[str, Any]:
    """Status, progress (processed/total), counts by outcome, chunks, cost estimate and cost of a run."""
    return state().services.enrichment.status(auth.org_id, run_id)


@endpoint(bp, "/runs/<run_id>/resume", scope="write", response=sch.EnrichmentRun, status=202, errors=(409,))
def resume_run(auth: KeyInfo, run_id: str) -> tuple[dict[str, Any], int]:
    """Re-run the chunks of a run that are not done (failed, or lost with their worker)."""
    require_queue(state().redis)
    enrichment = state().services.enrichment
    pending = enrichment.resume(auth.org_id, run_id)
    _enqueue_chunks(auth.org_id, run_id, pending)
    return {**enrichment.status(auth.org_id, run_id), "resumedChunks": pending}, 202


@endpoint(bp, "/stale", methods=("GET",), scope="read", response=sch.StaleSummary)
def stale(auth: KeyInfo) -> dict[str, Any]:
    """Inferred properties whose evidence changed since they were computed: per property, how many records
    are stale, how many are due for a refresh, and the policy."""
    return {"properties": state().services.enrichment.stale(auth.org_id)}
