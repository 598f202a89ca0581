"""Bulk structured writes: resolve identities, prefetch current values, apply many rows in one transaction.

Used by batch memorize, CRM backfills and ``Records.upsert_many``. Every row is validated before any SQL
is written, so a bad row is reported and skipped without aborting the others.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, select, text
from sqlalchemy.orm import Session

from memrelay.engine.core.errors import BadRequest, MemrelayError, NotFound
from memrelay.engine.core.properties_types import PropertySpec, PropertyType
from memrelay.engine.core.util import iso, new_sortable_id, utcnow
from memrelay.engine.domain.coercion import coerce
from memrelay.engine.stores.collections import Collections
from memrelay.engine.stores.db.models import Record, RecordKey
from memrelay.engine.stores.fast_insert import insert_rows, json_text
from memrelay.engine.stores.identity import (
    MAX_CANDIDATES,
    Candidates,
    Identifiers,
    KeyPolicy,
    choose,
    claim_primary_key,
    key_policy,
    primary_key_name,
    primary_key_string,
)
from memrelay.engine.stores.outbox import event_ids, record_created_payload
from memrelay.engine.stores.properties import (
    BatchStamp,
    PendingWrites,
    Provenance,
    apply_coerced,
    apply_new,
    check_known,
    driver_form,
    load_current,
)


@dataclass
class BulkItem:
    ids: Identifiers
    properties: dict[str, Any]
    prov: Provenance


@dataclass
class _Prepared:
    index: int
    entity_type: str
    keys: list[tuple[str, str]]
    coerced: dict[str, Any]
    prov: Provenance
    policy: KeyPolicy


def bulk_upsert(s: Session, collections: Collections, org_id: str, items: list[BulkItem]) -> list[Any]:
    """Upsert many records; returns per item ``(record, WriteResult)`` or the MemrelayError that rejected it."""
    with _gc_paused():
        return _bulk_upsert(s, collections, org_id, items)


_gc_lock = threading.Lock()
_gc_holders = 0
_gc_was_enabled = False


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a chunk's rows are built and written.

    A chunk allocates ~50 container objects per record (row tuples, payloads, results) and keeps them all
    alive until its statements run, so the collector's passes keep re-scanning a growing heap in which nothing
    is garbage (7-27 % of a SQLite bulk load, measured with batches alternating). Reference counting still
    frees everything; the collector resumes when the last concurrent bulk write of the process ends."""
    global _gc_holders, _gc_was_enabled
    with _gc_lock:
        if _gc_holders == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_holders += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_holders -= 1
            if _gc_holders == 0 and _gc_was_enabled:
                gc.enable()


