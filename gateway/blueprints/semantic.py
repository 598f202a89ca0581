"""Semantic memory endpoints (Personize-compatible): memorize, batch memorize, smart recall, digest,
similar and segment. Each view is one engine call."""

from __future__ import annotations

from typing import Any

import redis
from flask import Blueprint

from memrelay.engine.core.errors import QueueUnavailable
from memrelay.engine.memory.batch import BatchMemorizeRequest
from memrelay.engine.memory.digest import DigestRequest
from memrelay.engine.memory.memories import MemorizeRequest
from memrelay.engine.memory.recall import RecallRequest
from memrelay.engine.memory.similar import SegmentRequest, SimilarRequest
from memrelay.engine.stores.tenancy import KeyInfo
from memrelay.gateway.api import endpoint
from memrelay.gateway.state import state
from memrelay.queue.connection import require_queue
from memrelay.queue.jobs import enqueue

bp = Blueprint("semantic", __name__, url_prefix="/api/v1")


@endpoint(bp, "/memorize", scope="write", body=MemorizeRequest)
def memorize(auth: KeyInfo, body: MemorizeRequest) -> dict[str, Any]:
    """Store free text about a record as memories and extracted property values."""
    return state().services.memories.memorize(auth.org_id, body)


@endpoint(bp, "/batch-memorize", scope="write", body=BatchMemorizeRequest)
def batch_memorize(auth: KeyInfo, body: BatchMemorizeRequest) -> tuple[dict[str, Any], int]:
    """Import rows (structured fields → properties, text fields → memories) as background jobs."""
    batches = state().services.batches
    if body.dryRun:
        return batches.dry_run(auth.org_id, body), 200
    conn = state().redis
    require_queue(conn)  # refuse (503) before the run exists
    run = batches.create_run(auth.org_id, body)
    try:
        with conn.pipeline() as pipe:  # every chunk in one round trip (MULTI: all or none)
            for chunk in run.chunks:
                enqueue(conn, "process_batch_chunk", run.run_id, auth.org_id, chunk.index, chunk.offset,
                        body.mapping_json(), chunk.rows, body.source, body.tags, pipeline=pipe)
            pipe.execute()
    except redis.RedisError as exc:
        batches.discard_run(auth.org_id, run.run_id)
        raise QueueUnavailable(f"the job queue (Redis) is unavailable: {exc.__class__.__name__}") from exc
    return run.summary, 202


@endpoint(bp, "/batch-memorize/<run_id>", methods=("GET",), scope="read")
def batch_status(auth: KeyInfo, run_id: str) -> dict[str, Any]:
    """Status, progress, per-row errors and totals of a batch-memorize run."""
    return state().services.batches.status(auth.org_id, run_id)


@endpoint(bp, "/smart-recall", scope="read", body=RecallRequest)
def smart_recall(auth: KeyInfo, body: RecallRequest) -> dict[str, Any]:
    """Semantic recall over one record's memories, or org-wide."""
    return state().services.recall.smart_recall(auth.org_id, body)


@endpoint(bp, "/smart-memory-digest", scope="read", body=DigestRequest)
def smart_memory_digest(auth: KeyInfo, body: DigestRequest) -> dict[str, Any]:
    """A compiled markdown digest of one record within a token budget."""
    return state().services.digests.digest(auth.org_id, body)


@endpoint(bp, "/similar", scope="read", body=SimilarRequest)
def similar(auth: KeyInfo, body: SimilarRequest) -> dict[str, Any]:
    """Records most similar to a seed record, in similarity tiers."""
    return state().services.similarity.similar(auth.org_id, body)


@endpoint(bp, "/segment", scope="read", body=SegmentRequest)
def segment(auth: KeyInfo, body: SegmentRequest) -> dict[str, Any]:
    """Records grouped into similarity tiers around a seed record or text, with counts and paging."""
    return state().services.similarity.segment(auth.org_id, body)
