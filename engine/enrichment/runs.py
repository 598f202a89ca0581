"""Whole-collection runs: the request, the run and chunk rows (fixed at start, so a run resumes exactly where
it stopped), progress and cost accounting."""

from __future__ import annotations

from collections import Counter
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from memrelay.engine.core.errors import NotFound
from memrelay.engine.core.util import iso, new_sortable_id, utcnow
from memrelay.engine.stores.db.models_enrichment import EnrichmentChunk, EnrichmentRun
from memrelay.engine.stores.db.models_llm import LLMUsageRow
from memrelay.engine.stores.search import Group

Mode = Literal["auto", "llm", "offline"]
MAX_CHUNK = 1000


class EnrichmentRunRequest(BaseModel):
    """``POST /api/v1/enrichment/runs``: infer ``property`` for every record of ``collection`` (an entity type
    or a collection name), or only the records a search's ``groups`` match."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    collection: str = Field(min_length=1, max_length=200)
    property: str = Field(min_length=1, max_length=128)
    mode: Mode = Field("auto", description="auto: the property's declared path (auto there: the LLM when one "
                                           "is configured, else offline).")
    groups: list[Group] = Field(default_factory=list, description="Optional search filter (as /search).")
    logic: Literal["AND", "OR"] = "AND"
    chunkSize: int = Field(100, ge=1, le=MAX_CHUNK)
    dryRun: bool = Field(False, description="Only count the records and estimate the cost.")

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            for alias, name in (("type", "collection"), ("entityType", "collection"), ("propertyName", "property"),
                                ("chunk_size", "chunkSize"), ("dry_run", "dryRun")):
                if alias in data and name not in data:
                    data[name] = data.pop(alias)
            if isinstance(data.get("filter"), dict):
                flt = data.pop("filter")
                data.setdefault("groups", flt.get("groups", []))
                data.setdefault("logic", flt.get("logic", "AND"))
        return data


def create_run(s: Session, org_id: str, entity_type: str, name: str, mode: str, record_ids: list[str],
               chunk_size: int, *, estimate_usd: float, query: dict[str, Any] | None) -> EnrichmentRun:
    now = utcnow()
    chunks = [record_ids[i:i + chunk_size] for i in range(0, len(record_ids), chunk_size)]
    run = EnrichmentRun(id=new_sortable_id("enr"), org_id=org_id, entity_type=entity_type, property=name, mode=mode,
                        status="queued" if chunks else "completed", query=query, total=len(record_ids),
                        counts={}, chunks_total=len(chunks), chunks_done=0, estimate_usd=estimate_usd, cost_usd=0.0,
                        created_at=now, updated_at=now, finished_at=None if chunks else now)
    s.add(run)
    s.flush()
    s.add_all(EnrichmentChunk(run_id=run.id, chunk_index=i, record_ids=ids, status="pending", attempts=0,
                              updated_at=now) for i, ids in enumerate(chunks))
    return run


def get_run(s: Session, org_id: str | None, run_id: str, *, lock: bool = False) -> EnrichmentRun:
    q = select(EnrichmentRun).where(EnrichmentRun.id == run_id)
    if org_id is not None:
        q = q.where(EnrichmentRun.org_id == org_id)
    run = s.scalar(q.with_for_update() if lock else q)
    if run is None:
        raise NotFound(f"no enrichment run {run_id!r}")
    return run


def get_chunk(s: Session, run_id: str, index: int) -> EnrichmentChunk:
    chunk = s.scalar(select(EnrichmentChunk).where(EnrichmentChunk.run_id == run_id,
                                                   EnrichmentChunk.chunk_index == index).with_for_update())
    if chunk is None:
        raise NotFound(f"enrichment run {run_id!r} has no chunk {index}")
    return chunk


def pending_chunks(s: Session, run_id: str) -> list[int]:
    """Indexes of the chunks not done yet (pending or failed), in order."""
    return list(s.scalars(select(EnrichmentChunk.chunk_index).where(
        EnrichmentChunk.run_id == run_id, EnrichmentChunk.status != "done").order_by(EnrichmentChunk.chunk_index)))


def record_chunk(run: EnrichmentRun, counts: Counter[str], cost_usd: float, processed: int,
                 failed_chunks: int) -> None:
    """Add one finished chunk's outcome to its (locked) run; the last chunk completes the run, and a run
    with a failed chunk stays ``failed`` until it is resumed."""
    merged = Counter(run.counts or {})
    merged.update(counts)
    merged["processed"] += processed
    run.counts = dict(merged)
    run.cost_usd = (run.cost_usd or 0.0) + cost_usd
    run.chunks_done += 1
    run.updated_at = utcnow()
    run.status = ("completed" if run.chunks_done >= run.chunks_total
                  else "failed" if failed_chunks else "running")
    if run.status == "completed":
        run.finished_at = run.updated_at
        run.error = None


def run_to_dict(run: EnrichmentRun, failed_chunks: int = 0, cost_usd: float | None = None) -> dict[str, Any]:
    counts = dict(run.counts or {})
    processed = int(counts.pop("processed", 0))
    return {"runId": run.id, "status": run.status, "collection": run.entity_type, "property": run.property,
            "mode": run.mode, "total": run.total, "processed": processed,
            "progress": round(processed / run.total, 4) if run.total else 1.0, "counts": counts,
            "chunks": {"total": run.chunks_total, "done": run.chunks_done, "failed": failed_chunks},
            "estimateUsd": round(run.estimate_usd or 0.0, 6),
            "costUsd": round(run.cost_usd if cost_usd is None else cost_usd, 8),
            "filter": run.query, "error": run.error, "createdAt": iso(run.created_at),
            "updatedAt": iso(run.updated_at), "finishedAt": iso(run.finished_at)}


def spent_usd(s: Session, run: EnrichmentRun) -> float:
    """What the run's LLM calls cost, failed chunks' calls included (usage rows carry the run id)."""
    if run.mode != "llm":
        return 0.0
    return float(s.scalar(select(func.coalesce(func.sum(LLMUsageRow.cost_usd), 0.0)).where(
        LLMUsageRow.org_id == run.org_id, LLMUsageRow.run_id == run.id)) or 0.0)


def failed_chunk_count(s: Session, run_id: str) -> int:
    return len(list(s.scalars(select(EnrichmentChunk.id).where(EnrichmentChunk.run_id == run_id,
                                                               EnrichmentChunk.status == "failed"))))
