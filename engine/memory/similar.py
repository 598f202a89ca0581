"""Similar records and segments.

A record has up to two vectors: the mean of its live memory embeddings (the *memories* dimension) and the
embedding of a text rendering of its properties (the *properties* dimension); *hybrid* averages the two
cosines (or uses the one a record has). Candidates come from the memories nearest the seed — the org's exact
in-process index (:class:`~memrelay.engine.memory.org_vectors.ExactOrgIndex`, shared with org-wide recall) while
the org is within its size limit, Milvus above it, so a ``/similar`` on a small org never starts an on-demand
Milvus — and from SQL (the records of the target type, whose property vectors are cached per record version);
scores are then exact.
"""

from __future__ import annotations

import threading
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from memrelay.engine.adapters.vector_index import from_blobs
from memrelay.engine.core.embedder import Embedder
from memrelay.engine.core.errors import BadRequest
from memrelay.engine.memory import index_sync
from memrelay.engine.memory.index_sync import IndexSearch
from memrelay.engine.memory.memories import find_target, lift_identifiers
from memrelay.engine.memory.org_vectors import ExactOrgIndex
from memrelay.engine.stores.collections import normalise_entity_type
from memrelay.engine.stores.db.database import Database
from memrelay.engine.stores.db.models import Memory, PropertyValue, Record
from memrelay.engine.stores.identity import Identifiers, record_keys

Dimension = Literal["properties", "memories", "hybrid"]
TIERS: tuple[tuple[str, float], ...] = (("very_similar", 0.75), ("similar", 0.5), ("somewhat_similar", 0.3))
NOT_SIMILAR = "not_similar"
# Identity-like values say who a record is, not what it is like.
IDENTITY_PROPERTIES = frozenset({"email", "first_name", "last_name", "name", "phone", "website_url", "domain",
                                 "deal_name", "subject"})
MAX_CANDIDATES = 20_000
MEMORY_HITS = 1000
ALL_IDS = 2000  # returnAllIds: at most this many matches


