"""Smart recall: semantic search over memories.

* **Entity-scoped** (identifiers given): the record's own memories are scored exactly, in process, from
  the SQL source of truth (cached per record, see :mod:`memrelay.engine.memory.entity_vectors`) — other records' memories
  are never even loaded, so nothing can leak across entities.
* **Org-wide** (no identifiers): Milvus finds candidates (partition key and filter on the org), then every
  hit is re-checked and re-scored against SQL (same org, record live) before it is returned.

Fast mode is vector similarity + filters + a small recency boost; deep mode is a :class:`DeepMode` (the LLM
layer's :class:`~memrelay.engine.memory.deep_recall.DeepRecall`) and falls back to fast mode, saying so, when
no LLM is configured.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from memrelay.engine.adapters.vector_index import from_blobs
from memrelay.engine.core.embedder import Embedder
from memrelay.engine.core.errors import ValidationFailed
from memrelay.engine.core.util import as_aware, iso, utcnow
from memrelay.engine.memory import index_sync
from memrelay.engine.memory.entity_vectors import EntityVectorCache
from memrelay.engine.memory.index_sync import IndexSearch
from memrelay.engine.memory.memories import SELF_TYPE, lift_identifiers, self_identifiers
from memrelay.engine.memory.org_vectors import ExactOrgIndex
from memrelay.engine.stores.collections import normalise_entity_type
from memrelay.engine.stores.db.database import Database
from memrelay.engine.stores.db.models import Collection, EntityType, Memory, PropertyValue, Record
from memrelay.engine.stores.identity import Identifiers, not_found, record_keys, records_holding

RECENCY_WEIGHT = 0.05
RECENCY_HALF_LIFE_DAYS = 180.0
DEEP_NOTE = "deep mode needs an LLM (set MEMRELAY_LLM_MODEL); answered in fast mode"
MAX_SCOPE = 500  # records one identifier may scope a recall to (a company's contacts, deals, tickets)
NO_TYPE = "\x00none"  # a type filter nothing can match (type and collections exclude each other)


class RecallRequest(BaseModel):
    """POST /api/v1/smart-recall (Personize's smartRecall: snake or camel case, ``fast_mode``, ``min_score``)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    query: str = Field(min_length=1, max_length=10_000)
    identifiers: Identifiers = Field(default_factory=Identifiers)
    type: str | None = Field(None, description="Entity type filter (case-insensitive), e.g. 'Contact'.")
    collectionNames: list[str] = Field(default_factory=list,
                                       description="Only memories of records of these collections' entity types.")
    tags: list[str] = Field(default_factory=list)
    limit: int = Field(10, ge=1, le=200)
    minScore: float = Field(0.0, ge=-1.0, le=1.0,
                            description="Minimum score of a result (alias: min_score); 0 (the default) or less: "
                                        "no threshold, every match comes back.")
    mode: Literal["fast", "deep"] = "fast"
    include_property_values: bool = Field(False, alias="includePropertyValues")
    groupByRecord: bool = False
    include_superseded: bool = Field(False, alias="includeSuperseded")
    generate_answer: bool = Field(False, alias="generateAnswer", description="Deep mode: answer from the memories.")
    about: Literal["lead", "self"] = "lead"

    @model_validator(mode="before")
    @classmethod
    def _lift(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            for snake, camel in (("include_property_values", "includePropertyValues"),
                                 ("include_superseded", "includeSuperseded"), ("generate_answer", "generateAnswer")):
                if camel in data and snake not in data:
                    data[snake] = data.pop(camel)
            for alias, name in (("min_score", "minScore"), ("group_by_record", "groupByRecord"),
                                ("collection_names", "collectionNames")):
                if alias in data and name not in data:
                    data[name] = data.pop(alias)
            if isinstance(data.get("collectionName"), str) and "collectionNames" not in data:
                data["collectionNames"] = [data.pop("collectionName")]
            if data.get("mode") == "full":  # the SDK's former name of deep mode
                data["mode"] = "deep"
            if "mode" not in data and "fast_mode" in data:
                data["mode"] = "fast" if data["fast_mode"] else "deep"
            if "mode" not in data and (data.get("enable_reflection") or data.get("enableReflection")):
                data["mode"] = "deep"
            if data.get("about") is None:
                data.pop("about", None)
            top_type = data.get("type")
            data = lift_identifiers({k: v for k, v in data.items() if k != "type"})
            data["type"] = top_type
        return data

    @property
    def entity_type(self) -> str | None:
        """The type filter, given top-level or inside ``identifiers``."""
        return self.type or self.identifiers.type

    @property
    def score_floor(self) -> float | None:
        """The threshold results' ``score`` must reach, or None: Personize's ``minScore`` is 0-1 and 0 means
        "show me everything", so a threshold of 0 or below filters nothing (scores of unrelated text can be
        negative)."""
        return self.minScore if self.minScore > 0 else None

    def for_key(self, key_id: str | None) -> RecallRequest:
        """``about: "self"`` resolved to the API key's own record (unchanged otherwise)."""
        if self.about != "self":
            return self
        return self.model_copy(update={"identifiers": self_identifiers(key_id), "type": SELF_TYPE})


def recency(ts_epoch: np.ndarray, now: float) -> np.ndarray:
    """1.0 for content from now, halving every RECENCY_HALF_LIFE_DAYS."""
    age_days = np.maximum(now - ts_epoch, 0.0) / 86400.0
    return np.power(0.5, age_days / RECENCY_HALF_LIFE_DAYS)


class DeepMode(Protocol):
    """Deep recall: extends a fast result; ``fast_search(query)`` runs one more fast recall."""

    def deepen(self, org_id: str, req: RecallRequest, fast_result: dict[str, Any],
               fast_search: Callable[[str], list[dict[str, Any]]]) -> dict[str, Any]: ...


class Recall:
    """Semantic recall over an org's memories (``deep`` is None without an LLM)."""

    def __init__(self, db: Database, embedder: Embedder, index: IndexSearch, deep: DeepMode | None = None):
        self.db, self.embedder, self.index, self.deep = db, embedder, index, deep
        self.cache = EntityVectorCache()
        self.exact = ExactOrgIndex()

    # --- smart recall ------------------------------------------------------------------------
    def smart_recall(self, org_id: str, req: RecallRequest) -> dict[str, Any]:
        """Top memories for ``req.query``, scoped to one record when identifiers are given."""
        t0 = time.perf_counter()
        emb = self.embedder
        qvec = emb.embed([req.query])[0]
        with self.db.read() as s:
            index_sync.check_embedder(s, org_id, emb, claim=False)
            types = entity_type_filter(s, org_id, req.entity_type, req.collectionNames)
            scope_records: list[Record] = []
            if req.identifiers.keys():
                scope_records = self._scope(s, org_id, req, types)
                scope = "record" if len(scope_records) == 1 else "records"
                matches = self.scoped_matches_of(s, org_id, [r.id for r in scope_records], qvec, req)
            else:
                scope = "org"
                matches = self.org_matches(s, org_id, qvec, req, types)
            result = self._render(s, org_id, matches, req)
            if req.include_property_values:
                result["property_values"] = property_values(s, result, scope_records if scope == "record" else None)
        result.update({"query": req.query, "scope": scope, "mode": "fast",
                       "tookMs": round((time.perf_counter() - t0) * 1000, 3)})
        if scope != "org":
            result["scopeRecords"] = [{"recordId": r.id, "record_id": r.id, "type": r.entity_type}
                                      for r in scope_records[:MAX_SCOPE]]
            result["scopeTruncated"] = len(scope_records) > MAX_SCOPE
        if req.mode == "deep":
            if self.deep is not None:
                return self.deep.deepen(org_id, req, result, lambda q: self.smart_recall(
                    org_id, req.model_copy(update={"query": q, "mode": "fast"}))["results"])
            result["note"] = DEEP_NOTE
        return result

    @staticmethod
    def _scope(s: Session, org_id: str, req: RecallRequest, types: list[str] | None) -> list[Record]:
        """The live records the identifiers name — by ``record_id``, or every record holding the key
        (primary or secondary, any type unless filtered): recall by ``website_url`` reaches the company
        and the contacts, deals and tickets that carry it. 404/422 when no record of any type holds it."""
        ids = req.identifiers
        found = records_holding(s, org_id, ids, types, limit=MAX_SCOPE + 1)
        if found or req.about == "self":
            return found
        if types is not None and records_holding(s, org_id, ids, None, limit=1):
            return []  # the key exists, on records of other types
        raise not_found(s, org_id, ids, req.entity_type)

    def scoped_matches_of(self, s: Session, org_id: str, record_ids: list[str], qvec: np.ndarray,
                          req: RecallRequest) -> list[dict[str, Any]]:
        """Exact scores over the memories of several records (each record's vectors cached), best first."""
        out: list[dict[str, Any]] = []
        for rid in record_ids[:MAX_SCOPE]:
            out += self.scoped_matches(s, org_id, rid, qvec, req)
        out.sort(key=lambda m: -m["score"])
        return out if req.groupByRecord else out[:req.limit]

    def scoped_matches(self, s: Session, org_id: str, record_id: str, qvec: np.ndarray,
                       req: RecallRequest) -> list[dict[str, Any]]:
        """Exact scores of one record's memories (cached vectors, numpy dot product)."""
        emb = self.embedder
        ev = self.cache.get(s, org_id, record_id, embedder=emb.name, dim=emb.dim)
        if not ev.ids:
            return []
        sims = ev.matrix @ qvec
        scores = sims + RECENCY_WEIGHT * recency(ev.ts, utcnow().timestamp())
        floor = req.score_floor
        keep = scores >= floor if floor is not None else np.ones(len(ev.ids), dtype=bool)
        if not req.include_superseded:
            keep &= ev.live
        idx = np.flatnonzero(keep)
        if req.tags:
            wanted = set(req.tags)
            idx = np.array([i for i in idx if wanted & set(ev.rows[i]["tags"])], dtype=np.int64)
        cap = req.limit if not req.groupByRecord else len(idx)
        top = idx[np.argsort(-scores[idx], kind="stable")][:cap] if len(idx) else idx
        return [{**ev.rows[i], "score": float(scores[i]), "similarity": float(sims[i])} for i in top]

    def org_matches(self, s: Session, org_id: str, qvec: np.ndarray, req: RecallRequest,
                    types: list[str] | None) -> list[dict[str, Any]]:
        """Candidates (exact in-process for small orgs, Milvus otherwise) re-checked and re-scored against SQL,
        fetching more when filters drop too many."""
        want = req.limit * (8 if req.groupByRecord else 1)
        fetch = want * 3 + 20
        emb = self.embedder
        for _ in range(3):
            ids = self.exact.search(s, org_id, qvec, limit=fetch, embedder=emb.name, dim=emb.dim,
                                    entity_types=types)
            if ids is None:
                ids = [h.memory_id for h in self.index.search(qvec, org_id, limit=fetch, entity_types=types)]
            out = self._recheck(s, org_id, ids, qvec, req)
            if len(out) >= want or len(ids) < fetch:
                break
            fetch *= 4
        return out if req.groupByRecord else out[:req.limit]

    def _recheck(self, s: Session, org_id: str, memory_ids: list[str], qvec: np.ndarray,
                 req: RecallRequest) -> list[dict[str, Any]]:
        """Keep hits whose memory and record are live in this org (SQL), scored exactly from SQL vectors."""
        if not memory_ids:
            return []
        emb = self.embedder
        rows = s.execute(
            select(Memory.id, Memory.record_id, Memory.entity_type, Memory.text, Memory.tags, Memory.speaker,
                   Memory.topic, Memory.source, Memory.seen_count, Memory.superseded_by, Memory.ts,
                   Memory.embedding, Memory.embedder, Memory.org_id, Memory.deleted_at.label("memory_deleted"),
                   Record.org_id.label("record_org"), Record.deleted_at)
            .join(Record, Record.id == Memory.record_id)
            .where(Memory.id.in_(memory_ids))).all()
        # Checked here rather than in SQL so the planner always walks the primary key (an org_id condition
        # makes SQLite scan the whole org through ix_memories_record).
        rows = [r for r in rows if r.org_id == org_id and r.record_org == org_id and r.deleted_at is None
                and r.memory_deleted is None and r.embedder == emb.name]
        if not rows:
            return []
        sims = from_blobs([r.embedding for r in rows], emb.dim) @ qvec
        ts = np.array([as_aware(r.ts).timestamp() for r in rows])
        scores = sims + RECENCY_WEIGHT * recency(ts, utcnow().timestamp())
        wanted = set(req.tags)
        floor = req.score_floor
        out = []
        for i in np.argsort(-scores, kind="stable"):
            r = rows[i]
            if (floor is not None and scores[i] < floor) or (r.superseded_by and not req.include_superseded):
                continue
            if wanted and not wanted & set(r.tags or []):
                continue
            out.append({"memoryId": r.id, "recordId": r.record_id, "type": r.entity_type, "text": r.text,
                        "tags": r.tags or [], "speaker": r.speaker, "topic": r.topic, "source": r.source,
                        "seenCount": r.seen_count, "supersededBy": r.superseded_by, "ts": r.ts,
                        "score": float(scores[i]), "similarity": float(sims[i])})
        return out

    def _render(self, s: Session, org_id: str, matches: list[dict[str, Any]], req: RecallRequest) -> dict[str, Any]:
        items = [_item(m) for m in matches]
        out: dict[str, Any] = {}
        if req.groupByRecord:
            groups: dict[str, dict[str, Any]] = {}
            for it in items:
                g = groups.setdefault(it["recordId"], {"recordId": it["recordId"], "record_id": it["recordId"],
                                                       "type": it["type"], "topScore": it["score"],
                                                       "matchCount": 0, "matches": []})
                g["matchCount"] += 1
                if len(g["matches"]) < 3:
                    g["matches"].append(it)
            ranked = sorted(groups.values(), key=lambda g: -g["topScore"])[:req.limit]
            out["recordGroups"] = ranked
            items = [m for g in ranked for m in g["matches"]]
        out["results"] = items
        out["count"] = len(items)
        record_ids = list(dict.fromkeys(it["recordId"] for it in items))
        if req.include_property_values and record_ids:
            out["records"] = records_overview(s, record_ids)
            for g in out.get("recordGroups", []):
                g["properties"] = out["records"][g["recordId"]]["properties"]
            for it in items:
                it["properties"] = out["records"][it["recordId"]]["properties"]
        return out


def property_values(s: Session, rendered: dict[str, Any], scope: list[Record] | None) -> dict[str, Any]:
    """Personize's ``property_values`` (``include_property_values``): the record's ``{name: value}`` when the
    recall is scoped to one record (even when no memory matched), else ``{recordId: {name: value}}`` of the
    records in the results."""
    if scope:
        return records_overview(s, [scope[0].id])[scope[0].id]["properties"]
    return {rid: r["properties"] for rid, r in (rendered.get("records") or {}).items()}


def entity_type_filter(s: Session, org_id: str, entity_type: str | None,
                       collection_names: list[str]) -> list[str] | None:
    """Entity types a recall is restricted to: ``type`` and/or the types of ``collectionNames`` (a collection
    name, case-insensitive, or an entity type name). None: no restriction; 422 for unknown names."""
    types: set[str] | None = None
    if entity_type:
        et = normalise_entity_type(entity_type)
        known = set(s.scalars(select(EntityType.name).where(EntityType.org_id == org_id)))
        if et not in known and et != SELF_TYPE:  # "self" exists once a key stored something about itself
            raise ValidationFailed(f"unknown entity type {et!r}", details={"known": sorted(known)})
        types = {et}
    if collection_names:
        cols = {name.lower(): et for name, et in s.execute(select(Collection.name, Collection.entity_type).where(
            Collection.org_id == org_id, Collection.archived_at.is_(None)))}
        ets = set(s.scalars(select(EntityType.name).where(EntityType.org_id == org_id)))
        wanted: set[str] = set()
        missing = []
        for name in collection_names:
            key = name.strip().lower()
            if key in cols:
                wanted.add(cols[key])
            elif key in ets:
                wanted.add(key)
            else:
                missing.append(name)
        if missing:
            raise ValidationFailed("unknown collections: " + ", ".join(missing),
                                   details={"unknown": missing, "known": sorted(cols)})
        types = types & wanted if types is not None else wanted
    if types is None:
        return None
    return sorted(types) or [NO_TYPE]


def _item(m: dict[str, Any]) -> dict[str, Any]:
    item = {"memoryId": m["memoryId"], "record_id": m["recordId"], "recordId": m["recordId"], "type": m["type"],
            "text": m["text"],
            "score": round(m["score"], 6), "similarity": round(m["similarity"], 6), "timestamp": iso(m["ts"]),
            "tags": list(m["tags"]), "speaker": m["speaker"], "topic": m["topic"], "seenCount": m["seenCount"]}
    if m["supersededBy"]:
        item.update({"superseded": True, "supersededBy": m["supersededBy"]})
    return item


def records_overview(s: Session, record_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Keys and current property values of records (``include_property_values``)."""
    keys = record_keys(s, record_ids)
    types = dict(s.execute(select(Record.id, Record.entity_type).where(Record.id.in_(record_ids))).all())
    props: dict[str, dict[str, Any]] = {rid: {} for rid in record_ids}
    for rid, name, value in s.execute(select(PropertyValue.record_id, PropertyValue.name, PropertyValue.value)
                                      .where(PropertyValue.record_id.in_(record_ids))):
        props[rid][name] = value
    return {rid: {"type": types.get(rid), "keys": keys.get(rid, {}), "properties": props[rid]} for rid in record_ids}
