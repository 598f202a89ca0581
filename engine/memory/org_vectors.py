"""Exact org-wide vector search in process, for orgs small enough to hold in memory.

Milvus Lite answers a top-10 over 100k vectors in ~60–190 ms on this class of machine, while a numpy dot
product over the same vectors takes ~10 ms. So below ``max_rows`` memories an org's embeddings are kept
as one matrix per process (loaded from SQL, the source of truth) and scored exactly; larger orgs use the
Milvus index. The matrix is refreshed incrementally (rows changed since the last refresh, at most every
``refresh_s``); deleted, superseded or moved memories are dropped by the caller's SQL re-check, so a stale
row can never surface another record's or org's data.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from memrelay.engine.adapters.vector_index import from_blobs
from memrelay.engine.stores.db.models import Memory

DEFAULT_MAX_ROWS = 200_000
LOOKBACK_S = 30


@dataclass
class _OrgMatrix:
    dim: int
    ids: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    pos: dict[str, int] = field(default_factory=dict)
    matrix: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    stamps: dict[str, datetime] = field(default_factory=dict)
    high_water: datetime | None = None
    checked_at: float = 0.0

    def upsert(self, rows: list[tuple[str, str, bytes | None]]) -> None:
        vecs = from_blobs([r[2] for r in rows], self.dim)
        fresh = [(i, r) for i, r in enumerate(rows) if r[0] not in self.pos]
        need = len(self.ids) + len(fresh)
        if need > self.matrix.shape[0]:
            grown = np.zeros((max(need, 2 * self.matrix.shape[0], 1024), self.dim), dtype=np.float32)
            if self.ids:
                grown[:len(self.ids)] = self.matrix[:len(self.ids)]
            self.matrix = grown
        for i, (mid, etype, _) in enumerate(rows):
            p = self.pos.get(mid)
            if p is None:
                p = self.pos[mid] = len(self.ids)
                self.ids.append(mid)
                self.types.append(etype)
            self.matrix[p] = vecs[i]


class ExactOrgIndex:
    """Per-process exact top-k over each small org's memory embeddings."""

    def __init__(self, *, max_rows: int = DEFAULT_MAX_ROWS, refresh_s: float = 1.0):
        self.max_rows = max_rows
        self.refresh_s = refresh_s
        self._orgs: dict[tuple[str, str, int], _OrgMatrix | None] = {}
        self._lock = threading.Lock()

    def search(self, s: Session, org_id: str, qvec: np.ndarray, *, limit: int, embedder: str, dim: int,
               entity_types: list[str] | None = None) -> list[str] | None:
        """Ids of the ``limit`` most similar memories, or None when the org is too big (use Milvus)."""
        with self._lock:
            entry = self._current(s, org_id, embedder, dim)
            if entry is None:
                return None
            n = len(entry.ids)
            if n == 0:
                return []
            sims = entry.matrix[:n] @ np.asarray(qvec, dtype=np.float32)
            if entity_types:
                sims = np.where(np.isin(np.asarray(entry.types, dtype=object), entity_types), sims, -np.inf)
            k = min(limit, n)
            top = np.argpartition(-sims, k - 1)[:k]
            top = top[np.argsort(-sims[top], kind="stable")]
            return [entry.ids[i] for i in top if np.isfinite(sims[i])]

    def _current(self, s: Session, org_id: str, embedder: str, dim: int) -> _OrgMatrix | None:
        key = (org_id, embedder, dim)
        now = time.monotonic()
        if key not in self._orgs:
            total = s.scalar(select(func.count()).select_from(Memory).where(Memory.org_id == org_id)) or 0
            self._orgs[key] = _OrgMatrix(dim) if total <= self.max_rows else None
        entry = self._orgs[key]
        if entry is None or now - entry.checked_at < self.refresh_s:
            return entry
        scope = (Memory.org_id == org_id, Memory.embedder == embedder)
        if entry.high_water is None:
            rows = s.execute(select(Memory.id, Memory.entity_type, Memory.embedding, Memory.updated_at)
                             .where(*scope)).all()
        else:
            # Overlap window: a transaction stamped before the high-water mark may commit after we read it.
            # Only ids and stamps are read for the window; vectors only for rows that are new or changed.
            recent = s.execute(select(Memory.id, Memory.updated_at).where(
                *scope, Memory.updated_at > entry.high_water - timedelta(seconds=LOOKBACK_S))).all()
            changed = [mid for mid, ts in recent if entry.stamps.get(mid) != ts]
            rows = []
            for i in range(0, len(changed), 500):
                rows += s.execute(select(Memory.id, Memory.entity_type, Memory.embedding, Memory.updated_at)
                                  .where(Memory.id.in_(changed[i:i + 500]))).all()
        if rows:
            entry.upsert([(r[0], r[1], r[2]) for r in rows])
            entry.stamps.update({r[0]: r[3] for r in rows})
            latest = max(r[3] for r in rows)
            entry.high_water = latest if entry.high_water is None else max(entry.high_water, latest)
        entry.checked_at = now
        if len(entry.ids) > self.max_rows:  # grew past the limit: hand over to Milvus
            self._orgs[key] = None
            return None
        return entry
