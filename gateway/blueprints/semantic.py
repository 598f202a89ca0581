"""Semantic memory endpoints (Personize-compatible): memorize, batch memorize, smart recall, digest,
similar and segment. Each view is one engine call."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from flask.blueprints import BlueprintSetupState

from memrelay.engine.memory.batch import BatchMemorizeRequest
from memrelay.engine.memory.digest import DigestRequest
from memrelay.engine.memory.index_sync import start_background_reconcile
from memrelay.engine.memory.memories import MemorizeRequest
from memrelay.engine.memory.recall import RecallRequest
from memrelay.engine.memory.similar import SegmentRequest, SimilarRequest
from memrelay.engine.stores.tenancy import KeyInfo
from memrelay.gateway.api import endpoint
from memrelay.gateway.state import state
from memrelay.queue.connection import queue

bp = Blueprint("semantic", __name__, url_prefix="/api/v1")


@bp.record_once
def _reconcile_on_start(setup: BlueprintSetupState) -> None:
    """Index what a crash left pending, in the background, so start-up never waits for Milvus."""
    start_background_reconcile(setup.app.extensions["memrelay"].engine)


@endpoint(bp, "/memorize", scope="write", body=MemorizeRequest)
def memorize(auth: KeyInfo, body: MemorizeRequest) -> dict[str, Any]:
    """Store free text about a record as memories and extracted property values."""
    return state().engine.memories.memorize(auth.org_id, body)


@endpoint(bp, "/batch-memorize", scope="write", body=BatchMemorizeRequest)
def batch_memorize(auth: KeyInfo, body: BatchMemorizeRequest) -> tuple[dict[str, Any], int]:
    """Import rows (structured fields → properties, text fields → memories) as background jobs."""
    batches = state().engine.memories.batches
    if body.dryRun:
        return batches.dry_run(auth.org_id, body), 200
    run = batches.create_run(auth.org_id, body)
    q = queue(state().redis, "memorize")
    for chunk in run.chunks:
        q.enqueue("memrelay.worker.jobs.memorize.process_batch_chunk", run.run_id, auth.org_id, chunk.index, chunk.offset,
                  body.mapping_json(), chunk.rows, body.source, body.tags, job_timeout=1800)
    return run.summary, 202


@endpoint(bp, "/batch-memorize/<run_id>", methods=("GET",), scope="read")
def batch_status(auth: KeyInfo, run_id: str) -> dict[str, Any]:
    """Status, progress, per-row errors and totals of a batch-memorize run."""
    return state().engine.memories.batches.status(auth.org_id, run_id)


@endpoint(bp, "/smart-recall", scope="read", body=RecallRequest)
def smart_recall(auth: KeyInfo, body: RecallRequest) -> dict[str, Any]:
    """Semantic recall over one record's memories, or org-wide."""
    return state().engine.recall.smart_recall(auth.org_id, body)


@endpoint(bp, "/smart-memory-digest", scope="read", body=DigestRequest)
def smart_memory_digest(auth: KeyInfo, body: DigestRequest) -> dict[str, Any]:
    """A compiled markdown digest of one record within a token budget."""
    return state().engine.recall.digests.digest(auth.org_id, body)


@endpoint(bp, "/similar", scope="read", body=SimilarRequest)
def similar(auth: KeyInfo, body: SimilarRequest) -> dict[str, Any]:
    """Records most similar to a seed record, in similarity tiers."""
    return state().engine.recall.similarity.similar(auth.org_id, body)


@endpoint(bp, "/segment", scope="read", body=SegmentRequest)
def segment(auth: KeyInfo, body: SegmentRequest) -> dict[str, Any]:
    """Records grouped into similarity tiers around a seed record or text, with counts and paging."""
    return state().engine.recall.similarity.segment(auth.org_id, body)
