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
from memrelay.engine.memory.memories import lift_identifiers
from memrelay.engine.memory.org_vectors import ExactOrgIndex
from memrelay.engine.stores.collections import normalise_entity_type
from memrelay.engine.stores.db.database import Database
from memrelay.engine.stores.db.models import Collection, Memory, PropertyValue, Record
from memrelay.engine.stores.identity import Identifiers, locate_record, record_keys

RECENCY_WEIGHT = 0.05
RECENCY_HALF_LIFE_DAYS = 180.0
DEEP_NOTE = "deep mode needs an LLM (set MEMRELAY_LLM_MODEL); answered in fast mode"


class RecallRequest(BaseModel):
    """POST /api/v1/smart-recall."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    query: str = Field(min_length=1, max_length=10_000)
    identifiers: Identifiers = Field(default_factory=Identifiers)
    type: str | None = None
    collectionNames: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    limit: int = Field(10, ge=1, le=200)
    minScore: float = Field(0.0, ge=-1.0, le=1.0)
    mode: Literal["fast", "deep"] = "fast"
    include_property_values: bool = Field(False, alias="includePropertyValues")
    groupByRecord: bool = False
    include_superseded: bool = Field(False, alias="includeSuperseded")
    generate_answer: bool = Field(False, alias="generateAnswer", description="Deep mode: answer from the memories.")

    @model_validator(mode="before")
    @classmethod
    def _lift(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            for snake, camel in (("include_property_values", "includePropertyValues"),
                                 ("include_superseded", "includeSuperseded"), ("generate_answer", "generateAnswer")):
                if camel in data and snake not in data:
                    data[snake] = data.pop(camel)
            if data.get("fast_mode") is False and "mode" not in data:
                data["mode"] = "deep"
            top_type = data.get("type")
            data = lift_identifiers({k: v for k, v in data.items() if k != "type"})
            data["type"] = top_type
        return data


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
            types = self._entity_types(s, org_id, req)
            if req.identifiers.keys():
                record_id, record_type = locate_record(s, org_id, req.identifiers, req.type)
                scope = "record"
                matches = self.scoped_matches(s, org_id, record_id, qvec, req)
                if types and record_type not in types:
                    matches = []
            else:
                scope = "org"
                matches = self.org_matches(s, org_id, qvec, req, types)
            result = self._render(s, org_id, matches, req)
        result.update({"query": req.query, "scope": scope, "mode": "fast",
                       "tookMs": round((time.perf_counter() - t0) * 1000, 3)})
        if req.mode == "deep":
            if self.deep is not None:
                return self.deep.deepen(org_id, req, result, lambda q: self.smart_recall(
                    org_id, req.model_copy(update={"query": q, "mode": "fast"}))["results"])
            result["note"] = DEEP_NOTE
        return result

    def scoped_matches(self, s: Session, org_id: str, record_id: str, qvec: np.ndarray,
                       req: RecallRequest) -> list[dict[str, Any]]:
        """Exact scores of one record's memories (cached vectors, numpy dot product)."""
        emb = self.embedder
        ev = self.cache.get(s, org_id, record_id, embedder=emb.name, dim=emb.dim)
        if not ev.ids:
            return []
        sims = ev.matrix @ qvec
        scores = sims + RECENCY_WEIGHT * recency(ev.ts, utcnow().timestamp())
        keep = sims >= req.minScore
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
                   Memory.embedding, Memory.embedder, Memory.org_id, Record.org_id.label("record_org"),
                   Record.deleted_at)
            .join(Record, Record.id == Memory.record_id)
            .where(Memory.id.in_(memory_ids))).all()
        # Checked here rather than in SQL so the planner always walks the primary key (an org_id condition
        # makes SQLite scan the whole org through ix_memories_record).
        rows = [r for r in rows if r.org_id == org_id and r.record_org == org_id and r.deleted_at is None
                and r.embedder == emb.name]
        if not rows:
            return []
        sims = from_blobs([r.embedding for r in rows], emb.dim) @ qvec
        ts = np.array([as_aware(r.ts).timestamp() for r in rows])
        scores = sims + RECENCY_WEIGHT * recency(ts, utcnow().timestamp())
        wanted = set(req.tags)
        out = []
        for i in np.argsort(-scores, kind="stable"):
            r = rows[i]
            if sims[i] < req.minScore or (r.superseded_by and not req.include_superseded):
                continue
            if wanted and not wanted & set(r.tags or []):
                continue
            out.append({"memoryId": r.id, "recordId": r.record_id, "type": r.entity_type, "text": r.text,
                        "tags": r.tags or [], "speaker": r.speaker, "topic": r.topic, "source": r.source,
                        "seenCount": r.seen_count, "supersededBy": r.superseded_by, "ts": r.ts,
                        "score": float(scores[i]), "similarity": float(sims[i])})
        return out

    @staticmethod
    def _entity_types(s: Session, org_id: str, req: RecallRequest) -> list[str] | None:
        types: set[str] = set()
        if req.type:
            types.add(normalise_entity_type(req.type))
        if req.collectionNames:
            found = dict(s.execute(select(Collection.name, Collection.entity_type).where(
                Collection.org_id == org_id, Collection.name.in_(req.collectionNames))).all())
            missing = sorted(set(req.collectionNames) - set(found))
            if missing:
                raise ValidationFailed("unknown collections: " + ", ".join(missing), details={"unknown": missing})
            col_types = set(found.values())
            types = types & col_types if types else col_types
            if not types:
                return ["\x00none"]
        return sorted(types) or None

    def _render(self, s: Session, org_id: str, matches: list[dict[str, Any]], req: RecallRequest) -> dict[str, Any]:
        items = [_item(m) for m in matches]
        out: dict[str, Any] = {}
        if req.groupByRecord:
            groups: dict[str, dict[str, Any]] = {}
            for it in items:
                g = groups.setdefault(it["recordId"], {"recordId": it["recordId"], "type": it["type"],
                                                       "topScore": it["score"], "matchCount": 0, "matches": []})
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
        return out


def _item(m: dict[str, Any]) -> dict[str, Any]:
    item = {"memoryId": m["memoryId"], "recordId": m["recordId"], "type": m["type"], "text": m["text"],
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
