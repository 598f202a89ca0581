"""Batch memorize: rows of a source system → records, typed properties and (for ``extractMemories``
fields) memories, processed in chunks by background jobs.

Each chunk is one SQL transaction with one batched embedding call; records and properties are written
with :func:`memrelay.engine.stores.bulk_write.bulk_upsert` (one key-resolution query and executemany writes per chunk).
Rows are validated before any SQL is written, so a bad row becomes a ``BatchRowError`` and never aborts
its chunk. Run counters are bumped with ``UPDATE … SET x = x + n`` because several workers
process chunks of the same run concurrently.

Chunks live in SQL (:class:`BatchChunk`: rows, attempts, state) from the moment the run is created, so a
chunk job is only a pointer: a job lost with its worker (``kill -9``) or with Redis is re-driven by the
worker sweeper (:meth:`BatchMemorize.pending_chunks`), a failed attempt is retried per
:data:`BATCH_CHUNKS`, and a chunk takes effect once — its writes commit together with its ``done`` mark, under
the chunk row's lock, and a later attempt finds it done. When attempts run out its rows become row errors
and the run still finishes (``partial`` or ``failed``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from memrelay.engine.core.access import current_access
from memrelay.engine.core.backoff import BATCH_CHUNKS, RetryPolicy
from memrelay.engine.core.embedder import Embedder, MemoEmbedder
from memrelay.engine.core.errors import MemrelayError, NotFound, ValidationFailed
from memrelay.engine.core.properties_types import PropertySpec
from memrelay.engine.core.util import as_aware, iso, new_id, utcnow
from memrelay.engine.domain.coercion import coerce
from memrelay.engine.domain.extraction.proactive import Fact, extract_facts
from memrelay.engine.domain.extraction.sentences import split_sentences
from memrelay.engine.domain.extraction.standard import extract as offline_extract
from memrelay.engine.memory import index_sync
from memrelay.engine.memory.index_sync import IndexWriter
from memrelay.engine.memory.memories import (
    SELF_TYPE,
    ExtractedContent,
    Memories,
    MemorizeRequest,
    MemoryExtractor,
    named_by_record_id,
    subjects_of,
)
from memrelay.engine.memory.memory_controls import expiry
from memrelay.engine.stores.bulk_write import BulkItem, bulk_upsert, prefetch_keys
from memrelay.engine.stores.collections import Collections, normalise_entity_type
from memrelay.engine.stores.db.database import Database
from memrelay.engine.stores.db.models import BatchChunk, BatchRowError, BatchRun, Collection, Record
from memrelay.engine.stores.identity import Candidates, Identifiers, resolve_record
from memrelay.engine.stores.memory_store import NewMemory, companies_of, store_memories
from memrelay.engine.stores.outbox import emit
from memrelay.engine.stores.properties import Provenance

log = logging.getLogger("memrelay.batch")

MAX_ROWS = 100_000
MAX_ERRORS_SHOWN = 200
UNFINISHED = ("queued", "running")


class PropertyMapping(BaseModel):
    model_config = ConfigDict(extra="ignore")

    sourceField: str = Field(min_length=1)
    collectionId: str | None = None
    collectionName: str | None = None
    extractMemories: bool = False


class BatchMapping(BaseModel):
    """Which row fields identify the record and which feed which property (``extractMemories`` → memory)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    entityType: str = "contact"
    email: str | None = Field(None, description="Row field holding the email.")
    website: str | None = Field(None, description="Row field holding the website URL.")
    recordId: str | None = Field(None, description="Row field holding a record id.")
    customKeyName: str | None = Field(None, description="Name of the custom key, e.g. hubspot_id.")
    customKey: str | None = Field(None, description="Row field holding the custom key's value.")
    timestamp: str | None = Field(None, description="Row field holding the source event time.")
    runName: str | None = None
    properties: dict[str, PropertyMapping] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            for alias, name in (("websiteUrl", "website"), ("website_url", "website"),
                                ("customKeyField", "customKey"), ("customKeyValue", "customKey"),
                                ("record_id", "recordId"), ("entity_type", "entityType")):
                if alias in data and name not in data:
                    data[name] = data.pop(alias)
        return data


class BatchMemorizeRequest(BaseModel):
    """POST /api/v1/batch-memorize."""

    model_config = ConfigDict(extra="ignore")

    source: str = Field("batch", min_length=1, max_length=100)
    mapping: BatchMapping
    rows: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_ROWS)
    dryRun: bool = False
    chunkSize: int = Field(500, ge=1, le=5000)
    tags: list[str] = Field(default_factory=list)

    def mapping_json(self) -> dict[str, Any]:
        return self.mapping.model_dump(mode="json")


