"""Memorize: free text about a record becomes self-contained memories (embedded, deduped, fresh-fact
ordered) plus typed property values; also memory edits, deletion and listing.

SQL is written first (memories start ``index_state="pending"``); the vectors reach Milvus after the commit
(an :class:`~memrelay.engine.memory.index_sync.IndexWriter`), so a crash in between is repaired by ``reconcile``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from memrelay.engine.adapters.vector_index import to_blob
from memrelay.engine.core.embedder import Embedder, MemoEmbedder
from memrelay.engine.core.errors import BadRequest, MemrelayError, NotFound, ValidationFailed
from memrelay.engine.core.properties_types import PropertySpec
from memrelay.engine.core.util import as_aware, iso, utcnow
from memrelay.engine.domain.coercion import coerce
from memrelay.engine.domain.extraction import ExtractedValue
from memrelay.engine.domain.extraction.standard import OfflineExtraction
from memrelay.engine.domain.extraction.standard import extract as offline_extract
from memrelay.engine.domain.readings import text_readings
from memrelay.engine.memory import index_sync
from memrelay.engine.memory.direct_recall import lookup_answer
from memrelay.engine.memory.index_sync import IndexWriter
from memrelay.engine.memory.memory_controls import (
    MAX_MESSAGES,
    ChatMessage,
    check_metadata,
    expiry,
    memorable,
    transcript,
    unexpired,
)
from memrelay.engine.stores.collections import Collections
from memrelay.engine.stores.db.database import Database
from memrelay.engine.stores.db.models import (
    Collection,
    Memory,
    PropertyValue,
    Record,
    RecordKey,
)
from memrelay.engine.stores.identity import (
    Candidates,
    Identifiers,
    normalise_type,
    require_record,
    resolve_record,
)
from memrelay.engine.stores.memory_store import (
    COMPANY_PROPS,
    LivePoolCache,
    NewMemory,
    company_from,
    memory_to_dict,
    provenance_entry,
    restore_memories,
    soft_delete_memories,
    store_memories,
)
from memrelay.engine.stores.outbox import emit
from memrelay.engine.stores.properties import (
    PendingWrites,
    Provenance,
    apply_coerced,
    load_current,
    lock_record,
    lock_records,
)
from memrelay.engine.stores.records import Records

IDENTIFIER_FIELDS = ("email", "website_url", "websiteUrl", "website", "record_id", "recordId", "customKeyName",
                     "customKeyValue", "customKeys", "type", "entityType")


MAX_ITEMS = 1000  # items of one synchronous memorizeBatch({items}) call
SELF_TYPE = "self"
ENHANCED_NOTE = ("enhanced extraction needs an LLM (set MEMRELAY_LLM_MODEL); the offline proactive extraction ran "
                 "(see 'extraction')")
SELF_KEY = "apiKeyId"
RECORD_ID_TYPE = "custom"  # records a caller names only by its own record_id ("campaign:q1-outbound")


class MemorizeRequest(BaseModel):
    """POST /api/v1/memorize (Personize-compatible; identifiers top-level or under ``identifiers``).

    ``collectionName`` / ``collectionId`` (or ``actionId``) choose the entity type of a new record;
    ``about: "self"`` targets the calling API key's own record (the gateway fills in the key)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    content: str = Field(min_length=1, max_length=200_000,
                         description="The text to memorize (built from ``messages`` when only those are given).")
    messages: list[ChatMessage] = Field(default_factory=list, max_length=MAX_MESSAGES,
                                        description="Chat input [{role, content, name?}]: each message is memorized "
                                                    "with its author (name, else role) as speaker; system "
                                                    "messages are skipped.")
    metadata: dict[str, Any] | None = Field(None, description="A JSON object stored on each memory; smart recall "
                                                              "filters on it (``filters``).")
    expiresAt: datetime | date | None = Field(None, description="Expiry (alias expiration_date): hidden from "
                                                                "recall afterwards unless includeExpired.")
    ttl: float | None = Field(None, gt=0, description="Expiry in seconds from now (instead of expiresAt).")
    speaker: str | None = None
    timestamp: datetime | None = Field(None, description="When the content happened (defaults to now).")
    identifiers: Identifiers = Field(default_factory=Identifiers)
    tags: list[str] = Field(default_factory=list, description="Optional categorization tags.")
    enhanced: bool = False
    max_properties: int | None = Field(None, ge=0, le=200, alias="maxProperties")
    extractionPrompt: str | None = None
    collectionId: str | None = Field(None, description="Target collection id or name (alias: actionId).")
    collectionName: str | None = Field(None, description="Target collection name, e.g. 'Student'.")
    about: Literal["lead", "self"] = "lead"
    source: str = "memorize"
    sourceEventId: str | None = None
    verbatim: bool = Field(False, description="Store the content as one memory exactly as given (no fact "
                                              "splitting, date anchoring or property extraction).")

    @model_validator(mode="before")
    @classmethod
    def _lift_identifiers(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            if "actionId" in data and "collectionId" not in data:
                data["collectionId"] = data.pop("actionId")
            if data.get("extractMemories") is True and "enhanced" not in data:
                data["enhanced"] = True
            if data.get("about") is None:
                data.pop("about", None)
            for alias in ("expires_at", "expiration_date"):
                if alias in data and "expiresAt" not in data:
                    data["expiresAt"] = data.pop(alias)
            if "ttlSeconds" in data and "ttl" not in data:
                data["ttl"] = data.pop("ttlSeconds")
            data["metadata"] = check_metadata(data.get("metadata"))
            if data.get("messages") and not data.get("content"):
                data["content"] = transcript([ChatMessage.model_validate(m) for m in data["messages"]]) or None
        return lift_identifiers(data)

    def for_key(self, key_id: str | None) -> MemorizeRequest:
        """``about: "self"`` resolved to the API key's own record (unchanged otherwise)."""
        if self.about != "self":
            return self
        return self.model_copy(update={"identifiers": self_identifiers(key_id)})


class MemorizeItemsRequest(BaseModel):
    """POST /api/v1/batch-memorize in Personize's ``memorizeBatch({items: [...]})`` form: each item is a
    memorize body (content, keys, ``collectionName``, ``extractMemories``)."""

    model_config = ConfigDict(extra="ignore")

    items: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_ITEMS)
    source: str = Field("batch-memorize", min_length=1, max_length=100)
    tags: list[str] = Field(default_factory=list, description="Added to every item's tags.")


