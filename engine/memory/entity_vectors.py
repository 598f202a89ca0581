"""Per-process cache of one record's memory vectors, loaded from SQL and scored exactly with numpy.

An entry is keyed by (org, record) and stamped with the record's memory *generation* — the count and the
latest ``updated_at`` of its memories. Every memory write (create, dedup bump, supersede, edit, soft delete,
restore, purge) changes one of the two, so a stale entry is never served; checking the stamp is one indexed SQL query.

The same query reads the record's *name stamp* — its version and ``updated_at`` (bumped by every property write that
changes a value, and by a merge) and the number of its keys (keys are only ever added, moved by a merge or deleted
with the record) — which validates what a caller derives from the record's names and keys (scoped recall's subject
names and their vectors, see recall.py), cached next to the vectors with :meth:`EntityVectorCache.subject`. A
property write therefore reloads the names, not the vectors; a memory write the vectors, not the names.

A scoped recall reads every scoped record's stamps in the statement that finds the records (:data:`STAMP_COLUMNS`
passed to ``identity.holders``) and loads the memories of every record it misses in one more
(:meth:`EntityVectorCache.lookup_many`): statements built once, rows read as tuples (no ORM objects), still
ORM-enabled so a department key's access criteria apply to them.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import Text, bindparam, cast, func, select
from sqlalchemy.orm import Session, aliased

from memrelay.engine.adapters.vector_index import from_blobs
from memrelay.engine.core.util import as_aware
from memrelay.engine.domain import readings
from memrelay.engine.stores.access_filter import execute_read
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
    expires: np.ndarray  # expiry, epoch seconds (inf: never)
    memo: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """What readers derive from the rows and keep while the entry lives (recall's RowIndex)."""


Stamps = tuple[tuple[int, str], tuple[Any, ...]]  # (memory generation, name stamp)


def _stamp_columns() -> tuple[Any, ...]:
    keys, mems = aliased(RecordKey, name="stamp_key"), aliased(Memory, name="stamp_memory")
    of_record = (mems.org_id == bindparam("org"), mems.record_id == Record.id)
    return (Record.version, Record.updated_at,
            select(func.count()).where(keys.record_id == Record.id).correlate(Record).scalar_subquery(),
            select(func.count()).where(*of_record).correlate(Record).scalar_subquery(),
            select(func.max(mems.updated_at)).where(*of_record).correlate(Record).scalar_subquery())


STAMP_COLUMNS = _stamp_columns()
"""Column expressions of a ``records`` row (bind parameter ``org``) whose values, passed to :func:`stamps_from`, are
the record's stamps: read them in the statement that finds the records (``identity.holders(columns=...)``)."""


def stamps_from(values: tuple[Any, ...]) -> Stamps:
    """(memory generation, name stamp) from the values of :data:`STAMP_COLUMNS`: the generation is (count, latest
    ``updated_at``) of the record's memories, the name stamp (version, ``updated_at``, key count) of the record."""
    v, u, k, n, latest = values
    return (int(n or 0), str(latest)), (v, str(u), int(k or 0))


def stamps_of(s: Session, org_id: str, record_ids: list[str]) -> dict[str, Stamps]:
    """The stamps of several records, in one statement."""
    if not record_ids:
        return {}
    return {r[0]: stamps_from(tuple(r[1:])) for r in s.execute(_STAMPS, {"org": org_id, "ids": record_ids})}


_STAMPS = select(Record.id, *STAMP_COLUMNS).where(Record.id.in_(bindparam("ids", expanding=True)))
_NO_RECORD: Stamps = ((0, "None"), (None, "None", 0))  # the stamps of a record that does not exist


@dataclass(frozen=True)
class _Subject:
    stamp: tuple[Any, ...]
    tag: str
    value: Any


class EntityVectorCache:
    """LRU of :class:`EntityVectors`, validated against the record's generation on every read."""

    def __init__(self, max_entries: int = 4096, text_memos: tuple[str, ...] = ()):
        self.max_entries = max_entries
        self.text_memos = text_memos
        """Keys of what readers memoise on a cached row from its text alone (recall's keyword stems, topics, value
        kinds ...): when a record's memories change, each unchanged memory (same id, same text) takes them over
        from the entry it replaces, so the first read after a write analyses only the new memories."""
        self._entries: OrderedDict[tuple[str, str], EntityVectors] = OrderedDict()
        self._subjects: dict[tuple[str, str], _Subject] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """Records cached."""
        return len(self._entries)

    def get(self, s: Session, org_id: str, record_id: str, *, embedder: str, dim: int) -> EntityVectors:
        return self.lookup(s, org_id, record_id, embedder=embedder, dim=dim)[0]

    def lookup(self, s: Session, org_id: str, record_id: str, *, embedder: str,
               dim: int) -> tuple[EntityVectors, tuple[Any, ...]]:
        """The record's vectors (validated against its memory generation) and its name stamp, read in one query:
        pass the stamp to :meth:`subject`."""
        return self.lookup_many(s, org_id, [record_id], embedder=embedder, dim=dim)[0]

    def lookup_many(self, s: Session, org_id: str, record_ids: list[str], *, embedder: str, dim: int,
                    stamped: dict[str, Stamps] | None = None) -> list[tuple[EntityVectors, tuple[Any, ...]]]:
        """:meth:`lookup` of each record, in order: every record's stamps in one statement (none when the caller
        read them, ``stamped``: see :data:`STAMP_COLUMNS`), the memories of every record not cached (or stale) in
        one more."""
        read = stamped if stamped is not None else stamps_of(s, org_id, record_ids)
        found: dict[str, EntityVectors] = {}
        todo: dict[str, tuple[int, str]] = {}
        replaced: dict[str, EntityVectors] = {}
        with self._lock:
            for rid in record_ids:
                gen = read.get(rid, _NO_RECORD)[0]
                hit = self._entries.get((org_id, rid))
                if hit is not None and hit.generation == gen and hit.matrix.shape[1] == dim:
                    self._entries.move_to_end((org_id, rid))
                    found[rid] = hit
                else:
                    todo[rid] = gen
                    if hit is not None:
                        replaced[rid] = hit
        if todo:
            fresh = load_many(s, org_id, todo, embedder=embedder, dim=dim)
            if self.text_memos:
                for rid, before in replaced.items():
                    carry_text_memos(before.rows, fresh[rid].rows, self.text_memos)
            found.update(fresh)
            with self._lock:
                for rid, entry in fresh.items():
                    self._entries[(org_id, rid)] = entry
                    self._entries.move_to_end((org_id, rid))
                while len(self._entries) > self.max_entries:
                    old, _ = self._entries.popitem(last=False)
                    self._subjects.pop(old, None)
        return [(found[rid], read.get(rid, _NO_RECORD)[1]) for rid in record_ids]

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


def carry_text_memos(old_rows: list[dict[str, Any]], new_rows: list[dict[str, Any]], keys: tuple[str, ...]) -> int:
    """Copy the ``keys`` memoised on each old row to the new row of the same memory when its text is unchanged;
    the number of rows that took memos over."""
    before = {r["memoryId"]: r for r in old_rows}
    carried = 0
    for row in new_rows:
        old = before.get(row["memoryId"])
        if old is None or old["text"] != row["text"]:
            continue
        got = {k: old[k] for k in keys if k in old}
        if got:
            row.update(got)
            carried += 1
    return carried


def load(s: Session, org_id: str, record_id: str, gen: tuple[int, str], *, embedder: str,
         dim: int) -> EntityVectors:
    """Read a record's memories (embedded with ``embedder``) from SQL."""
    return load_many(s, org_id, {record_id: gen}, embedder=embedder, dim=dim)[record_id]


def load_many(s: Session, org_id: str, generations: dict[str, tuple[int, str]], *, embedder: str,
              dim: int) -> dict[str, EntityVectors]:
    """Read the memories (embedded with ``embedder``) of several records in one statement: record id ->
    :class:`EntityVectors` stamped with its generation from ``generations``."""
    by_record: dict[str, list[Any]] = {rid: [] for rid in generations}
    params = {"org": org_id, "ids": list(generations), "embedder": embedder}
    for r in execute_read(s, _LOAD, params):
        by_record[r.record_id].append(r)
    return {rid: _vectors(rid, rows, generations[rid], dim) for rid, rows in by_record.items()}


def _vectors(record_id: str, rows: list[Any], gen: tuple[int, str], dim: int) -> EntityVectors:
    for r in rows:
        if r.readings is not None:
            readings.prime(r.text, _json(r.readings))
    meta = [{"memoryId": r.id, "recordId": record_id, "type": r.entity_type, "text": r.text,
             "tags": _json(r.tags) or [], "speaker": r.speaker, "topic": r.topic, "source": r.source,
             "seenCount": r.seen_count, "supersededBy": r.superseded_by, "ts": as_aware(r.ts),
             "metadata": _json(r.meta) or {}, "expiresAt": as_aware(r.expires_at),
             "staleTopics": stale_topics(_json(r.provenance))} for r in rows]
    return EntityVectors(
        generation=gen, ids=[r.id for r in rows], matrix=from_blobs([r.embedding for r in rows], dim),
        ts=np.array([_epoch(m["ts"]) for m in meta], dtype=np.float64),
        live=np.array([r.superseded_by is None for r in rows], dtype=bool), rows=meta,
        expires=np.array([m["expiresAt"].timestamp() if m["expiresAt"] is not None else np.inf for m in meta],
                         dtype=np.float64))


def _json(raw: str | None) -> Any:
    """A JSON column read as its text: the common empty values without a parse."""
    if raw is None:
        return None
    empty = _EMPTY_JSON.get(raw)
    return empty() if empty is not None else json.loads(raw)


_EMPTY_JSON: dict[str, Callable[[], Any]] = {"[]": list, "{}": dict, "null": lambda: None}

# Built once with bind parameters, in memory id order (as the cached rows always were); an ORM-enabled statement, so a
# department key's access criteria (stores/access_filter.py) apply as to any read — run through the ORM only then
# (``needs_orm``), else as Core on the session's connection. The JSON columns are read as text (see _json: most are
# empty).
_LOAD = (select(Memory.id, Memory.record_id, Memory.text, Memory.embedding, Memory.ts,
                cast(Memory.tags, Text).label("tags"), Memory.speaker, Memory.topic, Memory.superseded_by,
                Memory.entity_type, Memory.source, Memory.seen_count, cast(Memory.meta, Text).label("meta"),
                Memory.expires_at, cast(Memory.provenance, Text).label("provenance"),
                cast(Memory.readings, Text).label("readings"))
         .where(Memory.org_id == bindparam("org"), Memory.record_id.in_(bindparam("ids", expanding=True)),
                Memory.embedder == bindparam("embedder"), Memory.deleted_at.is_(None))
         .order_by(Memory.id))


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