def _bulk_upsert(s: Session, collections: Collections, org_id: str, items: list[BulkItem]) -> list[Any]:
    out: list[Any] = [None] * len(items)
    types: dict[str, str | MemrelayError] = {}
    schemas: dict[str, dict[str, PropertySpec]] = {}
    policies: dict[str, KeyPolicy] = {}
    options: dict[tuple[str, str, str], Any] = {}  # (type, property, raw value) -> its option, for this call
    prepared: list[_Prepared] = []
    for i, it in enumerate(items):
        try:
            prepared.append(_prepare(s, collections, org_id, i, it, types, schemas, policies, options))
        except MemrelayError as exc:
            out[i] = exc
    with s.no_autoflush:
        index = prefetch_keys(s, org_id, [k for p in prepared for k in p.keys])
    created: set[str] = set()
    new_records: list[Record] = []
    key_rows: list[dict[str, Any]] = []
    writes = PendingWrites()
    ids = event_ids()
    now = utcnow()
    stamp = BatchStamp(now, driver_form(s))  # the batch's time and conversions, shared by its new records
    now_d, now_iso = stamp.now_d, iso(now)
    order: list[tuple[_Prepared, Record]] = []
    with s.no_autoflush:
        for p in prepared:
            try:
                rec = index.resolve(p)
            except MemrelayError as exc:
                out[p.index] = exc
                continue
            if rec is None:
                identity = p.policy.identity_key(p.keys)
                if identity is None:
                    out[p.index] = NotFound("no record matches those identifiers",
                                            details={"tried": [{"key": k, "value": v} for k, v in p.keys]})
                    continue
                # a plain row, not an ORM object: inserted set-based once its version is known (below)
                rec = cast(Record, NewRecord(id=new_sortable_id("rec"), org_id=org_id, entity_type=p.entity_type,
                                             primary_key=primary_key_string(identity)[:512], created_at=now,
                                             updated_at=now))
                new_records.append(rec)
                created.add(rec.id)
                writes.outbox.append((next(ids), org_id, "record.created", json_text(record_created_payload(
                    rec.id, rec.entity_type, rec.primary_key, p.keys, now, created_iso=now_iso)), now_d))
            else:
                old = rec.primary_key
                claim_primary_key(rec, p.keys, p.policy)
                if rec.primary_key != old:
                    index.rekey(rec, old)
            for k, v in p.keys:  # the prefetch holds every record that has one of the chunk's keys
                if not index.has(k, v, rec) and not (k == "record_id" and v == rec.id):
                    key_rows.append({"org_id": org_id, "record_id": rec.id, "key_name": k, "key_value": v[:512]})
                    index.add(k, v, rec)
            order.append((p, rec))
    existed = {rec.id for _, rec in order if rec.id not in created}
    if existed and s.get_bind().dialect.name == "postgresql":  # SQLite: the write transaction excludes others
        order, key_rows = _lock_existing(s, order, existed, key_rows, out)
        existed = {rec.id for _, rec in order if rec.id not in created}
    s.flush()
    # Records created in this chunk have no values yet: read current values only for pre-existing ones
    # (on a bulk load this skips the query entirely, and stale planner statistics cannot bite).
    # Of those, only records with something to write, and only the properties written (apply_coerced reads no other).
    todo = [rec.id for p, rec in order if rec.id in existed and p.coerced]
    names = sorted({n for p, rec in order if rec.id in existed for n in p.coerced})
    current = load_current(s, todo, names) if todo else {}
    for p, rec in order:
        created_now = rec.version == 0
        cur, schema = current.setdefault(rec.id, {}), schemas[p.entity_type]
        if rec.id in created:  # nothing stored yet: every value applies (tuple rows, no per-row dicts)
            res = apply_new(rec, p.coerced, cur, schema, p.prov, writes, ids, stamp)
        else:
            res = apply_coerced(rec, p.coerced, cur, schema, p.prov, writes)
        out[p.index] = (rec, res, created_now)
    # New records go in with their final version (one bump per record per batch, whatever the chunk wrote),
    # then their keys, then the values, history and events: set-based, no per-row ORM object.
    insert_rows(s, RECORDS, [r.row() for r in cast(list[NewRecord], new_records)])
    insert_rows(s, RECORD_KEYS, key_rows)
    s.flush()  # version bumps of pre-existing records (ORM objects loaded by the prefetch)
    writes.flush(s)
    return out


def _lock_existing(s: Session, order: list[tuple[_Prepared, Record]], existed: set[str],
                   key_rows: list[dict[str, Any]], out: list[Any],
                   ) -> tuple[list[tuple[_Prepared, Record]], list[dict[str, Any]]]:
    """Lock the chunk's pre-existing records (``FOR UPDATE``, in id order) before anything is written to them.
    A record erased or merged away since the prefetch answers 404 for its items and gets no row, instead of the
    whole chunk failing on the foreign key."""
    with s.no_autoflush:  # a claimed primary key must not be flushed to a row that is gone
        locked = set(s.scalars(select(Record.id).where(Record.id.in_(sorted(existed))).order_by(Record.id)
                               .with_for_update()))
    gone = existed - locked
    if not gone:
        return order, key_rows
    for p, rec in order:
        if rec.id in gone:
            out[p.index] = NotFound("no record matches those identifiers (it was deleted meanwhile)",
                                    details={"tried": [{"key": k, "value": v} for k, v in p.keys]})
            if rec in s:
                s.expunge(rec)
    return ([(p, rec) for p, rec in order if rec.id not in gone],
            [k for k in key_rows if k["record_id"] not in gone])


RECORDS = cast(Table, Record.__table__)
RECORD_KEYS = cast(Table, RecordKey.__table__)


