"""Semantic memory endpoints (Personize-compatible): memorize, batch memorize, smart recall, digest,
similar, segment and query-properties. Each view is one engine call; ``about: "self"`` requests are
resolved to the calling key's own record here (the engine never sees the key otherwise)."""

from __future__ import annotations

from typing import Annotated, Any

import redis
from flask import Blueprint
from pydantic import Discriminator, RootModel, Tag

from memrelay.engine.core.errors import QueueUnavailable
from memrelay.engine.memory.batch import BatchMemorizeRequest
from memrelay.engine.memory.digest import DigestRequest
from memrelay.engine.memory.memories import MemorizeItemsRequest, MemorizeRequest
from memrelay.engine.memory.query_properties import QueryPropertiesRequest
from memrelay.engine.memory.recall import RecallRequest
from memrelay.engine.memory.similar import SegmentRequest, SimilarRequest
from memrelay.engine.stores.tenancy import KeyInfo
from memrelay.gateway.api import endpoint
from memrelay.gateway.schemas import semantic as sch
from memrelay.gateway.state import state
from memrelay.queue.connection import require_queue
from memrelay.queue.jobs import enqueue

bp = Blueprint("semantic", __name__, url_prefix="/api/v1")


def _batch_form(data: Any) -> str:
    return "items" if isinstance(data, dict) and "items" in data and "rows" not in data else "rows"


class BatchMemorizeBody(RootModel[Annotated[
        Annotated[BatchMemorizeRequest, Tag("rows")] | Annotated[MemorizeItemsRequest, Tag("items")],
        Discriminator(_batch_form)]]):
    """Either form of POST /batch-memorize: ``{source, mapping, rows}`` (background jobs) or Personize's
    ``memorizeBatch({items: [...]})`` (each item memorized now, results per item)."""


@endpoint(bp, "/memorize", scope="write", body=MemorizeRequest, response=sch.MemorizeResult, errors=(402, 404, 409),
          example={"email": "ada@acme.example", "type": "contact", "content": "Ada prefers tea over coffee.",
                   "tags": ["preferences"]})
def memorize(auth: KeyInfo, body: MemorizeRequest) -> dict[str, Any]:
    """Store free text (or chat ``messages``) about a record as memories, with optional ``metadata`` and
    expiry, and extracted property values."""
    return state().services.memories.memorize(auth.org_id, body.for_key(auth.key_id))


@endpoint(bp, "/batch-memorize", scope="write", body=BatchMemorizeBody, response=sch.BatchMemorizeResult,
          also={202: sch.BatchRunQueued}, errors=(404,))
def batch_memorize(auth: KeyInfo, body: BatchMemorizeBody) -> tuple[dict[str, Any], int]:
    """Import rows (structured fields → properties, text fields → memories) as background jobs, or memorize
    Personize-style ``items``."""
    if isinstance(body.root, MemorizeItemsRequest):
        return state().services.memories.memorize_items(auth.org_id, body.root, key_id=auth.key_id), 200
    return _batch_rows(auth, body.root)


def _batch_rows(auth: KeyInfo, body: BatchMemorizeRequest) -> tuple[dict[str, Any], int]:
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


@endpoint(bp, "/batch-memorize/<run_id>", methods=("GET",), scope="read", response=sch.BatchStatus)
def batch_status(auth: KeyInfo, run_id: str) -> dict[str, Any]:
    """Status, progress, per-row errors and totals of a batch-memorize run."""
    return state().services.batches.status(auth.org_id, run_id)


@endpoint(bp, "/smart-recall", scope="read", body=RecallRequest, response=sch.SmartRecallResult,
          errors=(402, 404, 502), example={"query": "What does Ada drink?", "email": "ada@acme.example",
                                           "type": "contact", "limit": 5})
def smart_recall(auth: KeyInfo, body: RecallRequest) -> dict[str, Any]:
    """Semantic recall over one record's memories, or org-wide: calibrated hybrid scores, metadata
    ``filters`` applied before ranking, expired memories hidden unless ``includeExpired``, ``explain``."""
    return state().services.recall.smart_recall(auth.org_id, body.for_key(auth.key_id))


@endpoint(bp, "/smart-memory-digest", scope="read", body=DigestRequest, response=sch.DigestResult,
          errors=(404, 409))
def smart_memory_digest(auth: KeyInfo, body: DigestRequest) -> dict[str, Any]:
    """A compiled markdown digest (``compiledContext``) of one record within a token budget."""
    return state().services.digests.digest(auth.org_id, body.for_key(auth.key_id))


@endpoint(bp, "/similar", scope="read", body=SimilarRequest, response=sch.SimilarResult, errors=(404, 409))
def similar(auth: KeyInfo, body: SimilarRequest) -> dict[str, Any]:
    """Records most similar to a seed record, in similarity tiers."""
    return state().services.similarity.similar(auth.org_id, body)


@endpoint(bp, "/segment", scope="read", body=SegmentRequest, response=sch.SegmentResult, errors=(404, 409))
def segment(auth: KeyInfo, body: SegmentRequest) -> dict[str, Any]:
    """Records grouped into similarity tiers around a seed record or text, with counts and paging."""
    return state().services.similarity.segment(auth.org_id, body)


@endpoint(bp, "/memory/query-properties", scope="read", body=QueryPropertiesRequest,
          response=sch.QueryPropertiesResult, errors=(402, 502))
def query_properties(auth: KeyInfo, body: QueryPropertiesRequest) -> dict[str, Any]:
    """LLM-judged search of one property's values (503 llm_not_configured without a model)."""
    return state().services.query_properties.query(auth.org_id, body)