@dataclass
class PreparedRow:
    index: int
    ids: Identifiers
    properties: dict[str, Any]
    texts: list[tuple[str, str]]
    ts: datetime


@dataclass
class Chunk:
    index: int
    offset: int
    rows: list[dict[str, Any]]


@dataclass(frozen=True)
class PendingChunk:
    """A chunk not yet done, as the sweeper sees it."""

    run_id: str
    org_id: str
    chunk_index: int
    status: str
    attempts: int
    updated_at: datetime

    def due(self, now: datetime, *, stale_after_s: float, policy: RetryPolicy = BATCH_CHUNKS) -> bool:
        """Whether a chunk whose job is not alive in Redis should be driven now: a ``running`` one at once
        (its worker died), a never-tried ``queued`` one once ``stale_after_s`` passed (its job was lost), a
        failed attempt after the policy's wait."""
        if self.status == "running":
            return True
        wait = stale_after_s if self.attempts == 0 else policy.backoff(self.attempts)
        return (now - self.updated_at).total_seconds() >= wait

    @property
    def exhausted(self) -> bool:
        return self.attempts >= BATCH_CHUNKS.max_attempts


@dataclass
class _Claimed:
    run_id: str
    org_id: str
    offset: int
    rows: list[dict[str, Any]]
    mapping: BatchMapping
    source: str
    tags: list[str]
    attempt: int


@dataclass
class CreatedRun:
    run_id: str
    chunks: list[Chunk]
    summary: dict[str, Any]


@dataclass
class ChunkTotals:
    records_created: int = 0
    records_updated: int = 0
    properties_written: int = 0
    memories_created: int = 0
    duplicates_skipped: int = 0
    superseded: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {"recordsCreated": self.records_created, "recordsUpdated": self.records_updated,
                "propertiesWritten": self.properties_written, "memoriesCreated": self.memories_created,
                "duplicatesSkipped": self.duplicates_skipped, "superseded": self.superseded}


