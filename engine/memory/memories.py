"""Memorize: free text about a record becomes self-contained memories (embedded, deduped, fresh-fact
ordered) plus typed property values; also memory edits, deletion and listing.

SQL is written first (memories start ``index_state="pending"``); the vectors reach Milvus after the commit
(an :class:`~memrelay.engine.memory.index_sync.IndexWriter`), so a crash in between is repaired by ``reconcile``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import delete as sql_delete
from sqlalchemy import select
from sqlalchemy.orm import Session

from memrelay.engine.adapters.vector_index import to_blob
from memrelay.engine.core.embedder import Embedder
from memrelay.engine.core.errors import BadRequest, NotFound, ValidationFailed
from memrelay.engine.core.properties_types import PropertySpec
from memrelay.engine.core.util import as_aware, utcnow
from memrelay.engine.domain.extraction import (
    ExtractedValue,
    anchor_relative_dates,
    extract_properties,
    split_facts,
)
from memrelay.engine.memory import index_sync
from memrelay.engine.memory.index_sync import IndexWriter
from memrelay.engine.stores.collections import Collections
from memrelay.engine.stores.db.database import Database
from memrelay.engine.stores.db.models import (
    Collection,
    IndexTombstone,
    Memory,
    PropertyValue,
    Record,
    RecordKey,
)
from memrelay.engine.stores.identity import Identifiers, require_record, resolve_record
from memrelay.engine.stores.memory_store import NewMemory, memory_to_dict, provenance_entry, store_memories
from memrelay.engine.stores.outbox import emit
from memrelay.engine.stores.properties import Provenance, lock_record, write_properties
from memrelay.engine.stores.records import Records

IDENTIFIER_FIELDS = ("email", "website_url", "websiteUrl", "website", "record_id", "recordId", "customKeyName",
                     "customKeyValue", "customKeys", "type", "entityType")


class MemorizeRequest(BaseModel):
    """POST /api/v1/memorize (Personize-compatible; identifiers top-level or under ``identifiers``)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    content: str = Field(min_length=1, max_length=200_000)
    speaker: str | None = None
    timestamp: datetime | None = Field(None, description="When the content happened (defaults to now).")
    identifiers: Identifiers = Field(default_factory=Identifiers)
    tags: list[str] = Field(min_length=1, description="At least one tag.")
    enhanced: bool = False
    max_properties: int | None = Field(None, ge=0, le=200, alias="maxProperties")
    extractionPrompt: str | None = None
    collectionId: str | None = None
    source: str = "memorize"
    sourceEventId: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _lift_identifiers(cls, data: Any) -> Any:
        return lift_identifiers(data)


def lift_identifiers(data: Any) -> Any:
    """Merge top-level identifier fields (``email``, ``website_url``, ``type`` ...) into ``identifiers``."""
    if isinstance(data, dict):
        raw = data.get("identifiers") or {}
        ids = raw.model_dump(exclude_none=True) if isinstance(raw, BaseModel) else dict(raw)
        for name in IDENTIFIER_FIELDS:
            if name in data and name not in ids:
                ids[name] = data[name]
        data = {**data, "identifiers": ids}
    return data


def find_target(s: Session, org_id: str, ids: Identifiers, entity_type: str | None = None) -> Record:
    """The live record identifiers name (404 otherwise); an email means a contact, a bare website a company."""
    return require_record(s, org_id, ids, entity_type or ids.type or ids.inferred_type())


@dataclass(frozen=True)
class Extraction:
    """What an extractor read from content: self-contained facts and typed property values."""

    facts: list[str]
    values: list[ExtractedValue]
    method: str


class ExtractedContent(Protocol):
    """What memorize reads from any extractor's result (:class:`Extraction` or the LLM's result)."""

    @property
    def facts(self) -> list[str]: ...

    @property
    def values(self) -> list[ExtractedValue]: ...

    @property
    def method(self) -> str: ...