def self_identifiers(key_id: str | None) -> Identifiers:
    """The identifiers of an API key's "self" record (``about: "self"``)."""
    if not key_id:
        raise BadRequest("about: 'self' needs an API key")
    return Identifiers(type=SELF_TYPE, customKeyName=SELF_KEY, customKeyValue=key_id)


def lift_identifiers(data: Any) -> Any:
    """Merge top-level identifier fields (``email``, ``website_url``, ``type`` ...) into ``identifiers``."""
    if isinstance(data, dict):
        raw = data.get("identifiers") or {}
        if not isinstance(raw, dict | BaseModel):
            raise ValueError("'identifiers' must be an object, e.g. {\"email\": \"ana@acme.com\"}")
        ids = raw.model_dump(exclude_none=True) if isinstance(raw, BaseModel) else dict(raw)
        for name in IDENTIFIER_FIELDS:
            if name in data and name not in ids:
                ids[name] = data[name]
        data = {**data, "identifiers": ids}
    return data


def named_by_record_id(req: MemorizeRequest) -> bool:
    """A memorize that names its record only by a caller-chosen ``record_id`` (SDK reference "Custom Entities
    via record_id"): no type, no collection, nothing that implies one, and not one of memrelay's ``rec_`` ids."""
    ids = req.identifiers
    return bool(ids.record_id and not str(ids.record_id).startswith("rec_") and not ids.type
                and not (req.collectionId or req.collectionName) and ids.inferred_type() is None)


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
        self.pool_cache = LivePoolCache()  # big records' live memories, for this process's memorizes

    # --- memorize ----------------------------------------------------------------------------
    def memorize(self, org_id: str, req: MemorizeRequest) -> dict[str, Any]:
        """Extract facts and properties from ``req.content`` and store them on the identified record."""
        if req.messages and not (req.enhanced and self.extractor is not None) and not req.verbatim:
            return self._memorize_messages(org_id, req)
        ids = req.identifiers
        ids.require_any()
        ts = as_aware(req.timestamp) or utcnow()
        timer = _Timer()
        emb = MemoEmbedder(self.embedder)  # extraction's sentences and the facts share vectors: embed once
        if ids.type == SELF_TYPE:
            self.ensure_self_type(org_id)
        by_record_id = named_by_record_id(req)
        if by_record_id:
            self.ensure_record_id_type(org_id)
        with timer.stage("resolve"), self.db.read() as s:
            index_sync.check_embedder(s, org_id, emb, claim=False)
            entity_type, specs, subject, company = self.resolve_target(s, org_id, req, by_record_id=by_record_id)
        with timer.stage("extract"):
            extraction = self._extract(org_id, req, specs, ts, subject, embedder=emb, entity_type=entity_type,
                                       company=company)
        with timer.stage("embed"):
            vectors = emb.embed(extraction.facts) if extraction.facts else None
        prov_tags = sorted(set(req.tags))
        with timer.stage("store"), self.db.session() as s:
            index_sync.check_embedder(s, org_id, emb)
            # the type's row and its schema in one query; the record found (or created) under it
            et_row, schema = self.collections.writable_type_and_schema(s, org_id, entity_type)
            rec, created = self.records.find_or_create(s, org_id, ids.model_copy(update={"type": entity_type}),
                                                       et_row)
            written = self._write_values(s, rec, extraction.values, ts, req, schema=schema, new_record=created)
            expires_at = expiry(req.expiresAt, req.ttl, utcnow())
            spans = getattr(extraction, "spans", None) or [None] * len(extraction.facts)
            items = [NewMemory(rec, fact, vector, ts, source=req.source, speaker=req.speaker, tags=prov_tags,
                               event_id=req.sourceEventId, metadata=req.metadata, expires_at=expires_at, span=span)
                     for fact, vector, span in zip(extraction.facts, [] if vectors is None else vectors, spans,
                                                   strict=True)]
            outcome = store_memories(s, items, embedder=emb.name, dim=emb.dim, pool_cache=self.pool_cache)
        with timer.stage("index"):
            indexed = self.index.sync_after_commit(index=outcome.created, flush_now=False)
        return {"recordId": rec.id, "type": rec.entity_type, "memoriesCreated": len(outcome.created),
                "duplicatesSkipped": len(outcome.duplicates), "memoryIds": outcome.created,
                "duplicateOf": outcome.duplicates, "superseded": outcome.superseded,
                "propertiesExtracted": written, "extraction": extraction.method,
                **({"note": ENHANCED_NOTE} if req.enhanced and extraction.method == "offline" else {}),
                "indexState": "indexed" if indexed else "pending", "timings": timer.ms}

    def resolve_target(self, s: Session, org_id: str, req: MemorizeRequest, *, by_record_id: bool = False,
                       cache: dict[Any, Any] | None = None, describe: bool = True,
                       lookup: Callable[[str], Candidates] | None = None,
                       ) -> tuple[str, list[PropertySpec], str | None, str | None]:
        """The entity type a memorize writes to, the properties extraction may fill, and how facts name the
        record and its company (shared by :meth:`memorize` and the batch path,
        :func:`memrelay.engine.memory.batch.memorize_many`, which passes a ``cache`` for the batch's entity
        types, ``lookup`` (live records of a type by key, from the batch's prefetch) and, with ``describe=False``,
        gets the existing record's id in place of the subject)."""
        ids = req.identifiers
        collection = target_collection(s, org_id, req.collectionId or req.collectionName)
        if collection is not None and ids.type and ids.type != collection.entity_type:
            raise ValidationFailed(f"collection {collection.name!r} is for {collection.entity_type}, "
                                   f"not {ids.type}", details={"collection": collection.name})
        entity_type = ids.type or (collection.entity_type if collection else None) or ids.inferred_type()
        existing = self._existing(s, org_id, ids, entity_type, lookup)
        entity_type = existing.entity_type if existing else entity_type or (RECORD_ID_TYPE if by_record_id
                                                                             else None)
        if entity_type is None:
            raise BadRequest("'type' (or 'collectionName') is required to create a record",
                             details={"field": "type"})
        cache = {} if cache is None else cache
        if ("type", entity_type) not in cache:
            if collection is None:  # the type's row and its schema (the specs below) in one query
                et_row, schema = self.collections.writable_type_and_schema(s, org_id, entity_type)
                cache[("type", entity_type)] = et_row.name
                cache.setdefault(("specs", et_row.name, None), [p for p in schema.values() if p.autoSystem])
            else:
                cache[("type", entity_type)] = self.collections.active_entity_type(s, org_id, entity_type)
        entity_type = cache[("type", entity_type)]
        key = ("specs", entity_type, collection.id if collection is not None else None)
        if key not in cache:
            cache[key] = self._target_properties(s, org_id, entity_type, collection)
        specs = cache[key]
        if not describe:  # the caller names the records in bulk (subjects_of / companies_of)
            return entity_type, specs, existing.id if existing is not None else None, None
        return entity_type, specs, *describe_record(s, existing, ids)

    def _memorize_messages(self, org_id: str, req: MemorizeRequest) -> dict[str, Any]:
        """Chat input (offline extraction): each message memorized on its own with its author as speaker;
        one answer summing the per-message ones."""
        out: dict[str, Any] = {}
        per_message = []
        for i, m in enumerate(memorable(req.messages)):
            one = self.memorize(org_id, req.model_copy(update={
                "messages": [], "content": m.content.strip(), "speaker": m.author,
                "sourceEventId": f"{req.sourceEventId}#{i}" if req.sourceEventId else None}))
            per_message.append({"index": i, "speaker": m.author, "memoryIds": one["memoryIds"]})
            if not out:
                out = {**one, "memoryIds": [], "duplicateOf": [], "superseded": [], "propertiesExtracted": [],
                       "memoriesCreated": 0, "duplicatesSkipped": 0}
            for key in ("memoryIds", "duplicateOf", "superseded", "propertiesExtracted"):
                out[key] = out[key] + one[key]
            out["memoriesCreated"] += one["memoriesCreated"]
            out["duplicatesSkipped"] += one["duplicatesSkipped"]
            out["indexState"] = "pending" if "pending" in (out["indexState"], one["indexState"]) else "indexed"
        if not out:
            raise BadRequest("'messages' has no message with content (system messages are skipped)",
                             details={"field": "messages"})
        return {**out, "messages": per_message}

    def memorize_items(self, org_id: str, req: MemorizeItemsRequest, *, key_id: str | None = None) -> dict[str, Any]:
        """Personize's ``memorizeBatch({items: [...]})``: each item is one memorize call (its own
        ``collectionName``, keys and ``extractMemories``); a bad item is reported and never stops the others."""
        results: list[dict[str, Any]] = []
        for index, raw in enumerate(req.items):
            try:
                item = MemorizeRequest.model_validate({"source": req.source, **raw,
                                                       "tags": sorted({*req.tags, *(raw.get("tags") or [])})})
                out = self.memorize(org_id, item.for_key(key_id))
            except ValidationError as exc:
                errors = [{"field": ".".join(map(str, e["loc"])), "message": e["msg"]} for e in exc.errors()]
                results.append({"index": index, "success": False, "error": {
                    "code": "validation_failed", "message": "; ".join(f"{e['field']}: {e['message']}" for e in errors),
                    "details": {"errors": errors}}})
                continue
            except MemrelayError as exc:
                results.append({"index": index, "success": False, **exc.to_dict()})
                continue
            results.append({"index": index, "success": True, "recordId": out["recordId"], "record_id": out["recordId"],
                            "type": out["type"], "memoriesCreated": out["memoriesCreated"],
                            "duplicatesSkipped": out["duplicatesSkipped"],
                            "propertiesExtracted": len(out["propertiesExtracted"])})
        failed = sum(1 for r in results if not r["success"])
        return {"items": len(results), "memorized": len(results) - failed, "failed": failed, "results": results}

    @staticmethod
    def _existing(s: Session, org_id: str, ids: Identifiers, entity_type: str | None,
                  lookup: Callable[[str], Candidates] | None = None) -> Record | None:
        if entity_type:
            return resolve_record(s, org_id, ids, entity_type,
                                  candidates=lookup(normalise_type(entity_type) or entity_type) if lookup else None)
        try:
            return require_record(s, org_id, ids)
        except NotFound:
            return None

    def ensure_self_type(self, org_id: str) -> None:
        """Create the org's ``self`` entity type (records of API keys, ``about: "self"``) on first use."""
        with self.db.session() as s:
            self.collections.ensure_entity_type(s, org_id, SELF_TYPE, primary_key_field=SELF_KEY, secondary_keys=[],
                                                description="What an API key's user stored about themselves "
                                                            "(about: 'self').")

    def ensure_record_id_type(self, org_id: str) -> None:
        """Create the org's ``custom`` entity type (records named only by a caller's ``record_id``) on first use."""
        with self.db.session() as s:
            self.collections.ensure_entity_type(
                s, org_id, RECORD_ID_TYPE, primary_key_field="record_id", secondary_keys=[],
                description="Custom entities a caller names by its own record_id (e.g. campaign:q1-outbound), "
                            "memorized without a type.")

    def _target_properties(self, s: Session, org_id: str, entity_type: str,
                           c: Collection | None) -> list[PropertySpec]:
        if c is not None:
            if c.entity_type != entity_type:
                raise ValidationFailed(f"collection {c.name!r} is for {c.entity_type}, not {entity_type}")
            specs = [PropertySpec.model_validate(p) for p in c.properties]
        else:
            specs = list(self.collections.schema_for(s, org_id, entity_type).values())
        return [p for p in specs if p.autoSystem]

    def _extract(self, org_id: str, req: MemorizeRequest, specs: list[PropertySpec], ts: datetime,
                 subject: str | None, *, embedder: Embedder | None = None,
                 entity_type: str | None = None, company: str | None = None) -> ExtractedContent:
        if req.verbatim:
            return Extraction(facts=[" ".join(req.content.split())], values=[], method="verbatim")
        if req.enhanced and self.extractor is not None:
            return self.extractor.extract(content=req.content, properties=specs, ts=ts, subject=subject,
                                     prompt=req.extractionPrompt, max_properties=req.max_properties,
                                     tags=req.tags, org_id=org_id)
        return offline_extraction(req.content, specs, ts, subject, embedder=embedder or self.embedder,
                                  max_properties=req.max_properties, entity_type=entity_type, company=company,
                                  author=req.speaker)

    def _write_values(self, s: Session, rec: Record, values: list[ExtractedValue], ts: datetime,
                      req: MemorizeRequest, *, schema: dict[str, PropertySpec] | None = None,
                      new_record: bool = False) -> list[dict[str, Any]]:
        """Apply extracted values, one provenance per confidence level, as :func:`write_properties` would one
        level after the other — but the current values are read once (not at all for a ``new_record``) and
        the rows of every level are written together (one statement per table)."""
        if not values:
            return []
        if schema is None:
            schema = self.collections.schema_for(s, rec.org_id, rec.entity_type)
        by_conf: dict[float, dict[str, Any]] = {}
        for v in values:
            if v.property_name in schema:
                by_conf.setdefault(round(float(v.confidence), 3), {})[v.property_name] = v.value
        coerced = {conf: {name: coerce(schema[name], value) for name, value in batch.items()}
                   for conf, batch in by_conf.items()}
        names = list(dict.fromkeys(name for batch in coerced.values() for name in batch))
        current = load_current(s, [rec.id], names).get(rec.id, {}) if names and not new_record else {}
        writes = PendingWrites()
        applied: set[str] = set()
        for conf, batch in coerced.items():
            prov = Provenance(source=req.source, source_event_id=req.sourceEventId, source_ts=ts, confidence=conf)
            applied |= set(apply_coerced(rec, batch, current, schema, prov, writes).applied)
        s.flush()
        writes.flush(s)
        return [{"name": v.property_name, "value": v.value, "confidence": round(float(v.confidence), 3),
                 "applied": v.property_name in applied} for v in values if v.property_name in schema]

    # --- listing -----------------------------------------------------------------------------
    def recall(self, org_id: str, ids: Identifiers, entity_type: str | None, *,
               include_superseded: bool = False) -> dict[str, Any]:
        """Personize's ``recall``: one record's structured properties (``memories``) and memories
        (``freeformMemories``), no AI. ``type`` is required (400), as documented; an unknown type is 422."""
        if not entity_type or not entity_type.strip():
            raise BadRequest("type is required (e.g. Contact, Company)", details={"field": "type"})
        ids.require_any()
        with self.db.read() as s:
            rec = require_record(s, org_id, ids, entity_type)
            rendered = self.records.render(s, [rec])[0]
            documented = self.records.documented_records(s, org_id, [rendered])[rec.id]
            freeform = self.list_for_record(s, rec.id, include_superseded=include_superseded)
        return lookup_answer(rendered, documented, freeform)

    def list_for_record(self, s: Session, record_id: str, include_superseded: bool = False) -> list[dict[str, Any]]:
        """A record's memories, newest content first (superseded ones only on request)."""
        org_id = s.scalar(select(Record.org_id).where(Record.id == record_id))
        q = select(Memory).where(Memory.org_id == org_id, Memory.record_id == record_id, Memory.deleted_at.is_(None))
        if not include_superseded:
            q = q.where(Memory.superseded_by.is_(None), unexpired())  # "everything" also shows expired ones
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
            m = s.scalar(select(Memory).where(Memory.id == memory_id, Memory.org_id == org_id,
                                              Memory.deleted_at.is_(None)))
            if m is None:
                raise NotFound(f"memory {memory_id} not found")
            lock_record(s, m.record_id)
            now = utcnow()
            m.text, m.embedding, m.embedder, m.topic = text, to_blob(vector), emb.name, semantics.topic_of(text)
            m.readings = text_readings(text)
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
        """Soft-delete given memories, or every memory of the identified record: hidden from recall, digests
        and similarity at once, restorable with :meth:`cancel_deletion` until ``purgeAfter`` (then purged)."""
        if not memory_ids and ids is None:
            raise BadRequest("give memoryIds or identifiers of a record")
        days = self.records.soft_delete_days
        with self.db.session() as s:
            record_id = require_record(s, org_id, ids).id if ids is not None else None
            q = select(Memory).where(Memory.org_id == org_id)
            if memory_ids:  # the org and record are checked on the rows
                rows = [m for m in _by_ids(s, memory_ids) if m.org_id == org_id and record_id in (None, m.record_id)]
                if not rows:
                    raise NotFound("no memory matches those ids", details={"memoryIds": memory_ids[:50]})
                rows = _locked_rows(s, rows)
            else:
                assert record_id is not None
                lock_records(s, {record_id})
                rows = list(s.scalars(q.where(Memory.record_id == record_id)))
            rows = [m for m in rows if m.deleted_at is None]
            now = utcnow()
            soft_delete_memories(s, rows, days=days, now=now)
            by_record: dict[str, list[str]] = {}
            for m in rows:
                by_record.setdefault(m.record_id, []).append(m.id)
            purge_after = iso(now + timedelta(days=days))
            for rid, mids in by_record.items():
                emit(s, org_id, "memory.deleted", {"recordId": rid, "memoryIds": mids, "recoverable": True,
                                                   "purgeAfter": purge_after})
            found = [m.id for m in rows]
        self.index.sync_after_commit(tombstones_of=org_id)
        return {"deleted": len(found), "memoryIds": found, "recoverable": True, "purgeAfter": purge_after}

    def cancel_deletion(self, org_id: str, memory_ids: list[str] | None = None,
                        ids: Identifiers | None = None) -> dict[str, Any]:
        """Restore soft-deleted memories (by id, or all of a record) — or, when the identifiers name a
        soft-deleted record, the record itself. 404 when nothing is pending deletion."""
        if not memory_ids and ids is None:
            raise BadRequest("give memoryIds or identifiers of a record")
        record_id: str | None = None
        if not memory_ids:
            assert ids is not None
            with self.db.read() as s:
                rec = resolve_record(s, org_id, ids, ids.type or ids.inferred_type())
                record_id = rec.id if rec is not None else None
            if record_id is None:  # no live record: the deletion to cancel is the record's own
                return {**self.records.cancel_deletion(org_id, ids), "restored": 0, "memoryIds": []}
        with self.db.session() as s:
            if memory_ids:
                rows = _locked_rows(s, [m for m in _by_ids(s, memory_ids) if m.org_id == org_id])
                rows = [m for m in rows if m.deleted_at is not None]
            else:
                assert record_id is not None
                lock_records(s, {record_id})
                rows = list(s.scalars(select(Memory).where(Memory.org_id == org_id, Memory.record_id == record_id,
                                                           Memory.deleted_at.is_not(None))))
            if not rows:
                raise NotFound("no memory deletion is pending for those identifiers",
                               details={"memoryIds": (memory_ids or [])[:50]})
            restore_memories(s, rows, now=utcnow())
            for m in rows:
                emit(s, org_id, "memory.updated", {"memoryId": m.id, "recordId": m.record_id, "type": m.entity_type,
                                                   "change": "restored"})
            restored = [m.id for m in rows]
        self.index.sync_after_commit(index=restored)
        return {"restored": len(restored), "memoryIds": restored}