class BatchMemorize:
    """Create, process and report batch-memorize runs (chunks are processed by RQ jobs).

    ``extractor`` is None without an LLM: ``extractMemories`` text is then stored as written."""

    def __init__(self, db: Database, embedder: Embedder, collections: Collections, index: IndexWriter,
                 extractor: MemoryExtractor | None = None):
        self.db, self.embedder, self.collections = db, embedder, collections
        self.index, self.extractor = index, extractor

    # --- planning ----------------------------------------------------------------------------
    def validate_mapping(self, s: Session, org_id: str, mapping: BatchMapping) -> dict[str, PropertySpec]:
        """422 for a mapping that can never work (unknown type, property or collection)."""
        et = self.collections.active_entity_type(s, org_id, mapping.entityType)
        schema = self.collections.schema_for(s, org_id, et)
        if not (mapping.email or mapping.website or mapping.recordId or (mapping.customKeyName and mapping.customKey)):
            raise ValidationFailed("mapping needs an identifier field: email, website, recordId or "
                                   "customKeyName + customKey")
        unknown = [n for n, pm in mapping.properties.items() if n not in schema and not pm.extractMemories]
        if unknown:
            raise ValidationFailed(f"unknown properties for {et}: " + ", ".join(sorted(unknown)),
                                   details={"unknown": sorted(unknown), "known": sorted(schema)})
        live = s.scalars(select(Collection).where(Collection.org_id == org_id, Collection.archived_at.is_(None))
                         .order_by(Collection.created_at)).all()
        for name, pm in mapping.properties.items():
            # by id, else by name (case-insensitive): Personize's templates ship placeholder ids
            refs = [r.strip() for r in (pm.collectionId, pm.collectionName) if r and r.strip()]
            c = next((c for r in refs for c in live if c.id == r or c.name.casefold() == r.casefold()), None)
            if c is None:
                continue  # resolved by the property's name on the entity type (unknown ones refused above)
            if c.entity_type != et:
                raise ValidationFailed(f"property {name!r}: collection {c.name!r} is for {c.entity_type}")
        return schema

    def prepare(self, rows: list[dict[str, Any]], offset: int, mapping: BatchMapping,
                schema: dict[str, PropertySpec]) -> tuple[list[PreparedRow], list[tuple[int, str]]]:
        """Validate rows without touching the database: good rows and (row index, error) pairs."""
        good: list[PreparedRow] = []
        bad: list[tuple[int, str]] = []
        et = normalise_entity_type(mapping.entityType)
        now = utcnow()
        for i, row in enumerate(rows):
            idx = offset + i
            try:
                good.append(self._prepare_row(idx, row, mapping, schema, et, now))
            except MemrelayError as exc:
                bad.append((idx, exc.message))
            except (TypeError, ValueError, AttributeError) as exc:
                bad.append((idx, f"invalid row: {exc}"))
        return good, bad

    @staticmethod
    def _prepare_row(idx: int, row: dict[str, Any], m: BatchMapping, schema: dict[str, PropertySpec], et: str,
                     now: datetime) -> PreparedRow:
        if not isinstance(row, dict):
            raise ValidationFailed("row must be an object")

        def field_value(name: str | None) -> str | None:
            v = row.get(name) if name else None
            return str(v).strip() or None if v not in (None, "") else None

        ids = Identifiers(type=et, email=field_value(m.email), website_url=field_value(m.website),
                          record_id=field_value(m.recordId), customKeyName=m.customKeyName if m.customKey else None,
                          customKeyValue=field_value(m.customKey))
        if not ids.keys():
            raise ValidationFailed("row has no identifier value")
        props: dict[str, Any] = {}
        texts: list[tuple[str, str]] = []
        for name, pm in m.properties.items():
            value = row.get(pm.sourceField)
            if value is None or (isinstance(value, str) and not value.strip()):
                continue
            if name in schema:
                props[name] = coerce(schema[name], value)
            if pm.extractMemories:
                texts.append((name, " ".join(str(value).split())))
        ts = now
        if m.timestamp and row.get(m.timestamp):
            try:
                ts = as_aware(datetime.fromisoformat(str(row[m.timestamp]).replace("Z", "+00:00"))) or now
            except ValueError:
                raise ValidationFailed(f"field {m.timestamp!r}: not an ISO timestamp") from None
        if not props and not texts:
            raise ValidationFailed("row has no mapped values")
        return PreparedRow(idx, ids, props, texts, ts)

    # --- runs --------------------------------------------------------------------------------
    def dry_run(self, org_id: str, req: BatchMemorizeRequest) -> dict[str, Any]:
        """Validate every row and report what would be written; writes nothing."""
        with self.db.read() as s:
            schema = self.validate_mapping(s, org_id, req.mapping)
            good, bad = self.prepare(req.rows, 0, req.mapping, schema)
            et = normalise_entity_type(req.mapping.entityType)
            existing: set[str] = set()
            new_keys: set[tuple[str, str]] = set()
            for row in list(good):
                try:
                    rec = resolve_record(s, org_id, row.ids, et)
                except MemrelayError as exc:  # an ambiguous identity (409) is that row's error
                    good.remove(row)
                    bad.append((row.index, exc.message))
                    continue
                if rec is not None:
                    existing.add(rec.id)
                else:
                    new_keys.add(row.ids.keys()[0])
        return {"dryRun": True, "totalRows": len(req.rows), "validRows": len(good), "errorCount": len(bad),
                "errors": [{"row": i, "error": e} for i, e in bad[:MAX_ERRORS_SHOWN]],
                "wouldWrite": {"recordsCreated": len(new_keys), "recordsUpdated": len(existing),
                               "propertyValues": sum(len(r.properties) for r in good),
                               "memories": sum(len(r.texts) for r in good)}}

    def create_run(self, org_id: str, req: BatchMemorizeRequest) -> CreatedRun:
        """Validate the mapping, record a queued run and split the rows into chunks for the jobs."""
        chunks = [Chunk(i, off, req.rows[off:off + req.chunkSize])
                  for i, off in enumerate(range(0, len(req.rows), req.chunkSize))]
        now = utcnow()
        with self.db.session() as s:
            self.validate_mapping(s, org_id, req.mapping)
            run = BatchRun(id=new_id("run"), org_id=org_id, name=req.mapping.runName, source=req.source,
                           status="queued", total_rows=len(req.rows), processed_rows=0, chunks_total=len(chunks),
                           chunks_done=0, error_count=0, dry_run=False, totals={}, created_at=now,
                           params={"mapping": req.mapping_json(), "source": req.source, "tags": req.tags})
            s.add(run)
            s.flush()
            s.add_all([BatchChunk(run_id=run.id, chunk_index=c.index, org_id=org_id, row_offset=c.offset,
                                  row_count=len(c.rows), rows=c.rows, status="queued", attempts=0, updated_at=now)
                       for c in chunks])
        return CreatedRun(run.id, chunks, {"runId": run.id, "status": "queued", "totalRows": len(req.rows),
                                           "chunks": len(chunks)})

    def discard_run(self, org_id: str, run_id: str) -> None:
        """Remove a run whose chunks could not be queued (no chunk ran), so no run stays ``queued`` forever."""
        with self.db.session() as s:
            deleted = s.execute(delete(BatchRun).where(BatchRun.id == run_id, BatchRun.org_id == org_id,
                                                       BatchRun.chunks_done == 0))
            if deleted.rowcount:  # type: ignore[attr-defined]
                s.execute(delete(BatchChunk).where(BatchChunk.run_id == run_id))

    # --- chunks ------------------------------------------------------------------------------
    def process_chunk(self, run_id: str, org_id: str, chunk_index: int, *_legacy: Any,
                      **_legacy_kw: Any) -> dict[str, Any]:
        """Process chunk ``chunk_index`` of a run from its stored rows, once (one transaction, one embedding
        call); bad rows become row errors. A chunk already done (or given up) is skipped.

        An attempt that raises is recorded and re-raised; the sweeper retries it per :data:`BATCH_CHUNKS`,
        and the last one records the chunk's rows as failed. Arguments after ``chunk_index`` (offset,
        mapping, rows, … of older callers) are ignored: the stored chunk is the source of truth."""
        claimed = self._claim(run_id, org_id, chunk_index)
        if claimed is None:
            return {"runId": run_id, "chunk": chunk_index, "skipped": True}
        if claimed.attempt > BATCH_CHUNKS.max_attempts:  # earlier attempts died with their workers
            self.give_up_chunk(run_id, org_id, chunk_index)
            return {"runId": run_id, "chunk": chunk_index, "skipped": True}
        try:
            written = self._write_chunk(run_id, org_id, chunk_index, claimed)
        except Exception as exc:
            self._attempt_failed(run_id, org_id, chunk_index, exc)
            raise
        if written is None:
            return {"runId": run_id, "chunk": chunk_index, "skipped": True}
        totals, created = written
        self.index.sync_after_commit(index=created)
        return {"runId": run_id, "chunk": chunk_index, **totals.as_dict(), "errors": len(totals.errors)}

    def pending_chunks(self, *, limit: int = 500) -> list[PendingChunk]:
        """Chunks not done yet (oldest first), for the sweeper to re-drive or give up."""
        with self.db.read() as s:
            rows = s.execute(select(BatchChunk.run_id, BatchChunk.org_id, BatchChunk.chunk_index, BatchChunk.status,
                                    BatchChunk.attempts, BatchChunk.updated_at)
                             .where(BatchChunk.status.in_(UNFINISHED)).order_by(BatchChunk.updated_at)
                             .limit(limit)).all()
        return [PendingChunk(run_id, org, idx, status, attempts, as_aware(at))
                for run_id, org, idx, status, attempts, at in rows]

    def give_up_chunk(self, run_id: str, org_id: str, chunk_index: int) -> bool:
        """Record an unfinished chunk's rows as failed (its attempts ran out), so its run can finish. False
        when the chunk was done or given up meanwhile."""
        with self.db.session() as s:
            chunk = self._locked_chunk(s, run_id, org_id, chunk_index)
            if chunk is None or chunk.status not in UNFINISHED:
                return False
            reason = chunk.last_error or "its worker stopped before finishing it"
            self._fail_rows(s, chunk, f"chunk failed after {chunk.attempts} attempt(s): {reason}")
        log.warning("batch chunk given up", extra={"runId": run_id, "chunk": chunk_index})
        return True

    @staticmethod
    def _locked_chunk(s: Session, run_id: str, org_id: str, chunk_index: int) -> BatchChunk | None:
        return s.scalar(select(BatchChunk).where(BatchChunk.run_id == run_id, BatchChunk.org_id == org_id,
                                                 BatchChunk.chunk_index == chunk_index)
                        .with_for_update().execution_options(populate_existing=True))

    def _claim(self, run_id: str, org_id: str, chunk_index: int) -> _Claimed | None:
        """Count an attempt on an unfinished chunk and load what processing it needs; None when it is done."""
        with self.db.session() as s:
            chunk = self._locked_chunk(s, run_id, org_id, chunk_index)
            if chunk is None or chunk.status not in UNFINISHED:
                return None
            run = s.scalars(select(BatchRun).where(BatchRun.id == run_id)).one()
            chunk.status, chunk.attempts, chunk.updated_at = "running", chunk.attempts + 1, utcnow()
            if run.status == "queued":
                run.status = "running"
            params = run.params or {}
            return _Claimed(run_id, org_id, chunk.row_offset, list(chunk.rows or []),
                            BatchMapping.model_validate(params.get("mapping") or {}),
                            str(params.get("source") or run.source or "batch"), list(params.get("tags") or []),
                            chunk.attempts)

    def _attempt_failed(self, run_id: str, org_id: str, chunk_index: int, exc: Exception) -> None:
        """After an attempt raised: give the chunk up when attempts ran out, else leave it due for a retry."""
        log.exception("batch chunk attempt failed", extra={"runId": run_id, "chunk": chunk_index})
        message = f"{exc.__class__.__name__}: {exc}"[:1000]
        try:
            with self.db.session() as s:
                chunk = self._locked_chunk(s, run_id, org_id, chunk_index)
                if chunk is None or chunk.status != "running":
                    return
                if chunk.attempts >= BATCH_CHUNKS.max_attempts:
                    self._fail_rows(s, chunk, f"chunk failed after {chunk.attempts} attempt(s): {message}")
                else:
                    chunk.status, chunk.last_error, chunk.updated_at = "queued", message, utcnow()
        except Exception:  # the database itself failed: the sweeper finds the chunk running and re-drives it
            log.exception("could not record the failed batch chunk attempt", extra={"runId": run_id})

    def _fail_rows(self, s: Session, chunk: BatchChunk, message: str) -> None:
        """Inside the chunk's locked transaction: every row of the chunk is a row error, the chunk counts."""
        totals = ChunkTotals(errors=[(chunk.row_offset + i, message[:2000]) for i in range(chunk.row_count)])
        for idx, err in totals.errors:
            s.add(BatchRowError(run_id=chunk.run_id, org_id=chunk.org_id, row_index=idx, error=err))
        chunk.status, chunk.rows, chunk.updated_at = "failed", None, utcnow()
        chunk.last_error = message[:2000]
        s.flush()
        self._count(s, chunk.run_id, chunk.org_id, chunk.row_count, totals)

    def _write_chunk(self, run_id: str, org_id: str, chunk_index: int,
                     c: _Claimed) -> tuple[ChunkTotals, list[str]] | None:
        emb = self.embedder
        m, rows, offset, source, tags = c.mapping, c.rows, c.offset, c.source, c.tags
        with self.db.read() as s:
            schema = self.validate_mapping(s, org_id, m)
        good, bad = self.prepare(rows, offset, m, schema)
        bad += self._llm_extract(org_id, good, schema)
        texts = [t for row in good for _, t in row.texts]
        vectors = emb.embed(texts) if texts else np.empty((0, 0), dtype=np.float32)
        totals = ChunkTotals(errors=list(bad))
        items: list[NewMemory] = []
        k = 0
        with self.db.session() as s:
            chunk = self._locked_chunk(s, run_id, org_id, chunk_index)  # held until commit: one writer per chunk
            if chunk is None or chunk.status != "running":
                return None  # another attempt finished (or gave up) this chunk meanwhile
            if texts:
                index_sync.check_embedder(s, org_id, emb)
            results = bulk_upsert(s, self.collections, org_id, [
                BulkItem(row.ids, row.properties, Provenance(source=source, source_ts=row.ts,
                                                             source_event_id=f"{run_id}:{row.index}"))
                for row in good])
            for row, res in zip(good, results, strict=True):
                if isinstance(res, MemrelayError):
                    totals.errors.append((row.index, res.message))
                    k += len(row.texts)
                    continue
                rec, written, created = res
                totals.records_created += created
                totals.records_updated += not created
                totals.properties_written += len(written.applied)
                for name, text in row.texts:
                    items.append(NewMemory(rec, text, vectors[k], row.ts, source=source,
                                           tags=sorted({source, name, *tags}), event_id=f"{run_id}:{row.index}"))
                    k += 1
            outcome = store_memories(s, items, embedder=emb.name, dim=emb.dim)
            totals.memories_created = len(outcome.created)
            totals.duplicates_skipped = len(outcome.duplicates)
            totals.superseded = len(outcome.superseded)
            for idx, err in totals.errors:
                s.add(BatchRowError(run_id=run_id, org_id=org_id, row_index=idx, error=err[:2000]))
            chunk.status, chunk.rows, chunk.last_error, chunk.updated_at = "done", None, None, utcnow()
            s.flush()
            self._count(s, run_id, org_id, len(rows), totals)
        return totals, outcome.created

    def _llm_extract(self, org_id: str, rows: list[PreparedRow],
                     schema: dict[str, PropertySpec]) -> list[tuple[int, str]]:
        """With an LLM configured, ``extractMemories`` text becomes self-contained facts plus typed values of
        the collection's autoSystem properties (structured fields win). A failed extraction keeps the raw
        text as the memory and is reported as a row error."""
        extractor = self.extractor
        if extractor is None or not any(row.texts for row in rows):
            return []
        specs = [spec for spec in schema.values() if spec.autoSystem]
        errors: list[tuple[int, str]] = []
        for row in rows:
            texts: list[tuple[str, str]] = []
            for name, text in row.texts:
                try:
                    res = extractor.extract(content=text, properties=specs, ts=row.ts, tags=[name], org_id=org_id)
                except MemrelayError as exc:
                    errors.append((row.index, f"{name}: AI extraction failed, raw text kept: {exc.message}"))
                    texts.append((name, text))
                    continue
                texts += [(name, fact) for fact in res.facts] or [(name, text)]
                for v in res.values:
                    row.properties.setdefault(v.property_name, v.value)
            row.texts = texts
        return errors

    def _count(self, s: Session, run_id: str, org_id: str, n_rows: int, totals: ChunkTotals) -> None:
        """Atomically add this chunk to the run's counters; the last chunk completes the run."""
        s.execute(update(BatchRun).where(BatchRun.id == run_id, BatchRun.org_id == org_id).values(
            chunks_done=BatchRun.chunks_done + 1, processed_rows=BatchRun.processed_rows + n_rows,
            error_count=BatchRun.error_count + len(totals.errors), status="running"))
        # The UPDATE holds the run's row lock until commit, so this read-modify-write is serialised.
        run = s.scalars(select(BatchRun).where(BatchRun.id == run_id).execution_options(populate_existing=True)).one()
        merged = dict(run.totals or {})
        for key, value in totals.as_dict().items():
            merged[key] = int(merged.get(key, 0)) + value
        run.totals = merged
        if run.chunks_done >= run.chunks_total:
            given_up = s.scalar(select(BatchChunk.chunk_index).where(BatchChunk.run_id == run_id,
                                                                   BatchChunk.status == "failed").limit(1))
            run.status = ("failed" if run.error_count >= run.total_rows
                          else "partial" if given_up is not None else "completed")
            run.finished_at = utcnow()
            emit(s, org_id, "batch.completed", {"runId": run.id, "status": run.status, "totalRows": run.total_rows,
                                                "errorCount": run.error_count, "totals": merged})

    def status(self, org_id: str, run_id: str, *, max_errors: int = MAX_ERRORS_SHOWN) -> dict[str, Any]:
        """Status, progress, the first per-row errors and totals of a run."""
        with self.db.read() as s:
            run = s.scalar(select(BatchRun).where(BatchRun.id == run_id, BatchRun.org_id == org_id))
            if run is None:
                raise NotFound(f"batch run {run_id} not found")
            errors = s.execute(select(BatchRowError.row_index, BatchRowError.error)
                               .where(BatchRowError.run_id == run_id).order_by(BatchRowError.row_index)
                               .limit(max_errors)).all()
        pct = round(100.0 * run.processed_rows / run.total_rows, 1) if run.total_rows else 100.0
        return {"runId": run.id, "name": run.name, "source": run.source, "status": run.status,
                "progress": {"totalRows": run.total_rows, "processedRows": run.processed_rows,
                             "chunksTotal": run.chunks_total, "chunksDone": run.chunks_done, "percent": pct},
                "errorCount": run.error_count, "errors": [{"row": i, "error": e} for i, e in errors],
                "totals": run.totals or {}, "createdAt": iso(run.created_at), "finishedAt": iso(run.finished_at)}