@dataclass
class NewRecord:
    """A record created by a bulk write: the attributes identity resolution, property writes and the
    response read from a :class:`Record`, without an ORM instance per row."""

    id: str
    org_id: str
    entity_type: str
    primary_key: str
    created_at: datetime
    updated_at: datetime
    version: int = 0
    deleted_at: datetime | None = None
    purge_after: datetime | None = None

    def row(self) -> dict[str, Any]:
        return {"id": self.id, "org_id": self.org_id, "entity_type": self.entity_type,
                "primary_key": self.primary_key, "version": self.version, "created_at": self.created_at,
                "updated_at": self.updated_at, "deleted_at": None, "purge_after": None}


def _prepare(s: Session, collections: Collections, org_id: str, i: int, it: BulkItem,
             types: dict[str, str | MemrelayError], schemas: dict[str, dict[str, PropertySpec]],
             policies: dict[str, KeyPolicy], options: dict[tuple[str, str, str], Any]) -> _Prepared:
    keys = it.ids.keys()  # normalised once per item (e-mail and URL normalisation is not free)
    if not keys:
        it.ids.require_any()
    wanted = it.ids.type or it.ids.inferred_type()
    if not wanted:
        raise BadRequest("'type' is required to create a record", details={"field": "type"})
    if wanted not in types:
        try:
            types[wanted] = collections.active_entity_type(s, org_id, wanted)
        except MemrelayError as exc:
            types[wanted] = exc
    et = types[wanted]
    if isinstance(et, MemrelayError):
        raise et
    if et not in schemas:
        schemas[et] = collections.schema_for(s, org_id, et)
        policies[et] = key_policy(s, org_id, et)
    schema = schemas[et]
    check_known(schema, list(it.properties), et)
    coerced: dict[str, Any] = {}
    for n, v in it.properties.items():
        spec = schema[n]
        if spec.type == PropertyType.OPTIONS and isinstance(v, str):  # few distinct values, many rows
            memo = (et, n, v)
            if memo not in options:
                options[memo] = coerce(spec, v)  # raises for a value that is not an option: never memoised
            coerced[n] = options[memo]
        else:
            coerced[n] = coerce(spec, v)
    return _Prepared(i, et, keys, coerced, it.prov, policies[et])


class _ChunkIndex:
    """The chunk's candidate records by key (prefetched, plus records created or keyed in this chunk)."""

    def __init__(self) -> None:
        # (key name, value) -> entity type -> name of the record's primary key -> {record id: record}
        self.by_key: dict[tuple[str, str], dict[str, dict[str, dict[str, Record]]]] = {}
        self.by_id: dict[str, Record] = {}
        self._ids: set[tuple[str, str, str]] = set()

    def add(self, name: str, value: str, rec: Record) -> None:
        if not self.has(name, value, rec):
            self._ids.add((name, value, rec.id))
            (self.by_key.setdefault((name, value), {}).setdefault(rec.entity_type, {})
             .setdefault(primary_key_name(rec.primary_key), {})[rec.id]) = rec

    def has(self, name: str, value: str, rec: Record) -> bool:
        return (name, value, rec.id) in self._ids

    def rekey(self, rec: Record, old_primary_key: str) -> None:
        """Re-file a record whose primary key was just claimed."""
        for (name, value, rid) in [t for t in self._ids if t[2] == rec.id]:
            groups = self.by_key[(name, value)][rec.entity_type]
            groups.get(primary_key_name(old_primary_key), {}).pop(rid, None)
            groups.setdefault(primary_key_name(rec.primary_key), {})[rid] = rec

    def candidates(self, entity_type: str, *, live: bool) -> Candidates:
        """:func:`memrelay.engine.stores.identity.choose`'s lookup of the records of ``entity_type`` holding a key,
        answered from the prefetched records (``live``: deleted ones left out)."""
        def lookup(n: str, v: str, exclude: str | None) -> list[Record]:
            out: list[Record] = []
            for pk_name, recs in self.by_key.get((n, v), {}).get(entity_type, {}).items():
                if pk_name == exclude:
                    continue
                out += [r for r in recs.values() if r.deleted_at is None or not live]
                if len(out) > MAX_CANDIDATES:
                    break
            return out[:MAX_CANDIDATES + 1]
        return lookup

    def resolve(self, p: _Prepared) -> Record | None:
        """The identity rules of :func:`memrelay.engine.stores.identity.choose`; deleted records answer 404."""
        def by_id(live: bool) -> Any:
            def get(rid: str) -> Record | None:
                r = self.by_id.get(rid)
                ok = r is not None and r.entity_type == p.entity_type and (r.deleted_at is None or not live)
                return r if ok else None
            return get

        rec = choose(p.keys, p.policy, self.candidates(p.entity_type, live=True), by_id(True))
        if rec is None:
            gone = choose(p.keys, p.policy, self.candidates(p.entity_type, live=False), by_id(False))
            if gone is not None:
                raise NotFound("that record is deleted; cancel the deletion to write to it",
                               details={"recordId": gone.id})
        return rec