def _by_ids(s: Session, memory_ids: list[str], *, refresh: bool = False) -> list[Memory]:
    out: list[Memory] = []
    for i in range(0, len(memory_ids), 500):
        q = select(Memory).where(Memory.id.in_(memory_ids[i:i + 500]))
        out += s.scalars(q.execution_options(populate_existing=True) if refresh else q)
    return out


def _locked_rows(s: Session, rows: list[Memory]) -> list[Memory]:
    """``rows`` read again once their records are locked. A memorize holds its record's lock from reading the
    record's live memories (dedup, supersession, the process's pool cache) to its commit: a delete or restore
    that changed them in between would leave it deciding on memories that are no longer live (or live again).
    Deleting or restoring memories therefore takes the same locks first (on SQLite the write transaction already
    excludes every other writer)."""
    if s.get_bind().dialect.name == "sqlite":  # BEGIN IMMEDIATE: the rows read in this transaction are current
        return rows
    ids, locked = [m.id for m in rows], set[str]()
    while wanted := {m.record_id for m in rows} - locked:  # a merge may have moved one meanwhile: lock that too
        lock_records(s, wanted)
        locked |= wanted
        rows = _by_ids(s, ids, refresh=True)
    return rows


def target_collection(s: Session, org_id: str, ref: str | None) -> Collection | None:
    """The active collection a request names by id or (case-insensitive) name; 404 when none does."""
    if not ref:
        return None
    ref = ref.strip()
    c = s.scalar(select(Collection).where(Collection.org_id == org_id, Collection.archived_at.is_(None),
                                          (Collection.id == ref) | (func.lower(Collection.name) == ref.lower()))
                 .order_by(Collection.name).limit(1))
    if c is None:
        known = sorted(s.scalars(select(Collection.name).where(Collection.org_id == org_id,
                                                               Collection.archived_at.is_(None))))
        raise NotFound(f"collection {ref!r} not found", details={"known": known})
    return c