# --- memorize many requests at once (backfill memory templates) ------------------------------------
@dataclass
class ManyOutcome:
    """What :func:`memorize_many` did: per request its answer or its error, and the batch's totals."""

    results: list[dict[str, Any] | MemrelayError] = field(default_factory=list)
    memories_created: int = 0
    duplicates_skipped: int = 0
    superseded: int = 0
    embed_calls: int = 0  # calls that reached the embedder for this batch's texts (1 unless it fell back)
    batched: int = 0  # requests that took the batch path (the others were memorized one by one)
    pending: list[str] = field(default_factory=list)  # created memories left for the caller to push to the index


@dataclass
class _Planned:
    index: int
    req: MemorizeRequest
    ts: datetime
    entity_type: str
    specs: list[PropertySpec]
    subject: str | None
    company: str | None
    schema: dict[str, PropertySpec] = field(default_factory=dict)  # the entity type's (values outside it are dropped)
    extraction: ExtractedContent | None = None
    facts: list[Fact] | None = None  # the offline extraction's facts, computed once (see _texts_to_embed)


class _CountingEmbedder:
    """The embedder, counting the calls that reach it (the batch's one-call promise is observable)."""

    def __init__(self, inner: Embedder) -> None:
        self.inner, self.calls = inner, 0

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        return self.inner.embed(texts)