def prefetch_keys(s: Session, org_id: str, keys: list[tuple[str, str]]) -> _ChunkIndex:
    """The records (live and deleted, of any type) holding any of ``keys``, and those named by a record id: one
    query per key name (an index range per name, not a filter); resolve against them with
    :meth:`_ChunkIndex.candidates` instead of one lookup per request."""
    index = _ChunkIndex()
    wanted = {(k, v) for k, v in keys if not (k == "record_id" and v.startswith("rec_"))}
    direct = {v for k, v in keys if k == "record_id" and v.startswith("rec_")}
    by_name: dict[str, list[str]] = {}
    for name, value in wanted:
        by_name.setdefault(name, []).append(value)
    postgres = s.get_bind().dialect.name == "postgresql"
    for name, values in by_name.items():
        values.sort()  # a deterministic statement, and index lookups in key order
        for start in range(0, len(values), 500):
            chunk = values[start:start + 500]
            q = (_keyed_records_pg(org_id, name, chunk) if postgres else
                 select(RecordKey.key_name, RecordKey.key_value, Record)
                 .join(Record, Record.id == RecordKey.record_id)
                 .where(RecordKey.org_id == org_id, Record.org_id == org_id, RecordKey.key_name == name,
                        RecordKey.key_value.in_(chunk))
                 .order_by(Record.created_at, Record.id))
            for key_name, value, rec in s.execute(q):
                index.add(key_name, value, rec)
    if direct:
        index.by_id = {r.id: r for r in s.scalars(select(Record).where(Record.org_id == org_id,
                                                                        Record.id.in_(direct)))}
    return index


_KEYED_RECORDS_PG = text(
    "SELECT k.key_name, k.key_value, r.id, r.org_id, r.entity_type, r.primary_key, r.version, r.created_at,"
    " r.updated_at, r.deleted_at, r.purge_after"
    " FROM unnest(CAST(:key_values AS text[])) AS v(key_value)"
    " CROSS JOIN LATERAL (SELECT rk.key_name, rk.key_value, rk.record_id FROM record_keys rk"
    "  WHERE rk.org_id = :org_id AND rk.key_name = :key_name AND rk.key_value = v.key_value OFFSET 0) AS k"
    " CROSS JOIN LATERAL (SELECT * FROM records WHERE records.id = k.record_id OFFSET 0) AS r"
    " WHERE r.org_id = :org_id"
    " ORDER BY r.created_at, r.id"
).columns(RecordKey.key_name, RecordKey.key_value, *RECORDS.c)


def _keyed_records_pg(org_id: str, name: str, values: list[str]) -> Any:
    """PostgreSQL: the records holding key ``name`` with one of ``values``, one index lookup per value.

    ``key_value IN (...)`` is the same question, but while ``record_keys`` has no statistics yet (a table
    filled by the bulk load itself, before autovacuum analyses it) the planner estimates one row per
    (org, key name) and checks the list as a filter over every key of that name in the org: each chunk
    then scans all the org's keys, and a load slows down as it grows. Joined laterally, each value is an
    index lookup on ``ix_record_keys_lookup``, then one primary-key lookup per key found, whatever the statistics
    say: each ``OFFSET 0`` keeps the planner from flattening its lateral subquery and reordering the joins (it
    otherwise scans every key, or every record, of the org once per value, estimating one row for the org), and
    the record's org is checked outside the fence so that the only index the inner lookup can use is the primary
    key (offered ``org_id`` too, it read the org's records through ``ix_records_org_type_deleted``)."""
    stmt = _KEYED_RECORDS_PG.bindparams(key_values=values, org_id=org_id, key_name=name)
    return select(RecordKey.key_name, RecordKey.key_value, Record).from_statement(stmt)