def offline_extraction(content: str, specs: list[PropertySpec], ts: datetime, subject: str | None, *,
                       embedder: Any = None, max_properties: int | None = None,
                       entity_type: str | None = None, company: str | None = None,
                       author: str | None = None) -> OfflineExtraction:
    """Proactive offline extraction (``engine.domain.extraction.standard``): self-contained facts with their
    source spans (speakers/pronouns resolved; filler, questions, logistics, quotes and signatures dropped) and
    the collection's standard properties with confidence."""
    return offline_extract(content, specs, ts, subject, entity_type=entity_type, embedder=embedder,
                           max_properties=max_properties, company=company, author=author)


def subject_of(s: Session, rec: Record | None, ids: Identifiers) -> str | None:
    """How facts name the record: its name properties, else email, website or another key."""
    named = subjects_of(s, [rec.id]).get(rec.id) if rec is not None else None
    return named or ids.email or ids.website_url or ids.customKeyValue or None


_SUBJECT_PROPS = ["first_name", "last_name", "name", "deal_name", "company_name"]


def describe_record(s: Session, rec: Record | None, ids: Identifiers) -> tuple[str | None, str | None]:
    """``(subject, company)``: :func:`subject_of` and :func:`~memrelay.engine.stores.memory_store.company_of`
    of one record from ONE read of its name and company properties (its keys are read only when it has no
    name property)."""
    if rec is None:
        return subject_of(s, None, ids), None
    props: dict[str, Any] = dict(s.execute(select(PropertyValue.name, PropertyValue.value).where(
        PropertyValue.record_id == rec.id, PropertyValue.name.in_(sorted({*_SUBJECT_PROPS, *COMPANY_PROPS})))).all())
    named = _name_from(props)
    if named is None:
        keys = dict(s.execute(select(RecordKey.key_name, RecordKey.key_value).where(
            RecordKey.record_id == rec.id, RecordKey.key_name.in_(["email", "website_url"]))).all())
        named = next((keys[n] for n in ("email", "website_url") if keys.get(n)), None)
    company = None if rec.entity_type == "company" else company_from(props)
    return named or ids.email or ids.website_url or ids.customKeyValue or None, company