def _batchable(memories: Memories, req: MemorizeRequest) -> bool:
    """Requests that :meth:`Memories.memorize` handles in one pass with the offline (or verbatim) extraction;
    chat messages, LLM extraction and records that need their entity type created go one by one."""
    return (not req.messages and not (req.enhanced and memories.extractor is not None)
            and req.identifiers.type != SELF_TYPE and not named_by_record_id(req))


def _texts_to_embed(plan: _Planned) -> list[str]:
    """The texts the offline extraction and the facts of ``plan`` will embed (extra ones cost only time; a
    missing one is embedded on its own later), so the whole batch is embedded in one call. The facts are kept
    on ``plan`` for :func:`_extract_planned`, which would otherwise extract them a second time."""
    req = plan.req
    if req.verbatim:
        return [" ".join(req.content.split())]
    plan.facts = extract_facts(req.content, subject=plan.subject, ts=plan.ts, entity_type=plan.entity_type,
                               company=plan.company, author=req.speaker)
    facts = [f.text for f in plan.facts]
    if plan.specs and req.max_properties != 0 and facts:
        return facts + split_sentences("\n".join(facts))
    return facts


def _extract_planned(memories: Memories, org_id: str, plan: _Planned, emb: Embedder) -> ExtractedContent:
    """:meth:`Memories._extract` of a planned request, handing the offline extraction the facts already
    extracted for it (a batchable request is verbatim or extracted offline: see :func:`_batchable`)."""
    req = plan.req
    if req.verbatim or plan.facts is None or (req.enhanced and memories.extractor is not None):
        return memories._extract(org_id, req, plan.specs, plan.ts, plan.subject, embedder=emb,
                                 entity_type=plan.entity_type, company=plan.company)
    return offline_extract(req.content, plan.specs, plan.ts, plan.subject, entity_type=plan.entity_type,
                           embedder=emb, max_properties=req.max_properties, company=plan.company,
                           author=req.speaker, facts=plan.facts)


