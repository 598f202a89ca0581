"""Bulk structured writes: resolve identities, prefetch current values, apply many rows in one transaction.

Used by batch memorize, CRM backfills and ``Records.upsert_many``. Every row is validated before any SQL
is written, so a bad row is reported and skipped without aborting the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from memrelay.engine.core.errors import BadRequest, MemrelayError, NotFound
from memrelay.engine.core.properties_types import PropertySpec
from memrelay.engine.core.util import new_sortable_id, utcnow
from memrelay.engine.domain.coercion import coerce
from memrelay.engine.stores.collections import Collections
from memrelay.engine.stores.db.models import Record, RecordKey
from memrelay.engine.stores.identity import Identifiers, primary_key_for
from memrelay.engine.stores.properties import (
    PendingWrites,
    Provenance,
    apply_coerced,
    check_known,
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


def bulk_upsert(s: Session, collections: Collections, org_id: str, items: list[BulkItem]) -> list[Any]:
    """Upsert many records; returns per item ``(record, WriteResult)`` or the MemrelayError that rejected it."""
    out: list[Any] = [None] * len(items)
    types: dict[str, str | MemrelayError] = {}
    schemas: dict[str, dict[str, PropertySpec]] = {}
    prepared: list[_Prepared] = []
    for i, it in enumerate(items):
        try:
            prepared.append(_prepare(s, collections, org_id, i, it, types, schemas))
        except MemrelayError as exc:
            out[i] = exc
    with s.no_autoflush:
        records = _resolve(s, org_id, prepared)
    # create or attach keys, then apply values
    existing_keys = _existing_keys(s, [r.id for r in records.values() if isinstance(r, Record)])
    created: dict[tuple[str, str, str], Record] = {}
    now = utcnow()
    order: list[tuple[_Prepared, Record]] = []
    for p in prepared:
        rec = records.get(p.index)
        if rec is None:
            rec = next((created[(p.entity_type, k, v)] for k, v in p.keys if (p.entity_type, k, v) in created
                        and not (k == "website_url" and p.entity_type != "company")), None)
        if rec is None:
            rec = Record(id=new_sortable_id("rec"), org_id=org_id, entity_type=p.entity_type,
                         primary_key=primary_key_for(p.entity_type, p.keys), version=0, created_at=now, updated_at=now)
            s.add(rec)
            existing_keys[rec.id] = set()
        elif isinstance(rec, MemrelayError):
            out[p.index] = rec
            continue
        for k, v in p.keys:
            created.setdefault((p.entity_type, k, v), rec)
            have = existing_keys.setdefault(rec.id, set())
            if (k, v) not in have and not (k == "record_id" and v == rec.id):
                s.add(RecordKey(org_id=org_id, record_id=rec.id, key_name=k, key_value=v[:512]))
                have.add((k, v))
        order.append((p, rec))
    s.flush()
    # Records created in this chunk have no values yet: read current values only for pre-existing ones
    # (on a bulk load this skips the query entirely, and stale planner statistics cannot bite).
    existed = {r.id for r in records.values() if isinstance(r, Record)}
    current = load_current(s, [rec.id for _, rec in order if rec.id in existed])
    writes = PendingWrites()
    for p, rec in order:
        created_now = rec.version == 0
        res = apply_coerced(rec, p.coerced, current.setdefault(rec.id, {}), schemas[p.entity_type], p.prov, writes)
        out[p.index] = (rec, res, created_now)
    s.flush()
    writes.flush(s)
    return out


def _prepare(s: Session, collections: Collections, org_id: str, i: int, it: BulkItem,
             types: dict[str, str | MemrelayError], schemas: dict[str, dict[str, PropertySpec]]) -> _Prepared:
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
    schema = schemas[et]
    check_known(schema, list(it.properties), et)
    coerced = {n: coerce(schema[n], v) for n, v in it.properties.items()}
    return _Prepared(i, et, it.ids.keys(), coerced, it.prov)


def _resolve(s: Session, org_id: str, prepared: list[_Prepared]) -> dict[int, Record | MemrelayError | None]:
    """One query per key name for the whole chunk; most specific key wins, as in identity.resolve_record."""
    wanted = {(k, v) for p in prepared for k, v in p.keys if not (k == "record_id" and v.startswith("rec_"))}
    direct = {v for p in prepared for k, v in p.keys if k == "record_id" and v.startswith("rec_")}
    by_key: dict[tuple[str, str, str], Record] = {}
    by_name: dict[str, list[str]] = {}
    for name, value in wanted:
        by_name.setdefault(name, []).append(value)
    for name, values in by_name.items():  # key_value = ANY(...) per key name: an index range, not a filter
        for start in range(0, len(values), 500):
            q = (select(RecordKey.key_name, RecordKey.key_value, Record)
                 .join(Record, Record.id == RecordKey.record_id)
                 .where(RecordKey.org_id == org_id, Record.org_id == org_id, RecordKey.key_name == name,
                        RecordKey.key_value.in_(values[start:start + 500]))
                 .order_by(Record.created_at, Record.id))
            for key_name, value, rec in s.execute(q):
                by_key.setdefault((rec.entity_type, key_name, value), rec)
    by_id = {r.id: r for r in s.scalars(select(Record).where(Record.org_id == org_id, Record.id.in_(direct)))} \
        if direct else {}
    out: dict[int, Record | MemrelayError | None] = {}
    for p in prepared:
        found: Record | None = None
        for k, v in p.keys:
            if k == "website_url" and p.entity_type != "company":
                continue
            cand = by_id.get(v) if (k == "record_id" and v.startswith("rec_")) else by_key.get((p.entity_type, k, v))
            if cand is not None and cand.entity_type == p.entity_type:
                found = cand
                break
        if found is not None and found.deleted_at is not None:
            out[p.index] = NotFound("that record is deleted; cancel the deletion to write to it",
                                    details={"recordId": found.id})
        else:
            out[p.index] = found
    live = sorted({r.id for r in out.values() if isinstance(r, Record)})
    if live and s.bind is not None and s.bind.dialect.name == "postgresql":
        list(s.scalars(select(Record.id).where(Record.id.in_(live)).order_by(Record.id).with_for_update()))
    return out


def _existing_keys(s: Session, record_ids: list[str]) -> dict[str, set[tuple[str, str]]]:
    out: dict[str, set[tuple[str, str]]] = {}
    for start in range(0, len(record_ids), 900):
        for rid, n, v in s.execute(select(RecordKey.record_id, RecordKey.key_name, RecordKey.key_value).where(
                RecordKey.record_id.in_(record_ids[start:start + 900]))):
            out.setdefault(rid, set()).add((n, v))
    return out