def _name_from(props: dict[str, Any]) -> str | None:
    """How a record's name properties name it: first and last name, else name, else deal name."""
    full = " ".join(str(props[k]) for k in ("first_name", "last_name") if props.get(k))
    return next((str(c) for c in (full, props.get("name"), props.get("deal_name")) if c), None)


def subjects_of(s: Session, record_ids: list[str]) -> dict[str, str]:
    """:func:`subject_of` of many records in a few queries: their name properties, else email or website
    (records with none of those are absent)."""
    props: dict[str, dict[str, Any]] = {}
    keys: dict[str, dict[str, str]] = {}
    for i in range(0, len(record_ids), 500):
        chunk = record_ids[i:i + 500]
        for rid, name, value in s.execute(select(PropertyValue.record_id, PropertyValue.name, PropertyValue.value)
                                          .where(PropertyValue.record_id.in_(chunk),
                                                 PropertyValue.name.in_(_SUBJECT_PROPS))):
            props.setdefault(rid, {})[name] = value
        for rid, name, value in s.execute(select(RecordKey.record_id, RecordKey.key_name, RecordKey.key_value)
                                          .where(RecordKey.record_id.in_(chunk),
                                                 RecordKey.key_name.in_(["email", "website_url"]))):
            keys.setdefault(rid, {})[name] = value
    out: dict[str, str] = {}
    for rid in record_ids:
        found = _name_from(props.get(rid, {}))
        found = found or next((keys[rid][n] for n in ("email", "website_url") if keys.get(rid, {}).get(n)), None)
        if found:
            out[rid] = found
    return out