def memorize_many(memories: Memories, org_id: str, reqs: list[MemorizeRequest], *,
                  push_index: bool = True) -> ManyOutcome:
    """The same as ``[memories.memorize(org_id, r) for r in reqs]`` — same memories, dedup, supersession,
    properties, provenance and events — done as a batch: one read transaction to resolve the records, the
    offline extraction of every request, one embedder call for all their texts, and one write transaction
    with one :func:`store_memories` call; the vectors are pushed to the index once, after the commit.

    A request that cannot be batched (see :func:`_batchable`) is memorized on its own; one that fails is
    that request's error. If the write transaction fails, every request of the batch is retried one by one
    (so one bad record never loses the others' memories).

    ``push_index=False`` (bulk callers: a backfill pushes once at its end) leaves the batch's memories pending
    in SQL and lists them in ``ManyOutcome.pending``; pending rows are indexed by whoever pushes them or, failing
    that, by :meth:`~memrelay.engine.memory.index_sync.MemoryIndex.reconcile`."""
    out = ManyOutcome(results=[{} for _ in reqs])
    counting = _CountingEmbedder(memories.embedder)
    emb = MemoEmbedder(counting)
    plans: list[_Planned] = []
    singles: list[int] = []
    cache: dict[Any, Any] = {}
    schemas: dict[str, dict[str, PropertySpec]] = {}
    existing: dict[int, str] = {}  # plan's position -> the record it names (when it exists)
    with memories.db.read() as s:
        index_sync.check_embedder(s, org_id, emb, claim=False)
        lookup: Callable[[str], Candidates] | None = None
        named_records: list[Record] = []  # held, so the lookups below find them in the session's identity map
        if current_access().restricts_records:  # PostgreSQL's prefetch below is a text statement, which the access
            # criteria do not filter: each request looks its keys up itself (an ORM statement, filtered)
            named = list(dict.fromkeys(str(r.identifiers.record_id) for r in reqs if r.identifiers.record_id))
            named_records = [rec for i in range(0, len(named), 500)  # one query for every record named by id
                             for rec in s.scalars(select(Record).where(Record.org_id == org_id,
                                                                       Record.id.in_(named[i:i + 500])))]
        else:  # every key's holders (and the records named by id) in one query per key name, not one per request
            lookup = partial(prefetch_keys(s, org_id, [k for r in reqs for k in r.identifiers.keys()]).candidates,
                             live=True)
        for i, req in enumerate(reqs):
            if not _batchable(memories, req):
                singles.append(i)
                continue
            try:
                req.identifiers.require_any()
                entity_type, specs, record_id, _ = memories.resolve_target(s, org_id, req, cache=cache,
                                                                           describe=False, lookup=lookup)
            except MemrelayError as exc:
                out.results[i] = exc
                continue
            if entity_type not in schemas:
                schemas[entity_type] = memories.collections.schema_for(s, org_id, entity_type)
            if record_id is not None:
                existing[len(plans)] = record_id
            plans.append(_Planned(i, req, as_aware(req.timestamp) or utcnow(), entity_type, specs, None, None,
                                  schemas[entity_type]))
        # how facts name each record and its company: a few queries for the whole batch (subject_of, company_of)
        ids = list(dict.fromkeys(existing.values()))
        subjects = subjects_of(s, ids)
        companies = companies_of(s, ids)
        del named_records, lookup
    for n, plan in enumerate(plans):
        ids_ = plan.req.identifiers
        record_id = existing.get(n)
        plan.subject = (subjects.get(record_id) if record_id else None) or ids_.email or ids_.website_url \
            or ids_.customKeyValue or None
        plan.company = companies.get(record_id) if record_id and plan.entity_type != "company" else None
    texts = list(dict.fromkeys(t for plan in plans for t in _texts_to_embed(plan)))
    if texts:
        emb.embed(texts)
    ready: list[_Planned] = []
    for plan in plans:
        try:
            plan.extraction = _extract_planned(memories, org_id, plan, emb)
        except MemrelayError as exc:
            out.results[plan.index] = exc
            continue
        ready.append(plan)
    facts = [f for plan in ready if plan.extraction is not None for f in plan.extraction.facts]
    vectors = emb.embed(facts)
    out.embed_calls = counting.calls
    try:
        created = _store_planned(memories, org_id, ready, vectors, emb, out)
    except MemrelayError:
        log.warning("batch memorize failed; memorizing its %d requests one by one", len(ready), exc_info=True)
        singles += [plan.index for plan in ready]
        created = []
    else:
        out.batched = len(ready)
    if created and push_index:
        memories.index.sync_after_commit(index=created, flush_now=False)
    elif created:
        out.pending += created
    for i in sorted(singles):
        try:
            one = memories.memorize(org_id, reqs[i])
        except MemrelayError as exc:
            out.results[i] = exc
            continue
        out.results[i] = one
        out.memories_created += int(one.get("memoriesCreated", 0))
        out.duplicates_skipped += int(one.get("duplicatesSkipped", 0))
        out.superseded += len(one.get("superseded") or [])
    return out