class _Seeded(BaseModel):
    """Seed given as Personize's ``seed: {email | recordId | websiteUrl | customKeyName+customKeyValue}``
    (segment also ``seed: {text}``) or as top-level identifiers."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    identifiers: Identifiers = Field(default_factory=Identifiers)
    type: str | None = Field(None, description="Entity type of the records to compare (default: the seed's).")
    dimensions: Dimension = "hybrid"
    minScore: float = Field(TIERS[-1][1], ge=-1.0, le=1.0)

    @model_validator(mode="before")
    @classmethod
    def _lift(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            seed = data.pop("seed", None)
            if isinstance(seed, dict):
                seed = dict(seed)
                if "text" in seed and "text" not in data:
                    data["text"] = seed.pop("text")
                if "type" in seed and "seedType" not in data:
                    data["seedType"] = seed.pop("type")
                ids = dict(data.get("identifiers") or {})
                data["identifiers"] = {**seed, **ids}
            elif seed is not None:
                raise ValueError("'seed' must be an object: {email | recordId | websiteUrl} or {text}")
            if "min_score" in data and "minScore" not in data:
                data["minScore"] = data.pop("min_score")
            target = data.get("type")
            data = lift_identifiers({k: v for k, v in data.items() if k != "type"})
            data["type"] = target
            if data.get("seedType"):
                data["identifiers"]["type"] = data.pop("seedType")
        return data


class SimilarRequest(_Seeded):
    """POST /api/v1/similar: records like a seed record."""

    topK: int = Field(25, ge=1, le=500)
    returnAllIds: bool = False


class SegmentRequest(_Seeded):
    """POST /api/v1/segment: records in similarity tiers around a seed record or a text."""

    text: str | None = Field(None, max_length=10_000)
    page: int = Field(1, ge=1)
    pageSize: int = Field(50, ge=1, le=500, description="Records per tier page (alias: maxPerTier).")
    returnTier: Literal["very_similar", "similar", "somewhat_similar", "not_similar"] | None = None
    tierOffset: int | None = Field(None, ge=0, description="Offset within each tier (instead of page).")

    @model_validator(mode="before")
    @classmethod
    def _per_tier(cls, data: Any) -> Any:
        if isinstance(data, dict) and "maxPerTier" in data and "pageSize" not in data:
            data = {**data, "pageSize": data["maxPerTier"]}
        return data

    @property
    def offset(self) -> int:
        return self.tierOffset if self.tierOffset is not None else (self.page - 1) * self.pageSize


def score_range(members: list[tuple[str, float, dict[str, float], str]]) -> dict[str, float] | None:
    """``{min, max}`` of the scores in a tier (None for an empty tier)."""
    if not members:
        return None
    scores = [m[1] for m in members]
    return {"min": round(min(scores), 6), "max": round(max(scores), 6)}


def tier_of(score: float) -> str | None:
    return next((name for name, floor in TIERS if score >= floor), None)


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def render_properties(values: dict[str, Any]) -> str:
    """The text the properties dimension embeds: descriptive properties as 'name: value' lines."""
    lines = []
    for name in sorted(values):
        v = values[name]
        if name in IDENTITY_PROPERTIES or v in (None, "", []):
            continue
        lines.append(f"{name.replace('_', ' ')}: {', '.join(map(str, v)) if isinstance(v, list) else v}")
    return "\n".join(lines)


class Similarity:
    """Record-to-record similarity for ``/similar`` and ``/segment``."""

    def __init__(self, db: Database, embedder: Embedder, index: IndexSearch, exact: ExactOrgIndex):
        self.db, self.embedder, self.index, self.exact = db, embedder, index, exact
        self._prop_cache: dict[tuple[str, int], np.ndarray] = {}
        self._lock = threading.Lock()

    def similar(self, org_id: str, req: SimilarRequest) -> dict[str, Any]:
        """The ``topK`` records most like the seed; ``tiers`` lists their record ids per tier."""
        req.identifiers.require_any()
        with self.db.read() as s:
            seed = find_target(s, org_id, req.identifiers)
            ranked, _ = self._rank(s, org_id, req, seed, None)
            matched = [r for r in ranked if r[1] >= req.minScore]
            items = self._items(s, matched[:req.topK])
        tiers: dict[str, list[str]] = {name: [] for name, _ in TIERS}
        tiers[NOT_SIMILAR] = []
        for it in items:
            tiers[it["tier"]].append(it["recordId"])
        out: dict[str, Any] = {"seed": {"recordId": seed.id, "type": seed.entity_type}, "dimensions": req.dimensions,
               "results": items, "tiers": tiers, "totalMatched": len(items)}
        if req.returnAllIds:  # Personize's batch mode: every match (up to ALL_IDS), not just topK
            all_ids = [{"recordId": rid, "score": round(score, 6), "tier": tier}
                       for rid, score, _, tier in matched[:ALL_IDS]]
            out.update(allIds=all_ids, recordIds=[x["recordId"] for x in all_ids])
        return out

    def segment(self, org_id: str, req: SegmentRequest) -> dict[str, Any]:
        """Every candidate record in a tier (``not_similar`` below the lowest floor, an approximate count since
        records with nothing to compare are counted but not scored), one page of record ids per tier."""
        if not req.identifiers.keys() and not (req.text and req.text.strip()):
            raise BadRequest("give a seed: identifiers of a record ({email | recordId | websiteUrl}) or {text}")
        with self.db.read() as s:
            seed = find_target(s, org_id, req.identifiers) if req.identifiers.keys() else None
            ranked, candidates = self._rank(s, org_id, req, seed, req.text if seed is None else None)
            start = req.offset
            tiers: dict[str, dict[str, Any]] = {}
            floors = [*TIERS, (NOT_SIMILAR, -1.0)]
            for name, floor in floors:
                if req.returnTier and name != req.returnTier:
                    continue
                members = [r for r in ranked if r[3] == name]
                page = members[start:start + req.pageSize]
                count = len(members) if name != NOT_SIMILAR else len(members) + max(candidates - len(ranked), 0)
                tiers[name] = {"recordIds": [r[0] for r in page], "count": count, "minScore": max(floor, 0.0)
                               if name != NOT_SIMILAR else None, "scoreRange": score_range(members),
                               "items": self._items(s, page), "hasMore": start + req.pageSize < len(members)}
            if NOT_SIMILAR in tiers:
                tiers[NOT_SIMILAR]["approximate"] = True
        similar_total = sum(1 for r in ranked if r[3] != NOT_SIMILAR)
        return {"seed": {"recordId": seed.id, "type": seed.entity_type} if seed else {"text": req.text},
                "dimensions": req.dimensions, "total": similar_total, "totalCandidates": candidates,
                "page": req.page, "pageSize": req.pageSize, "tierOffset": start, "tiers": tiers}

    # --- scoring -----------------------------------------------------------------------------
    def _rank(self, s: Session, org_id: str, req: _Seeded, seed: Record | None,
              text: str | None) -> tuple[list[tuple[str, float, dict[str, float], str]], int]:
        """(record id, score, per-dimension scores, tier) best first — records above ``minScore`` in their tier,
        those below the lowest tier as ``not_similar`` — and how many candidate records there were."""
        emb = self.embedder
        index_sync.check_embedder(s, org_id, emb, claim=False)
        target = normalise_entity_type(req.type) if req.type else (seed.entity_type if seed else None)
        use_mem = req.dimensions in ("memories", "hybrid")
        use_prop = req.dimensions in ("properties", "hybrid")
        if seed is not None:
            seed_mem = self.memory_vectors(s, org_id, [seed.id]).get(seed.id) if use_mem else None
            seed_prop = self.property_vectors(s, [seed])[seed.id] if use_prop else None
            if seed_prop is not None and not seed_prop.any():
                seed_prop = None
        else:
            seed_mem = seed_prop = emb.embed([text or ""])[0]
            seed_mem, seed_prop = (seed_mem if use_mem else None), (seed_prop if use_prop else None)
        exclude = {seed.id} if seed else set()
        candidates: dict[str, Record] = {}
        if seed_mem is not None:
            hit_ids = [rid for rid in self._nearest_records(s, org_id, seed_mem, target) if rid not in exclude]
            candidates.update(self._live_records(s, org_id, hit_ids))
        if seed_prop is not None:
            q = select(Record).where(Record.org_id == org_id, Record.deleted_at.is_(None))
            if target:
                q = q.where(Record.entity_type == target)
            candidates.update({r.id: r for r in s.scalars(q.limit(MAX_CANDIDATES)) if r.id not in exclude})
        if not candidates:
            return [], 0
        ids = list(candidates)
        mem_scores = self._cosines(seed_mem, self.memory_vectors(s, org_id, ids)) if seed_mem is not None else {}
        prop_vecs = self.property_vectors(s, list(candidates.values())) if seed_prop is not None else {}
        prop_scores = self._cosines(seed_prop, {k: v for k, v in prop_vecs.items() if v.any()}) \
            if seed_prop is not None else {}
        out = []
        for rid in ids:
            dims = {k: v for k, v in (("memories", mem_scores.get(rid)), ("properties", prop_scores.get(rid)))
                    if v is not None}
            if not dims:
                continue
            score = float(np.mean(list(dims.values())))
            tier = tier_of(score)
            if tier is None:
                out.append((rid, score, dims, NOT_SIMILAR))
            elif score >= req.minScore:
                out.append((rid, score, dims, tier))
        return sorted(out, key=lambda r: -r[1]), len(candidates)

    def _nearest_records(self, s: Session, org_id: str, vector: np.ndarray, target: str | None) -> list[str]:
        """Records of the ``MEMORY_HITS`` memories nearest ``vector``, nearest first: from the exact org index
        while it serves the org, else from Milvus."""
        types = [target] if target else None
        emb = self.embedder
        ids = self.exact.search(s, org_id, vector, limit=MEMORY_HITS, embedder=emb.name, dim=emb.dim,
                                entity_types=types)
        if ids is None:  # too big for exact search: Milvus
            hits = self.index.search(vector, org_id, limit=MEMORY_HITS, entity_types=types)
            return list(dict.fromkeys(h.record_id for h in hits))
        record_of: dict[str, str] = {}
        for i in range(0, len(ids), 500):
            record_of.update((mid, rid) for mid, rid in s.execute(select(Memory.id, Memory.record_id).where(
                Memory.org_id == org_id, Memory.id.in_(ids[i:i + 500]))))
        return list(dict.fromkeys(record_of[m] for m in ids if m in record_of))

    @staticmethod
    def _cosines(seed: np.ndarray | None, vectors: dict[str, np.ndarray]) -> dict[str, float]:
        if seed is None or not vectors:
            return {}
        keys = list(vectors)
        sims = np.stack([vectors[k] for k in keys]) @ _unit(seed)
        return {k: float(v) for k, v in zip(keys, sims, strict=True)}

    @staticmethod
    def _live_records(s: Session, org_id: str, ids: list[str]) -> dict[str, Record]:
        out: dict[str, Record] = {}
        for i in range(0, len(ids), 500):
            out.update({r.id: r for r in s.scalars(select(Record).where(
                Record.id.in_(ids[i:i + 500]), Record.org_id == org_id, Record.deleted_at.is_(None)))})
        return out

    def memory_vectors(self, s: Session, org_id: str, record_ids: list[str]) -> dict[str, np.ndarray]:
        """Unit mean of each record's live memory embeddings (records without memories are absent)."""
        emb = self.embedder
        sums: dict[str, np.ndarray] = {}
        for i in range(0, len(record_ids), 500):
            rows = s.execute(select(Memory.record_id, Memory.embedding).where(
                Memory.org_id == org_id, Memory.record_id.in_(record_ids[i:i + 500]), Memory.superseded_by.is_(None),
                Memory.deleted_at.is_(None), Memory.embedder == emb.name)).all()
            matrix = from_blobs([r.embedding for r in rows], emb.dim)
            for r, v in zip(rows, matrix, strict=True):
                sums[r.record_id] = sums.get(r.record_id, 0) + v
        return {rid: _unit(v) for rid, v in sums.items() if np.any(v)}

    def property_vectors(self, s: Session, records: list[Record]) -> dict[str, np.ndarray]:
        """Embedding of each record's property rendering, cached per (record, version)."""
        out: dict[str, np.ndarray] = {}
        missing: list[Record] = []
        with self._lock:
            for r in records:
                v = self._prop_cache.get((r.id, r.version))
                if v is None:
                    missing.append(r)
                else:
                    out[r.id] = v
        for i in range(0, len(missing), 1000):
            part = missing[i:i + 1000]
            values: dict[str, dict[str, Any]] = {r.id: {} for r in part}
            for rid, name, value in s.execute(select(PropertyValue.record_id, PropertyValue.name, PropertyValue.value)
                                              .where(PropertyValue.record_id.in_(list(values)))):
                values[rid][name] = value
            vectors = self.embedder.embed([render_properties(values[r.id]) for r in part])
            with self._lock:
                if len(self._prop_cache) > MAX_CANDIDATES * 10:
                    self._prop_cache.clear()
                for r, v in zip(part, vectors, strict=True):
                    self._prop_cache[(r.id, r.version)] = v
                    out[r.id] = v
        return out

    def _items(self, s: Session, ranked: list[tuple[str, float, dict[str, float], str]]) -> list[dict[str, Any]]:
        ids = [r[0] for r in ranked]
        keys = record_keys(s, ids)
        types = dict(s.execute(select(Record.id, Record.entity_type).where(Record.id.in_(ids))).all()) if ids else {}
        return [{"recordId": rid, "record_id": rid, "type": types.get(rid), "keys": keys.get(rid, {}),
                 "score": round(score, 6), "tier": tier, "scores": {k: round(v, 6) for k, v in dims.items()},
                 "matchBreakdown": {k: round(v, 6) for k, v in dims.items()}}
                for rid, score, dims, tier in ranked]