class MemoryExtractor(Protocol):
    """The LLM extractor (:class:`~memrelay.engine.memory.llm_extractor.LLMExtractor`), used for ``enhanced``
    memorize and batch ``extractMemories`` when a model is configured."""

    def extract(self, *, content: str, properties: list[PropertySpec], ts: datetime | None = None,
                subject: str | None = None, prompt: str | None = None, max_properties: int | None = None,
                tags: list[str] | None = None, org_id: str | None = None) -> ExtractedContent: ...


class Memorizer(Protocol):
    """What callers outside the memory layer need of :class:`Memories`: one memorize call."""

    def memorize(self, org_id: str, req: MemorizeRequest) -> dict[str, Any]: ...


class _Timer:
    def __init__(self) -> None:
        self.ms: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.ms[name] = round((time.perf_counter() - t0) * 1000, 3)


class Memories:
    """Org-scoped memory writes and listing.

    ``extractor`` is None without an LLM: ``enhanced`` requests then use the offline extraction."""

    def __init__(self, db: Database, embedder: Embedder, records: Records, collections: Collections,
                 index: IndexWriter, extractor: MemoryExtractor | None = None):
        self.db, self.embedder, self.records, self.collections = db, embedder, records, collections
        self.index, self.extractor = index, extractor

    # --- memorize ----------------------------------------------------------------------------
    def memorize(self, org_id: str, req: MemorizeRequest) -> dict[str, Any]:
        """Extract facts and properties from ``req.content`` and store them on the identified record."""
        ids = req.identifiers
        ids.require_any()
        entity_type = ids.type or ids.inferred_type()
        ts = as_aware(req.timestamp) or utcnow()
        timer = _Timer()
        emb = self.embedder
        with timer.stage("resolve"), self.db.read() as s:
            index_sync.check_embedder(s, org_id, emb, claim=False)
            existing = self._existing(s, org_id, ids, entity_type)
            entity_type = existing.entity_type if existing else entity_type
            if entity_type is None:
                raise BadRequest("'type' is required to create a record", details={"field": "type"})
            entity_type = self.collections.active_entity_type(s, org_id, entity_type)
            specs = self._target_properties(s, org_id, entity_type, req.collectionId)
            subject = subject_of(s, existing, ids)
        with timer.stage("extract"):
            extraction = self._extract(org_id, req, specs, ts, subject)
        with timer.stage("embed"):
            vectors = emb.embed(extraction.facts) if extraction.facts else None
        prov_tags = sorted(set(req.tags))
        with timer.stage("store"), self.db.session() as s:
            index_sync.check_embedder(s, org_id, emb)
            rec = self.records.get_or_create(s, org_id, ids.model_copy(update={"type": entity_type}))
            written = self._write_values(s, rec, extraction.values, ts, req)
            items = [NewMemory(rec, fact, vector, ts, source=req.source, speaker=req.speaker, tags=prov_tags,
                               event_id=req.sourceEventId)
                     for fact, vector in zip(extraction.facts, [] if vectors is None else vectors, strict=True)]
            outcome = store_memories(s, items, embedder=emb.name, dim=emb.dim)
        with timer.stage("index"):
            indexed = self.index.sync_after_commit(index=outcome.created, flush_now=False)
        return {"recordId": rec.id, "type": rec.entity_type, "memoriesCreated": len(outcome.created),
                "duplicatesSkipped": len(outcome.duplicates), "memoryIds": outcome.created,
                "duplicateOf": outcome.duplicates, "superseded": outcome.superseded,
                "propertiesExtracted": written, "extraction": extraction.method,
                "indexState": "indexed" if indexed else "pending", "timings": timer.ms}

    @staticmethod
    def _existing(s: Session, org_id: str, ids: Identifiers, entity_type: str | None) -> Record | None:
        if entity_type:
            return resolve_record(s, org_id, ids, entity_type)
        try:
            return require_record(s, org_id, ids)
        except NotFound:
            return None

    def _target_properties(self, s: Session, org_id: str, entity_type: str,
                           collection_id: str | None) -> list[PropertySpec]:
        if collection_id:
            c = s.scalar(select(Collection).where(Collection.org_id == org_id, Collection.archived_at.is_(None),
                                                  (Collection.id == collection_id) | (Collection.name == collection_id)))
            if c is None:
                raise NotFound(f"collection {collection_id} not found")
            if c.entity_type != entity_type:
                raise ValidationFailed(f"collection {c.name!r} is for {c.entity_type}, not {entity_type}")
            specs = [PropertySpec.model_validate(p) for p in c.properties]
        else:
            specs = list(self.collections.schema_for(s, org_id, entity_type).values())
        return [p for p in specs if p.autoSystem]

    def _extract(self, org_id: str, req: MemorizeRequest, specs: list[PropertySpec], ts: datetime,
                 subject: str | None) -> ExtractedContent:
        if req.enhanced and self.extractor is not None:
            return self.extractor.extract(content=req.content, properties=specs, ts=ts, subject=subject,
                                     prompt=req.extractionPrompt, max_properties=req.max_properties,
                                     tags=req.tags, org_id=org_id)
        return offline_extraction(req.content, specs, ts, subject, embedder=self.embedder,
                                  max_properties=req.max_properties)

    def _write_values(self, s: Session, rec: Record, values: list[ExtractedValue], ts: datetime,
                      req: MemorizeRequest) -> list[dict[str, Any]]:
        """Apply extracted values (one provenance per confidence level) through write_properties."""
        if not values:
            return []
        schema = self.collections.schema_for(s, rec.org_id, rec.entity_type)
        by_conf: dict[float, dict[str, Any]] = {}
        for v in values:
            if v.property_name in schema:
                by_conf.setdefault(round(float(v.confidence), 3), {})[v.property_name] = v.value
        applied: set[str] = set()
        for conf, batch in by_conf.items():
            prov = Provenance(source=req.source, source_event_id=req.sourceEventId, source_ts=ts, confidence=conf)
            applied |= set(write_properties(s, rec, batch, schema, prov).applied)
        return [{"name": v.property_name, "value": v.value, "confidence": round(float(v.confidence), 3),
                 "applied": v.property_name in applied} for v in values if v.property_name in schema]

    # --- listing -----------------------------------------------------------------------------
    def list_for_record(self, s: Session, record_id: str, include_superseded: bool = False) -> list[dict[str, Any]]:
        """A record's memories, newest content first (superseded ones only on request)."""
        org_id = s.scalar(select(Record.org_id).where(Record.id == record_id))
        q = select(Memory).where(Memory.org_id == org_id, Memory.record_id == record_id)
        if not include_superseded:
            q = q.where(Memory.superseded_by.is_(None))
        return [memory_to_dict(m) for m in s.scalars(q.order_by(Memory.ts.desc(), Memory.id))]

    # --- edits -------------------------------------------------------------------------------
    def update_text(self, org_id: str, memory_id: str, text: str, prov: Provenance) -> dict[str, Any]:
        """Replace a memory's text: re-embedded, re-topiced and re-indexed."""
        from memrelay.engine.domain import semantics

        text = text.strip()
        if not text:
            raise ValidationFailed("memory text must not be empty")
        emb = self.embedder
        vector = emb.embed([text])[0]
        with self.db.session() as s:
            index_sync.check_embedder(s, org_id, emb)
            m = s.scalar(select(Memory).where(Memory.id == memory_id, Memory.org_id == org_id))
            if m is None:
                raise NotFound(f"memory {memory_id} not found")
            lock_record(s, m.record_id)
            now = utcnow()
            m.text, m.embedding, m.embedder, m.topic = text, to_blob(vector), emb.name, semantics.topic_of(text)
            if prov.source_ts:
                m.ts = as_aware(prov.source_ts)
            m.provenance = [*(m.provenance or []), provenance_entry(prov.source, m.ts, event_id=prov.source_event_id,
                                                                    actor=prov.actor)]
            m.updated_at, m.index_state = now, "pending"
            emit(s, org_id, "memory.updated", {"memoryId": m.id, "recordId": m.record_id, "type": m.entity_type,
                                               "change": "text_updated", "actor": prov.actor})
            result = memory_to_dict(m)
        self.index.sync_after_commit(index=[memory_id])
        return result

    def delete(self, org_id: str, memory_ids: list[str] | None = None,
               ids: Identifiers | None = None) -> dict[str, Any]:
        """Delete given memories, or every memory of the identified record; vectors follow via tombstones."""
        if not memory_ids and ids is None:
            raise BadRequest("give memoryIds or identifiers of a record")
        with self.db.session() as s:
            record_id = require_record(s, org_id, ids).id if ids is not None else None
            if memory_ids:  # by primary key; the org and record are checked on the rows
                rows = [(mid, rid) for mid, rid, oid in s.execute(
                    select(Memory.id, Memory.record_id, Memory.org_id).where(Memory.id.in_(memory_ids)))
                        if oid == org_id and record_id in (None, rid)]
            else:  # no memory_ids: the identifiers were given (checked above), so record_id is set
                rows = [(mid, rid) for mid, rid in s.execute(select(Memory.id, Memory.record_id).where(
                    Memory.org_id == org_id, Memory.record_id == record_id))]
            if memory_ids and not rows:
                raise NotFound("no memory matches those ids")
            now = utcnow()
            by_record: dict[str, list[str]] = {}
            for mid, rid in rows:
                by_record.setdefault(rid, []).append(mid)
                s.add(IndexTombstone(org_id=org_id, memory_id=mid, created_at=now))
            found = [mid for mid, _ in rows]
            for i in range(0, len(found), 500):
                s.execute(sql_delete(Memory).where(Memory.id.in_(found[i:i + 500])))
            for rid, mids in by_record.items():
                emit(s, org_id, "memory.deleted", {"recordId": rid, "memoryIds": mids})
        self.index.sync_after_commit(tombstones_of=org_id)
        return {"deleted": len(found), "memoryIds": found}