def _store_planned(memories: Memories, org_id: str, plans: list[_Planned], vectors: np.ndarray,
                   emb: Embedder, out: ManyOutcome) -> list[str]:
    """One transaction: the records and their extracted property values (one :func:`bulk_upsert`: per
    request one item per confidence level, as :meth:`Memories._write_values` writes them one by one) and
    every memory (one :func:`store_memories` call)."""
    if not plans:
        return []
    bulk: list[BulkItem] = []
    owner: list[int] = []  # the plan of each bulk item
    for n, plan in enumerate(plans):
        req, extraction = plan.req, plan.extraction
        assert extraction is not None
        ids = req.identifiers.model_copy(update={"type": plan.entity_type})
        by_conf: dict[float, dict[str, Any]] = {}
        schema = plan.schema
        for v in extraction.values:
            if v.property_name in schema:
                by_conf.setdefault(round(float(v.confidence), 3), {})[v.property_name] = v.value
        for conf, values in by_conf.items() or [(None, {})]:
            bulk.append(BulkItem(ids, values, Provenance(source=req.source, source_event_id=req.sourceEventId,
                                                         source_ts=plan.ts, confidence=conf)))
            owner.append(n)
    items: list[NewMemory] = []
    answers: list[tuple[int, dict[str, Any]]] = []
    with memories.db.session() as s:
        index_sync.check_embedder(s, org_id, emb)
        results = bulk_upsert(s, memories.collections, org_id, bulk)
        records: dict[int, Any] = {}
        applied: dict[int, set[str]] = {}
        for n, res in zip(owner, results, strict=True):
            if isinstance(res, MemrelayError):
                raise res  # the transaction is abandoned; memorize_many retries its requests one by one
            rec, written, _ = res
            records[n] = rec
            applied.setdefault(n, set()).update(written.applied)
        k = 0
        for n, plan in enumerate(plans):
            req, extraction, rec = plan.req, plan.extraction, records[n]
            assert extraction is not None
            expires_at = expiry(req.expiresAt, req.ttl, utcnow())
            spans = getattr(extraction, "spans", None) or [None] * len(extraction.facts)
            for fact, span in zip(extraction.facts, spans, strict=True):
                items.append(NewMemory(rec, fact, vectors[k], plan.ts, source=req.source, speaker=req.speaker,
                                       tags=sorted(set(req.tags)), event_id=req.sourceEventId, metadata=req.metadata,
                                       expires_at=expires_at, span=span))
                k += 1
            written = [{"name": v.property_name, "value": v.value, "confidence": round(float(v.confidence), 3),
                        "applied": v.property_name in applied[n]}
                       for v in extraction.values if v.property_name in plan.schema]
            answers.append((plan.index, {"recordId": rec.id, "type": rec.entity_type, "propertiesExtracted": written,
                                         "extraction": extraction.method, "facts": len(extraction.facts)}))
        outcome = store_memories(s, items, embedder=emb.name, dim=emb.dim, pool_cache=memories.pool_cache)
    for i, answer in answers:
        out.results[i] = answer
    out.memories_created += len(outcome.created)
    out.duplicates_skipped += len(outcome.duplicates)
    out.superseded += len(outcome.superseded)
    return outcome.created
