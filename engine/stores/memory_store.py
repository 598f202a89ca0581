"""Writing memory rows for many records at once: dedup, fresh-fact precedence, events.

Shared by single ``memorize`` and batch memorize, so both apply exactly the same rules:

* **Dedup** is scoped to one record: a new memory that is a near-verbatim restatement of a live one
  (``semantics.is_near_duplicate``: cosine >= ~0.95 *and* the same numbers and names) is not stored; the
  existing one's ``seen_count`` is bumped and the new source appended to its provenance.
* **Fresh facts win**: when a new memory contradicts a live one on the same topic slot with a different value
  (``semantics.replaced_topics``), the one with the *older content timestamp* is marked superseded by the other —
  even when it is the one being written now — but only when all its claims lie in that slot
  (``semantics.supersedes``): a memory that also states other facts ("Tobias Brandt (CFO) ... DPO Hanna = veto")
  is never hidden; it stays live and its provenance gets a ``{"source": "supersession", "staleTopics": [...],
  "supersededBy": ...}`` entry. Statements with the same timestamp (e.g. sentences of one document) never outdate
  each other.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import numpy as np
from sqlalchemy import Table, bindparam, delete, event, func, insert, select
from sqlalchemy.orm import Session

from memrelay.engine.adapters.vector_index import from_blobs, to_blob
from memrelay.engine.core.access import current_access
from memrelay.engine.core.util import as_aware, iso, new_id, utcnow
from memrelay.engine.domain import semantics
from memrelay.engine.domain.extraction.keywords import tokens
from memrelay.engine.domain.readings import text_readings
from memrelay.engine.stores.db.database import rowcount
from memrelay.engine.stores.db.models import IndexTombstone, Memory, OutboxEvent, PropertyValue, Record
from memrelay.engine.stores.outbox import outbox_row

MEMORIES = cast(Table, Memory.__table__)
OUTBOX = cast(Table, OutboxEvent.__table__)

# Pairs below this cosine cannot be near-verbatim duplicates; skips the facet comparison for most pairs.
DEDUP_PREFILTER = 0.75


@dataclass
class NewMemory:
    """A memory to write about one (already locked or created) record."""

    record: Record
    text: str
    vector: np.ndarray
    ts: datetime
    source: str = "memorize"
    speaker: str | None = None
    tags: list[str] = field(default_factory=list)
    event_id: str | None = None
    metadata: dict[str, Any] | None = None  # caller metadata, filtered in smart recall
    expires_at: datetime | None = None  # hidden from recall after this (unless includeExpired)
    span: tuple[int, int] | None = None  # offsets of the statement in the memorized content (provenance)


@dataclass(slots=True)
class FreshMemory:
    """A memory row being written by :func:`store_memories`: the attributes of :class:`Memory` that dedup and
    supersession read and change, as a plain object (no ORM instrumentation), inserted once it is final."""

    id: str
    org_id: str
    record_id: str
    entity_type: str
    text: str
    speaker: str | None
    tags: list[Any]
    source: str | None
    ts: datetime
    created_at: datetime
    updated_at: datetime
    embedding: bytes | None
    embedder: str | None
    topic: str | None
    seen_count: int
    provenance: list[Any]
    meta: dict[str, Any] | None
    expires_at: datetime | None
    index_state: str = "pending"
    superseded_by: str | None = None
    superseded_at: datetime | None = None
    readings: dict[str, Any] | None = None

    def values(self) -> dict[str, Any]:
        """The row as column values of the memories table."""
        return {"id": self.id, "org_id": self.org_id, "record_id": self.record_id, "entity_type": self.entity_type,
                "text": self.text, "speaker": self.speaker, "tags": self.tags, "source": self.source, "ts": self.ts,
                "created_at": self.created_at, "updated_at": self.updated_at, "embedding": self.embedding,
                "embedder": self.embedder, "topic": self.topic, "seen_count": self.seen_count,
                "provenance": self.provenance, "superseded_by": self.superseded_by,
                "superseded_at": self.superseded_at, "index_state": self.index_state, "deleted_at": None,
                "purge_after": None, "metadata": self.meta, "expires_at": self.expires_at, "readings": self.readings}


_Row = Memory | FreshMemory  # a live memory: stored (ORM) or being written by this call


@dataclass
class StoreOutcome:
    created: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)  # ids of the existing memories that were bumped
    superseded: list[str] = field(default_factory=list)


@dataclass(eq=False, slots=True)
class _Live:
    """A live memory of a record as dedup and supersession read it for every candidate: id, text and content
    timestamp (aware; its vector is a row of its :class:`_Pool`'s matrix). Its full row (an ORM :class:`Memory`,
    JSON columns decoded) is loaded only when it is changed (bumped, superseded, marked stale): :attr:`row`."""

    id: str
    text: str
    ts: datetime
    loaded: _Row | None = None
    session: Session | None = None

    @property
    def row(self) -> _Row:
        if self.loaded is None:
            assert self.session is not None
            self.loaded = self.session.get_one(Memory, self.id)
        return self.loaded

    @classmethod
    def of(cls, row: FreshMemory) -> _Live:
        return cls(row.id, row.text, as_aware(row.ts) or row.ts, loaded=row)


class _Pool:
    """The live memories of one record, their vectors stacked in one matrix (one product scores them all; the
    matrix grows by doubling, so a batch adding thousands of memories to one record does not copy it each time),
    and the hash of each one's facets (numbers, names, stages...), computed when first needed: a restatement must
    have the same facets, so most close-but-different memories are ruled out by comparing integers."""

    def __init__(self, dim: int, vectors: np.ndarray | None = None, lives: list[_Live] | None = None) -> None:
        self.lives: list[_Live] = lives or []
        self._buf = vectors if vectors is not None else np.zeros((0, dim), dtype=np.float32)
        self._keys = np.zeros(len(self._buf), dtype=np.int64)
        self._known = np.zeros(len(self._buf), dtype=bool)

    def __len__(self) -> int:
        return len(self.lives)

    @property
    def capacity(self) -> int:
        """Rows of its vector matrix (at least its length: it grows by doubling)."""
        return len(self._buf)

    @property
    def vectors(self) -> np.ndarray:
        return self._buf[:len(self.lives)]

    def sims(self, vector: np.ndarray) -> np.ndarray:
        """Cosine of ``vector`` (unit length, as every stored one) with each live memory, in pool order."""
        return self.vectors @ np.asarray(vector, dtype=np.float32)

    def candidates(self, sims: np.ndarray, text: str) -> np.ndarray:
        """Positions of the live memories ``text`` may restate: at least ``DEDUP_PREFILTER`` similar and with the
        same facets hash, most similar first."""
        near = np.flatnonzero(sims >= DEDUP_PREFILTER)
        if not len(near):
            return near
        unknown = near[~self._known[near]]
        for i in unknown:
            self._keys[i] = hash(semantics.facets(self.lives[i].text))
        self._known[unknown] = True
        same = near[self._keys[near] == hash(semantics.facets(text))]
        return same[np.argsort(-sims[same], kind="stable")]

    def add(self, live: _Live, vector: np.ndarray) -> None:
        n = len(self.lives)
        if n == len(self._buf):
            size = max(8, 2 * n)
            self._buf = np.concatenate([self._buf[:n], np.zeros((size - n, self._buf.shape[1]), np.float32)])
            self._keys = np.concatenate([self._keys[:n], np.zeros(size - n, np.int64)])
            self._known = np.concatenate([self._known[:n], np.zeros(size - n, bool)])
        self._buf[n], self._known[n] = vector, False
        self.lives.append(live)

    def remove(self, live: _Live) -> None:
        i, n = self.lives.index(live), len(self.lives)
        self._buf, self._keys = np.delete(self._buf[:n], i, axis=0), np.delete(self._keys[:n], i)
        self._known = np.delete(self._known[:n], i)
        del self.lives[i]


Generation = tuple[int, str]
"""A record's memory generation: the count and the latest ``updated_at`` of its memories (live or not). Every
memory write changes one of the two (the invariant recall's entity cache rests on, see ``entity_vectors``)."""

_GENERATIONS = select(MEMORIES.c.record_id, func.count(), func.max(MEMORIES.c.updated_at)).where(
    MEMORIES.c.org_id == bindparam("org"), MEMORIES.c.record_id.in_(bindparam("ids", expanding=True)),
).group_by(MEMORIES.c.record_id)  # index-only on ix_memories_record (org_id, record_id, updated_at)


def generations(s: Session, org_id: str, record_ids: list[str]) -> dict[str, Generation]:
    """The memory generation of each record (0 memories: ``(0, "None")``), in one statement per 500 records, on
    the session's connection (callers run it only where no access criteria apply)."""
    out = dict.fromkeys(record_ids, (0, "None"))
    conn = s.connection()
    for i in range(0, len(record_ids), 500):
        for rid, count, latest in conn.execute(_GENERATIONS, {"org": org_id, "ids": record_ids[i:i + 500]}):
            out[rid] = (int(count), str(latest))
    return out


class LivePoolCache:
    """Per-process LRU of big records' live-memory pools (what dedup and supersession read), so memorizing into a
    record holding thousands of memories does not read and decode all of them on every call.

    An entry is keyed by (org, record, embedder, dim) and stamped with the record's memory :data:`Generation`
    read in the transaction that wrote it, after its writes: any later memory write — by any process — changes the
    generation, and the entry is then not used (:meth:`usable` says why none can slip in between). :meth:`take`
    removes the entries it returns (the caller's transaction changes the pools), :meth:`keep` puts them back once
    that transaction has committed (nothing is kept after a rollback). Only records with at least ``min_size`` live
    memories are kept (below that, reading them costs less than the two generation reads); ``max_rows`` bounds the
    vectors held (rows of capacity)."""

    def __init__(self, *, min_size: int = 64, max_rows: int = 16_384) -> None:
        self.min_size, self.max_rows = min_size, max_rows
        self._entries: OrderedDict[tuple[str, str, str, int], tuple[Generation, _Pool]] = OrderedDict()
        self._rows = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def usable(s: Session) -> bool:
        """Whether ``s`` may use the cache. Its callers hold the locks of the records they write (PostgreSQL
        ``FOR UPDATE``; SQLite's write transaction holds the database's write lock), and every other writer that
        changes a record's live memories takes the same lock first (memorize, batch memorize and bulk writes, a
        memory's text edit, delete and restore, a record's deletion, erasure and merge), so none can commit between
        the pool's read and the generation read after the writes. (Purging already deleted memories and index-state
        updates change no live memory.) Not under a record-restricting access scope (its pools would differ), not
        in a savepoint (an outer rollback would leave cached pools the database never held)."""
        return not current_access().restricts_records and not s.in_nested_transaction()

    def take(self, s: Session, org_id: str, record_ids: list[str], *, embedder: str, dim: int) -> dict[str, _Pool]:
        """The cached pools of ``record_ids`` still at their database generation, removed from the cache and
        bound to ``s`` (their full rows load in it when changed)."""
        with self._lock:
            if not any((org_id, rid, embedder, dim) in self._entries for rid in record_ids):
                return {}
        current = generations(s, org_id, record_ids)
        out: dict[str, _Pool] = {}
        with self._lock:
            for rid in record_ids:
                entry = self._entries.pop((org_id, rid, embedder, dim), None)
                if entry is None:
                    continue
                self._rows -= entry[1].capacity
                if entry[0] == current[rid]:
                    out[rid] = entry[1]
        for pool in out.values():
            for live in pool.lives:
                live.loaded, live.session = None, s
        return out

    def keep(self, s: Session, org_id: str, pools: dict[str, _Pool], *, embedder: str, dim: int) -> None:
        """Once ``s`` commits, cache the pools of at least ``min_size`` memories under their records' generations
        as read now (after this transaction's writes: call it after them)."""
        big = {rid: pool for rid, pool in pools.items() if len(pool) >= self.min_size}
        if not big:
            return
        s.flush()
        gens = generations(s, org_id, list(big))
        for pool in big.values():
            for live in pool.lives:
                live.loaded, live.session = None, None  # no ORM row or session outlives the transaction

        armed = [True]

        def rolled_back(_session: Session) -> None:
            armed[0] = False

        def committed(_session: Session) -> None:
            if not armed[0]:
                return
            with self._lock:
                for rid, pool in big.items():
                    key = (org_id, rid, embedder, dim)
                    old = self._entries.pop(key, None)
                    self._rows += pool.capacity - (old[1].capacity if old is not None else 0)
                    self._entries[key] = (gens[rid], pool)
                while self._rows > self.max_rows and self._entries:
                    dropped = self._entries.popitem(last=False)[1][1]
                    self._rows -= dropped.capacity

        event.listen(s, "after_rollback", rolled_back, once=True)
        event.listen(s, "after_commit", committed, once=True)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._rows = 0


def provenance_entry(source: str, ts: datetime, *, event_id: str | None = None, speaker: str | None = None,
                     actor: str | None = None, span: tuple[int, int] | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"source": source, "timestamp": iso(ts), "at": iso(utcnow())}
    for key, value in (("eventId", event_id), ("speaker", speaker), ("actor", actor)):
        if value:
            entry[key] = value
    if span is not None:
        entry["span"] = {"start": int(span[0]), "end": int(span[1])}
    return entry


def memory_to_dict(m: Memory) -> dict[str, Any]:
    """The API rendering of one memory."""
    return {"memoryId": m.id, "recordId": m.record_id, "type": m.entity_type, "text": m.text, "speaker": m.speaker,
            "tags": list(m.tags or []), "source": m.source, "timestamp": iso(m.ts), "topic": m.topic,
            "seenCount": m.seen_count, "provenance": list(m.provenance or []), "supersededBy": m.superseded_by,
            "supersededAt": iso(m.superseded_at), "createdAt": iso(m.created_at), "updatedAt": iso(m.updated_at),
            **({"metadata": dict(m.meta)} if m.meta else {}),
            **({"expiresAt": iso(m.expires_at)} if m.expires_at else {}),
            **({"deletedAt": iso(m.deleted_at), "purgeAfter": iso(m.purge_after)} if m.deleted_at else {})}


def store_memories(s: Session, items: list[NewMemory], *, embedder: str, dim: int,
                   pool_cache: LivePoolCache | None = None) -> StoreOutcome:
    """Dedup, supersede and insert ``items`` (pending indexing) in the caller's transaction.

    The new rows and their events are written set-based once every item is decided (one multi-row INSERT for
    the memories, one for the outbox, events in the order they happened); a new row deduplicated or superseded
    by a later item of the same call is written in its final state. Existing memories (bumped or superseded)
    are updated through the session as before. ``pool_cache``: the process's cache of big records' live memories
    (used where :meth:`LivePoolCache.usable`)."""
    out = StoreOutcome()
    if not items:
        return out
    fresh: list[FreshMemory] = []  # new rows, inserted together at the end
    events: list[dict[str, Any]] = []
    record_ids = list({it.record.id for it in items})
    org_id = items[0].record.org_id
    cache = pool_cache if pool_cache is not None and LivePoolCache.usable(s) else None
    pools = cache.take(s, org_id, record_ids, embedder=embedder, dim=dim) if cache is not None else {}
    pools.update(_live_pools(s, org_id, [rid for rid in record_ids if rid not in pools], dim))
    _load_candidates(s, pools, items)
    subjects: dict[str, frozenset[str]] | None = None  # read on the first contradiction only
    now = utcnow()
    for it in items:
        pool = pools.setdefault(it.record.id, _Pool(dim))
        ts = as_aware(it.ts) or now
        sims = pool.sims(it.vector)
        dup = _find_duplicate(pool, sims, it.text)
        if dup is not None:
            _bump(events, dup.row, it, ts, now)
            dup.ts = as_aware(dup.row.ts) or dup.ts
            out.duplicates.append(dup.id)
            continue
        row = FreshMemory(id=new_id("mem"), org_id=it.record.org_id, record_id=it.record.id,
                          entity_type=it.record.entity_type, text=it.text, speaker=it.speaker, tags=list(it.tags),
                          source=it.source, ts=ts, created_at=now, updated_at=now, embedding=to_blob(it.vector),
                          embedder=embedder, topic=semantics.topic_of(it.text), seen_count=1,
                          provenance=[provenance_entry(it.source, ts, event_id=it.event_id, speaker=it.speaker,
                                                       span=it.span)],
                          meta=dict(it.metadata) if it.metadata else None, expires_at=it.expires_at,
                          readings=text_readings(it.text))
        fresh.append(row)
        out.created.append(row.id)
        if subjects is None and semantics.topics_of(row.text) and pool:
            subjects = subject_words(s, record_ids)
        out.superseded += _supersede(s, events, pool, sims, row, now,
                                     (subjects or {}).get(row.record_id, frozenset()))
        if row.superseded_by is None:
            pool.add(_Live.of(row), it.vector)
        events.append(outbox_row(row.org_id, "memory.updated", {"memoryId": row.id, "recordId": row.record_id,
                                                                "type": row.entity_type, "change": "created",
                                                                "supersededBy": row.superseded_by}))
    _insert(s, fresh, events)
    if cache is not None:
        cache.keep(s, org_id, pools, embedder=embedder, dim=dim)
    return out


def _insert(s: Session, rows: list[FreshMemory], events: list[dict[str, Any]]) -> None:
    """Write new memory rows (in their final state) and outbox events with one executemany INSERT each."""
    if not rows and not events:
        return
    s.flush()  # records created earlier in this transaction (the memories' foreign key) reach the database first
    conn = s.connection()
    if rows:
        conn.execute(insert(MEMORIES), [r.values() for r in rows])
    if events:
        conn.execute(insert(OUTBOX), events)


def _live_pools(s: Session, org_id: str, record_ids: list[str], dim: int) -> dict[str, _Pool]:
    """Each record's live memories: id, text, time and vector only (the rows are loaded when changed), so a
    record with thousands of memories costs one narrow query and one matrix, not thousands of ORM rows."""
    pools: dict[str, _Pool] = {}
    for i in range(0, len(record_ids), 500):  # org_id first: ix_memories_record is (org_id, record_id, updated_at)
        rows = s.execute(select(Memory.id, Memory.record_id, Memory.text, Memory.ts, Memory.embedding).where(
            Memory.org_id == org_id, Memory.record_id.in_(record_ids[i:i + 500]), Memory.superseded_by.is_(None),
            Memory.deleted_at.is_(None))).all()
        by_record: dict[str, list[Any]] = {}
        for r in rows:
            by_record.setdefault(r.record_id, []).append(r)
        for rid, group in by_record.items():
            vectors = from_blobs([r.embedding for r in group], dim)
            pools[rid] = _Pool(dim, vectors, [_Live(r.id, r.text, as_aware(r.ts) or r.ts, session=s) for r in group])
    return pools


def _load_candidates(s: Session, pools: dict[str, _Pool], items: list[NewMemory]) -> None:
    """Load, in one query per 500, the stored rows that items restate (a replayed batch bumps most of its items'
    memories, which would otherwise be loaded one by one)."""
    wanted: list[_Live] = []
    for it in items:
        pool = pools.get(it.record.id)
        dup = _find_duplicate(pool, pool.sims(it.vector), it.text) if pool else None
        if dup is not None:
            wanted.append(dup)
    _load_rows(s, wanted)


def _load_rows(s: Session, lives: list[_Live]) -> None:
    """Load the full rows of ``lives`` not loaded yet, in one query per 500."""
    wanted = {live.id: live for live in lives if live.loaded is None}
    ids = list(wanted)
    for i in range(0, len(ids), 500):
        for row in s.scalars(select(Memory).where(Memory.id.in_(ids[i:i + 500]))):
            wanted[row.id].loaded = row


def _find_duplicate(pool: _Pool, sims: np.ndarray, text: str) -> _Live | None:
    """The live memory ``text`` restates (the most similar one), if any."""
    for idx in pool.candidates(sims, text):
        if semantics.is_near_duplicate(pool.lives[idx].text, text, float(sims[idx])):
            return pool.lives[idx]
    return None


def _bump(events: list[dict[str, Any]], row: _Row, it: NewMemory, ts: datetime, now: datetime) -> None:
    if it.event_id and any(p.get("eventId") == it.event_id for p in row.provenance or []):
        return  # the same source event again (redelivery, replay, retried job): it counts once
    row.seen_count = (row.seen_count or 1) + 1
    row.provenance = [*(row.provenance or []), provenance_entry(it.source, ts, event_id=it.event_id,
                                                                speaker=it.speaker, span=it.span)]
    row.tags = sorted(set(row.tags or []) | set(it.tags))
    if it.metadata:
        row.meta = {**(row.meta or {}), **it.metadata}
    if row.expires_at is not None:  # restated: lives as long as its latest statement says (None = for good)
        row.expires_at = None if it.expires_at is None else max(as_aware(row.expires_at), as_aware(it.expires_at))
    if ts > (as_aware(row.ts) or ts):
        row.ts = ts  # re-confirmed later: the fact is as fresh as its latest statement
    row.updated_at = now
    events.append(outbox_row(row.org_id, "memory.updated", {"memoryId": row.id, "recordId": row.record_id,
                                                            "type": row.entity_type, "change": "seen_again",
                                                            "seenCount": row.seen_count}))


def _supersede(s: Session, events: list[dict[str, Any]], pool: _Pool, sims: np.ndarray, row: FreshMemory,
               now: datetime, subject: frozenset[str] = frozenset()) -> list[str]:
    """Apply fresh-fact precedence between ``row`` and the live memories it contradicts (decided on their texts
    and times; the rows it changes are then loaded together)."""
    if not semantics.topics_of(row.text):
        return []
    row_ts = as_aware(row.ts) or row.ts
    decided: list[tuple[_Live, list[str], bool]] = []  # (live memory, its stale topics, whether it is hidden)
    for live, cos in zip(pool.lives, sims, strict=True):
        if live.ts == row_ts or not semantics.shares_topic(live.text, row.text):
            continue  # statements made at the same moment (e.g. one document) do not outdate each other
        older, newer = (live.text, row.text) if live.ts < row_ts else (row.text, live.text)
        stale = semantics.replaced_topics(older, newer, float(cos))
        if stale:
            decided.append((live, stale, bool(semantics.supersedes(older, newer, float(cos), subject=subject))))
    _load_rows(s, [live for live, _, _ in decided if live.ts < row_ts])
    superseded: list[str] = []
    newer_than_row: list[_Live] = []
    for live, stale, hidden in decided:
        old_is_older = live.ts < row_ts
        if not hidden:  # it also states other true facts: stays visible
            if old_is_older:
                _mark_stale_topics(live.row, row.id, row_ts, stale, now)
            else:
                _mark_stale_topics(row, live.id, live.ts, stale, now)
        elif old_is_older:
            old = live.row
            old.superseded_by, old.superseded_at, old.updated_at = row.id, now, now
            pool.remove(live)
            superseded.append(old.id)
            events.append(outbox_row(old.org_id, "memory.updated", {"memoryId": old.id, "recordId": old.record_id,
                                                                    "type": old.entity_type, "change": "superseded",
                                                                    "supersededBy": row.id}))
        else:
            newer_than_row.append(live)
    if newer_than_row:
        successor = max(newer_than_row, key=lambda m: m.ts)
        row.superseded_by, row.superseded_at = successor.id, now
        superseded.append(row.id)
    return superseded


def _mark_stale_topics(older: _Row, newer_id: str, newer_ts: datetime, topics: list[str], now: datetime) -> None:
    """Record in ``older``'s provenance that the memory ``newer_id`` (stated at ``newer_ts``) replaced its value
    on ``topics`` while ``older`` stays live (it holds other claims): explain/history can show it, nothing is
    hidden."""
    entry = {"source": "supersession", "timestamp": iso(newer_ts), "at": iso(now),
             "staleTopics": list(topics), "supersededBy": newer_id}
    older.provenance = [*(older.provenance or []), entry]


_SUBJECT_PROPERTIES = ("first_name", "last_name", "name", "full_name", "company_name", "company", "domain")


def subject_words(s: Session, record_ids: list[str]) -> dict[str, frozenset[str]]:
    """Lower-case words naming each record (its name and company properties): who a statement is about."""
    out: dict[str, set[str]] = {}
    for i in range(0, len(record_ids), 500):
        for rid, value in s.execute(select(PropertyValue.record_id, PropertyValue.value)
                                    .where(PropertyValue.record_id.in_(record_ids[i:i + 500]),
                                           PropertyValue.name.in_(_SUBJECT_PROPERTIES))):
            if isinstance(value, str):
                out.setdefault(rid, set()).update(w for w in tokens(value) if len(w) > 1)
    return {rid: frozenset(words) for rid, words in out.items()}


def company_of(s: Session, rec: Record | None) -> str | None:
    """The company a (contact) record belongs to, from its company properties: the context facts are
    resolved against ("our database" -> "<company>'s database") and embedded with."""
    if rec is None or rec.entity_type == "company":
        return None
    return companies_of(s, [rec.id]).get(rec.id)


COMPANY_PROPS = ("company_name", "company")
"""The properties a record's company is read from, in order of preference."""


def company_from(props: dict[str, Any]) -> str | None:
    """The company named by a record's properties (``company_name``, else ``company``), stripped; None if blank."""
    value = props.get("company_name") or props.get("company")
    return str(value).strip() if value and str(value).strip() else None


def companies_of(s: Session, record_ids: list[str]) -> dict[str, str]:
    """:func:`company_of` of many (non-company) records in one query per 500 (records without one are absent)."""
    rows: dict[str, dict[str, Any]] = {}
    for i in range(0, len(record_ids), 500):
        for rid, name, value in s.execute(select(PropertyValue.record_id, PropertyValue.name, PropertyValue.value)
                                          .where(PropertyValue.record_id.in_(record_ids[i:i + 500]),
                                                 PropertyValue.name.in_(COMPANY_PROPS))):
            rows.setdefault(rid, {})[name] = value
    return {rid: company for rid, props in rows.items() if (company := company_from(props)) is not None}


# --- soft delete -------------------------------------------------------------------------------------
def soft_delete_memories(s: Session, rows: list[Memory], *, days: int, now: datetime) -> None:
    """Hide memories (recoverable until ``now + days``); their vectors leave the index via tombstones."""
    for m in rows:
        m.deleted_at, m.purge_after, m.updated_at = now, now + timedelta(days=days), now
        m.index_state = "deleted"
        s.add(IndexTombstone(org_id=m.org_id, memory_id=m.id, created_at=now))


def restore_memories(s: Session, rows: list[Memory], *, now: datetime) -> None:
    """Undo a soft delete: visible again and pending re-indexing."""
    for m in rows:
        m.deleted_at = m.purge_after = None
        m.updated_at, m.index_state = now, "pending"


def purge_deleted_memories(s: Session, *, now: datetime, org_id: str | None = None) -> int:
    """Hard-delete soft-deleted memories whose recovery window has passed (tombstoned for the index)."""
    q = select(Memory.id, Memory.org_id).where(Memory.deleted_at.is_not(None), Memory.purge_after <= now)
    if org_id:
        q = q.where(Memory.org_id == org_id)
    rows = s.execute(q).all()
    for mid, oid in rows:
        s.add(IndexTombstone(org_id=oid, memory_id=mid, created_at=now))
    ids = [mid for mid, _ in rows]
    n = 0
    for i in range(0, len(ids), 500):
        n += rowcount(s.execute(delete(Memory).where(Memory.id.in_(ids[i:i + 500]))))
    return n