def offline_extraction(content: str, specs: list[PropertySpec], ts: datetime, subject: str | None, *,
                       embedder: Any = None, max_properties: int | None = None) -> Extraction:
    """Deterministic extraction: self-contained, date-anchored facts and typed values with confidence."""
    facts = [anchor_relative_dates(f, ts) for f in split_facts(content, subject=subject)]
    if not facts and content.strip():
        facts = [anchor_relative_dates(" ".join(content.split()), ts)]
    values = extract_properties(content, specs, ts=ts, embedder=embedder) if specs and max_properties != 0 else []
    if max_properties is not None:
        values = sorted(values, key=lambda v: -v.confidence)[:max_properties]
    return Extraction(facts=list(dict.fromkeys(facts)), values=values, method="offline")


def subject_of(s: Session, rec: Record | None, ids: Identifiers) -> str | None:
    """How facts name the record: its name properties, else email, website or another key."""
    if rec is not None:
        props: dict[str, Any] = dict(s.execute(select(PropertyValue.name, PropertyValue.value).where(
            PropertyValue.record_id == rec.id,
            PropertyValue.name.in_(["first_name", "last_name", "name", "deal_name", "company_name"]))).all())
        full = " ".join(str(props[k]) for k in ("first_name", "last_name") if props.get(k))
        for candidate in (full, props.get("name"), props.get("deal_name")):
            if candidate:
                return str(candidate)
        keys = dict(s.execute(select(RecordKey.key_name, RecordKey.key_value).where(
            RecordKey.record_id == rec.id)).all())
        for name in ("email", "website_url"):
            if keys.get(name):
                return keys[name]
    return ids.email or ids.website_url or ids.customKeyValue or None
