"""Per-process cache of one record's memory vectors, loaded from SQL and scored exactly with numpy.

An entry is keyed by (org, record) and stamped with the record's memory *generation* — the count and the
latest ``updated_at`` of its memories. Every memory write (create, dedup bump, supersede, edit, soft delete,
restore, purge) changes one of the two, so a stale entry is never served; checking the stamp is one indexed SQL query.

The same query reads the record's *name stamp* — its version and ``updated_at`` (bumped by every property write that
changes a value, and by a merge) and the number of its keys (keys are only ever added, moved by a merge or deleted
with the record) — which validates what a caller derives from the record's names and keys (scoped recall's subject
names and their vectors, see recall.py), cached next to the vectors with :meth:`EntityVectorCache.subject`. A
property write therefore reloads the names, not the vectors; a memory write the vectors, not the names.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from memrelay.engine.adapters.vector_index import from_blobs
from memrelay.engine.core.util import as_aware
from memrelay.engine.stores.db.models import Memory, Record, RecordKey

T = TypeVar("T")


@dataclass(frozen=True)
class EntityVectors:
    """One record's memories: metadata rows aligned with a ``(n, dim)`` unit-vector matrix."""

    generation: tuple[int, str]
    ids: list[str]
    matrix: np.ndarray
    ts: np.ndarray  # content timestamps, epoch seconds
    live: np.ndarray  # bool: not superseded
    rows: list[dict[str, Any]]


def generation(s: Session, org_id: str, record_id: str) -> tuple[int, str]:
    """(count, max updated_at) of a record's memories: changes with every memory write."""
    return stamps(s, org_id, record_id)[0]


def stamps(s: Session, org_id: str, record_id: str) -> tuple[tuple[int, str], tuple[Any, ...]]:
    """(memory generation, name stamp) of a record in one statement: the name stamp is (version, updated_at, key
    count) of the record, which changes with every write of its property values or keys (see the module doc)."""
    n, latest, v, u, k = s.execute(_STAMPS, {"org": org_id, "rid": record_id}).one()
    return (int(n or 0), str(latest)), (v, str(u), int(k or 0))


# Run on every scoped recall: plain SQL text (building the equivalent Core select with three scalar subqueries and
# its cache key cost more than the indexed lookups themselves).
_STAMPS = text(
    f"SELECT count(m.id), max(m.updated_at),"
    f" (SELECT r.version FROM {Record.__tablename__} r WHERE r.id = :rid),"
    f" (SELECT r.updated_at FROM {Record.__tablename__} r WHERE r.id = :rid),"
    f" (SELECT count(k.id) FROM {RecordKey.__tablename__} k WHERE k.record_id = :rid)"
    f" FROM {Memory.__tablename__} m WHERE m.org_id = :org AND m.record_id = :rid")


@dataclass(frozen=True)
class _Subject:
    stamp: tuple[Any, ...]
    tag: str
    value: Any


class EntityVectorCache:
    """LRU of :class:`EntityVectors`, validated against the record's generation on every read."""

    def __init__(self, max_entries: int = 4096):
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str], EntityVectors] = OrderedDict()
        self._subjects: dict[tuple[str, str], _Subject] = {}
        self._lock = threading.Lock()

    def get(self, s: Session, org_id: str, record_id: str, *, embedder: str, dim: int) -> EntityVectors:
        return self.lookup(s, org_id, record_id, embedder=embedder, dim=dim)[0]

    def lookup(self, s: Session, org_id: str, record_id: str, *, embedder: str,
               dim: int) -> tuple[EntityVectors, tuple[Any, ...]]:
        """The record's vectors (validated against its memory generation) and its name stamp, read in one query:
        pass the stamp to :meth:`subject`."""
        key = (org_id, record_id)
        gen, names = stamps(s, org_id, record_id)
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and hit.generation == gen and hit.matrix.shape[1] == dim:
                self._entries.move_to_end(key)
                return hit, names
        entry = load(s, org_id, record_id, gen, embedder=embedder, dim=dim)
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                old, _ = self._entries.popitem(last=False)
                self._subjects.pop(old, None)
        return entry, names

    def subject(self, org_id: str, record_id: str, stamp: tuple[Any, ...], tag: str, compute: Callable[[], T]) -> T:
        """What ``compute()`` derives from the record's names and keys, cached with the record's entry and computed
        again when the record's name ``stamp`` (from :meth:`lookup`, read in the caller's transaction) or ``tag``
        (what else it depends on, e.g. the embedder) differs from the cached one."""
        key = (org_id, record_id)
        with self._lock:
            hit = self._subjects.get(key)
            if hit is not None and hit.stamp == stamp and hit.tag == tag:
                return hit.value
        value = compute()
        with self._lock:
            if key in self._entries:
                self._subjects[key] = _Subject(stamp, tag, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._subjects.clear()


def load(s: Session, org_id: str, record_id: str, gen: tuple[int, str], *, embedder: str,
         dim: int) -> EntityVectors:
    """Read a record's memories (embedded with ``embedder``) from SQL."""
    rows = s.execute(select(Memory.id, Memory.text, Memory.embedding, Memory.ts, Memory.tags, Memory.speaker,
                            Memory.topic, Memory.superseded_by, Memory.entity_type, Memory.source,
                            Memory.seen_count, Memory.meta, Memory.expires_at, Memory.provenance)
                     .where(Memory.org_id == org_id, Memory.record_id == record_id, Memory.embedder == embedder,
                            Memory.deleted_at.is_(None))
                     .order_by(Memory.id)).all()
    meta = [{"memoryId": r.id, "recordId": record_id, "type": r.entity_type, "text": r.text, "tags": r.tags or [],
             "speaker": r.speaker, "topic": r.topic, "source": r.source, "seenCount": r.seen_count,
             "supersededBy": r.superseded_by, "ts": as_aware(r.ts), "metadata": r.meta or {},
             "expiresAt": as_aware(r.expires_at), "staleTopics": stale_topics(r.provenance)} for r in rows]
    return EntityVectors(
        generation=gen, ids=[r.id for r in rows], matrix=from_blobs([r.embedding for r in rows], dim),
        ts=np.array([_epoch(m["ts"]) for m in meta], dtype=np.float64),
        live=np.array([r.superseded_by is None for r in rows], dtype=bool), rows=meta)


def stale_topics(provenance: Any) -> tuple[str, ...]:
    """The topic keys on which a newer memory replaced this live one (its ``{"source": "supersession",
    "staleTopics": [...]}`` provenance entries, see memory_store._mark_stale_topics); () for most memories."""
    out: list[str] = []
    for entry in provenance or ():
        if isinstance(entry, dict) and entry.get("source") == "supersession":
            out += [t for t in entry.get("staleTopics") or () if isinstance(t, str) and t not in out]
    return tuple(out)


def _epoch(ts: datetime | None) -> float:
    return ts.timestamp() if ts else 0.0
