"""Records: structured upsert, property updates, history, direct recall, deletion and erasure."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from memrelay.engine.core.errors import BadRequest, Conflict, NotFound
from memrelay.engine.core.util import as_aware, iso, new_sortable_id, utcnow
from memrelay.engine.stores.collections import Collections
from memrelay.engine.stores.db.database import Database, rowcount
from memrelay.engine.stores.db.models import (
    AuditEntry,
    EntityType,
    IndexTombstone,
    Memory,
    PropertyHistory,
    PropertyValue,
    Record,
    RecordKey,
)
from memrelay.engine.stores.identity import (
    Identifiers,
    attach_keys,
    claim_primary_key,
    keys_held,
    not_found,
    policy_of,
    primary_key_string,
    record_keys,
    require_record,
    resolve_live_or_deleted,
    resolve_record,
)
from memrelay.engine.stores.outbox import emit, record_created_payload
from memrelay.engine.stores.properties import (
    Provenance,
    WriteResult,
    lock_record,
    property_rows_to_dict,
    write_properties,
)
from memrelay.engine.stores.search import encode_token

MAX_HISTORY_PAGE = 500
MAX_HISTORY_OFFSET = 1_000_000


def record_summary(r: Record) -> dict[str, Any]:
    return {"recordId": r.id, "type": r.entity_type, "primaryKey": r.primary_key, "version": r.version,
            "createdAt": iso(r.created_at), "updatedAt": iso(r.updated_at),
            **({"deletedAt": iso(r.deleted_at), "purgeAfter": iso(r.purge_after)} if r.deleted_at else {})}


def insert_record(s: Session, org_id: str, entity_type: str, primary_key: str) -> Record | None:
    """Create a record (version 0) in one statement; None when a record with that primary key already exists
    (a concurrent writer created it first). No savepoint: the insert skips the conflict instead of failing."""
    now = utcnow()
    dialect = s.get_bind().dialect.name
    ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(Record).values(
        id=new_sortable_id("rec"), org_id=org_id, entity_type=entity_type, primary_key=primary_key, version=0,
        created_at=now, updated_at=now)
    stmt = ins.on_conflict_do_nothing(index_elements=["org_id", "entity_type", "primary_key"]).returning(Record)
    return s.scalars(stmt).one_or_none()


def _locked(s: Session, rec: Record) -> Record:
    """``rec`` (read in this transaction) locked for read-modify-write: PostgreSQL reads it again FOR UPDATE;
    a SQLite write transaction already holds the database's write lock (BEGIN IMMEDIATE), so the row read
    in it is current and nothing else can change it — no second read."""
    if s.get_bind().dialect.name == "sqlite":
        return rec
    return lock_record(s, rec.id)


def _wanted_type(ids: Identifiers, entity_type: str | None) -> str:
    """The entity type a write names (given, in the identifiers, or inferred from them); 400 without one."""
    ids.require_any()
    wanted = entity_type or ids.type or ids.inferred_type()
    if not wanted:
        raise BadRequest("'type' is required to create a record", details={"field": "type"})
    return wanted


class Records:
    """Org-scoped operations on records and their properties."""

    def __init__(self, db: Database, collections: Collections, *, soft_delete_days: int = 30):
        self.db = db
        self.collections = collections
        self.soft_delete_days = soft_delete_days

    # --- identity ----------------------------------------------------------------------------
    def get_or_create(self, s: Session, org_id: str, ids: Identifiers, entity_type: str | None = None) -> Record:
        """Find the record the identifiers name, or create it; attaches any new secondary keys."""
        wanted = _wanted_type(ids, entity_type)
        return self._find_or_create(s, org_id, ids, self.collections.active_entity_type_row(s, org_id, wanted))[0]

    def find_or_create(self, s: Session, org_id: str, ids: Identifiers, et_row: EntityType) -> tuple[Record, bool]:
        """:meth:`get_or_create` within the (validated, active) entity type ``et_row`` a caller already read
        (e.g. with its schema, :meth:`Collections.writable_type_and_schema`); also says whether the record was
        created here (then it has no property yet)."""
        return self._find_or_create(s, org_id, ids, et_row)

    def _find_or_create(self, s: Session, org_id: str, ids: Identifiers, et_row: EntityType) -> tuple[Record, bool]:
        et, policy, keys = et_row.name, policy_of(et_row), ids.keys()
        read: dict[tuple[str, str, str | None], list[Record]] = {}
        rec, deleted = resolve_live_or_deleted(s, org_id, ids, et, policy, read=read)
        if rec is not None:
            rec = _locked(s, rec)
            claim_primary_key(rec, keys, policy)
            attach_keys(s, rec, keys, held=keys_held(read, rec.id))
            return rec, False
        if deleted is not None:
            raise NotFound("that record is deleted; cancel the deletion to write to it",
                           details={"recordId": deleted.id, "purgeAfter": iso(deleted.purge_after)})
        identity = policy.identity_key(keys)
        if identity is None:
            raise not_found(s, org_id, ids, et)
        created = insert_record(s, org_id, et, primary_key_string(identity)[:512])
        if created is not None:
            attach_keys(s, created, keys, new_record=True)
            emit(s, org_id, "record.created", record_created_payload(created.id, et, created.primary_key, keys,
                                                                     created.created_at))
            return created, True
        winner = resolve_record(s, org_id, ids, et, policy=policy)  # a concurrent writer created it first
        if winner is None:
            raise Conflict("a record with that primary key was created concurrently and cannot be resolved",
                           details={"type": et, "primaryKey": primary_key_string(identity)[:512]})
        rec = lock_record(s, winner.id)
        claim_primary_key(rec, keys, policy)
        attach_keys(s, rec, keys)
        return rec, False

    # --- writes ------------------------------------------------------------------------------
    def upsert(self, org_id: str, ids: Identifiers, properties: dict[str, Any], prov: Provenance, *,
               expected_version: int | None = None) -> dict[str, Any]:
        """Structured write (no AI): create or find the record, write typed properties. The entity type, its
        key policy and its schema's revalidation stamp are read in one query."""
        with self.db.session() as s:
            et_row, schema = self.collections.writable_type_and_schema(s, org_id, _wanted_type(ids, None))
            rec, inserted = self._find_or_create(s, org_id, ids, et_row)
            created = rec.version == 0
            res = write_properties(s, rec, properties, schema, prov, expected_version=expected_version,
                                   new_record=inserted)
            return {**record_summary(rec), "created": created, **_result(res)}

    def upsert_many(self, org_id: str, items: list[tuple[Identifiers, dict[str, Any], Provenance]]) -> list[Any]:
        """Structured writes of many records in one transaction (see memrelay.engine.stores.bulk_write).

        Returns, per item, the result dict or the MemrelayError that rejected it; bad items never abort
        the others."""
        from memrelay.engine.stores.bulk_write import BulkItem, bulk_upsert

        with self.db.session() as s:
            raw = bulk_upsert(s, self.collections, org_id, [BulkItem(i, p, v) for i, p, v in items])
            return [r if isinstance(r, Exception) else
                    {**record_summary(r[0]), "created": r[2], **_result(r[1])} for r in raw]

    def update(self, org_id: str, ids: Identifiers, prov: Provenance, *, properties: dict[str, Any] | None = None,
               array_ops: dict[str, dict[str, Any]] | None = None,
               expected_version: int | None = None) -> dict[str, Any]:
        """Update properties of an existing record (404 if it does not exist)."""
        with self.db.session() as s:
            rec = lock_record(s, require_record(s, org_id, ids).id)
            attach_keys(s, rec, ids.keys())
            schema = self.collections.schema_for(s, org_id, rec.entity_type)
            res = write_properties(s, rec, properties or {}, schema, prov, expected_version=expected_version,
                                   array_ops=array_ops)
            return {**record_summary(rec), **_result(res), "results": property_results(res)}

    def merge(self, org_id: str, survivor: Identifiers, merged: list[Identifiers], prov: Provenance) -> dict[str, Any]:
        """Move merged records' keys, properties (newest source time wins), history and memories to the
        survivor, then delete the merged records."""
        with self.db.session() as s:
            keep = self.get_or_create(s, org_id, survivor)
            moved = {"records": 0, "keys": 0, "properties": 0, "memories": 0}
            current = {pv.name: pv for pv in s.scalars(select(PropertyValue).where(PropertyValue.record_id == keep.id))}
            for ids in merged:
                gone = resolve_record(s, org_id, ids, keep.entity_type, include_deleted=True)
                if gone is None or gone.id == keep.id:
                    continue
                locked = _locked_for_delete(s, [gone])
                if not locked:  # merged or erased meanwhile
                    continue
                gone = locked[0]
                moved["records"] += 1
                have = {(k.key_name, k.key_value) for k in s.scalars(select(RecordKey).where(RecordKey.record_id == keep.id))}
                for k in s.scalars(select(RecordKey).where(RecordKey.record_id == gone.id)).all():
                    if (k.key_name, k.key_value) in have:
                        s.delete(k)
                    else:
                        k.record_id = keep.id
                        moved["keys"] += 1
                for pv in s.scalars(select(PropertyValue).where(PropertyValue.record_id == gone.id)).all():
                    mine = current.get(pv.name)
                    if mine is None:
                        pv.record_id = keep.id
                        current[pv.name] = pv
                        moved["properties"] += 1
                    else:
                        if (as_aware(pv.source_ts) or utcnow()) > (as_aware(mine.source_ts) or utcnow()):
                            for col in ("value", "value_text", "value_num", "source", "source_event_id", "source_ts",
                                        "actor", "confidence"):
                                setattr(mine, col, getattr(pv, col))
                            mine.version += 1
                            moved["properties"] += 1
                        s.delete(pv)
                s.flush()
                s.execute(update(PropertyHistory).where(PropertyHistory.org_id == org_id,  # ix_prop_hist leads with it
                                                        PropertyHistory.record_id == gone.id).values(record_id=keep.id))
                moved["memories"] += rowcount(s.execute(update(Memory).where(Memory.org_id == org_id, Memory.record_id == gone.id).values(
                    record_id=keep.id, index_state="pending")))
                s.execute(delete(Record).where(Record.id == gone.id))
                emit(s, org_id, "memory.record.deleted", {"recordId": gone.id, "type": gone.entity_type,
                                                          "mergedInto": keep.id, "actor": prov.actor})
            keep.version += 1
            keep.updated_at = utcnow()
            return {"recordId": keep.id, "merged": moved}

    # --- reads -------------------------------------------------------------------------------
    def get(self, org_id: str, ids: Identifiers, entity_type: str | None = None) -> dict[str, Any]:
        """Direct recall: one record's keys and properties with provenance."""
        with self.db.read() as s:
            rec = require_record(s, org_id, ids, entity_type)
            return self.render(s, [rec])[0]

    def render(self, s: Session, records: list[Record]) -> list[dict[str, Any]]:
        ids = [r.id for r in records]
        keys = record_keys(s, ids)
        props: dict[str, list[PropertyValue]] = {rid: [] for rid in ids}
        if ids:
            for pv in s.scalars(select(PropertyValue).where(PropertyValue.record_id.in_(ids))):
                props[pv.record_id].append(pv)
        return [{**record_summary(r), "keys": keys[r.id], "properties": property_rows_to_dict(props[r.id])}
                for r in records]

    def documented_records(self, s: Session, org_id: str,
                           rendered: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
        """Personize's search ``records``: ``{recordId: {property: {value, collectionId, collectionName}}}``.

        A record's keys (email, website_url, custom keys) appear as properties too, unless a property of
        that name already holds a value."""
        sources: dict[str, dict[str, tuple[str, str]]] = {}
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for r in rendered:
            src = sources.get(r["type"])
            if src is None:
                src = sources[r["type"]] = self.collections.property_sources(s, org_id, r["type"])
            props: dict[str, dict[str, Any]] = {}
            for name, p in r["properties"].items():
                cid, cname = src.get(name, (None, None))
                props[name] = {"value": p["value"], "collectionId": cid, "collectionName": cname}
            for name, value in key_properties(r["keys"]).items():
                if props.get(name, {}).get("value") in (None, ""):
                    cid, cname = src.get(name, (None, None))
                    props[name] = {"value": value, "collectionId": cid, "collectionName": cname}
            out[r["recordId"]] = props
        return out

    def history(self, org_id: str, ids: Identifiers, *, property_name: str | None = None, page: int = 1,
                page_size: int = 50, offset: int | None = None) -> dict[str, Any]:
        """Every write attempt (applied or stale) of one property or all, newest first, paged.

        Answers Personize's ``entries`` (``entryId, propertyName, propertyValue, collectionId, updatedBy,
        createdAt, source``) with ``nextToken``, and memrelay's fuller ``items`` with page counts.
        ``offset`` (from a ``nextToken``) overrides ``page``."""
        if page < 1 or not 1 <= page_size <= MAX_HISTORY_PAGE:
            raise BadRequest(f"page must be >= 1 and pageSize (limit) between 1 and {MAX_HISTORY_PAGE}",
                             details={"max": MAX_HISTORY_PAGE})
        start = (page - 1) * page_size if offset is None else offset
        if start > MAX_HISTORY_OFFSET:
            raise BadRequest(f"history can be paged up to entry {MAX_HISTORY_OFFSET}",
                             details={"maxOffset": MAX_HISTORY_OFFSET})
        with self.db.read() as s:
            rec = require_record(s, org_id, ids)
            q = select(PropertyHistory).where(PropertyHistory.org_id == org_id, PropertyHistory.record_id == rec.id)
            if property_name:
                q = q.where(PropertyHistory.name == property_name)
            total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
            rows = list(s.scalars(q.order_by(PropertyHistory.id.desc()).offset(start).limit(page_size)))
            sources = self.collections.property_sources(s, org_id, rec.entity_type)
        items = [{"propertyName": h.name, "value": h.value, "previous": h.previous, "applied": h.applied,
                  "reason": h.reason, "source": h.source, "sourceEventId": h.source_event_id,
                  "sourceTimestamp": iso(h.source_ts), "actor": h.actor, "confidence": h.confidence,
                  "evidence": h.evidence, "recordVersion": h.record_version, "createdAt": iso(h.created_at)} for h in rows]
        entries = [{"entryId": str(h.id), "propertyName": h.name, "propertyValue": h.value,
                    "previousValue": h.previous, "collectionId": sources.get(h.name, (None, None))[0],
                    "collectionName": sources.get(h.name, (None, None))[1], "updatedBy": h.actor or h.source,
                    "createdAt": iso(h.created_at), "source": h.source, "applied": h.applied} for h in rows]
        more = start + len(rows) < total
        return {"recordId": rec.id, "entries": entries, "nextToken": encode_token(start + len(rows)) if more else None,
                "items": items, "page": start // page_size + 1, "pageSize": page_size, "total": total,
                "hasMore": more}

    # --- deletion ----------------------------------------------------------------------------
    def soft_delete(self, org_id: str, ids: Identifiers, *, actor: str | None = None) -> dict[str, Any]:
        """Hide a record everywhere at once; recoverable until ``purgeAfter``."""
        with self.db.session() as s:
            rec = lock_record(s, require_record(s, org_id, ids).id)
            now = utcnow()
            rec.deleted_at, rec.purge_after = now, now + timedelta(days=self.soft_delete_days)
            emit(s, org_id, "memory.record.deleted", {"recordId": rec.id, "type": rec.entity_type,
                                                      "purgeAfter": iso(rec.purge_after), "actor": actor})
            return record_summary(rec)

    def cancel_deletion(self, org_id: str, ids: Identifiers) -> dict[str, Any]:
        with self.db.session() as s:
            et = ids.type
            from memrelay.engine.stores.identity import find_records

            matches = [r for r in find_records(s, org_id, ids, entity_type=et, include_deleted=True)
                       if r.deleted_at is not None]
            if not matches:
                raise NotFound("no deleted record matches those identifiers")
            rec = lock_record(s, matches[0].id)
            rec.deleted_at = rec.purge_after = None
            emit(s, org_id, "memory.record.deletion_cancelled", {"recordId": rec.id, "type": rec.entity_type})
            return record_summary(rec)

    def erase(self, org_id: str, ids: Identifiers, *, actor: str | None = None) -> dict[str, Any]:
        """GDPR erasure: hard-delete the record, its keys, properties, history and memories now.

        The audit entry keeps only a hash of the record id and counts — no personal data."""
        from memrelay.engine.stores.identity import find_records

        with self.db.session() as s:
            ids.require_any()
            matches = find_records(s, org_id, ids, entity_type=ids.type, include_deleted=True)
            if not matches:
                raise NotFound("no record matches those identifiers")
            counts = {"records": 0, "properties": 0, "history": 0, "memories": 0, "keys": 0}
            for rec in _locked_for_delete(s, matches):
                counts["records"] += 1
                counts.update({k: counts[k] + v for k, v in self._hard_delete(s, rec).items()})
            subject = hashlib.sha256(",".join(sorted(r.id for r in matches)).encode()).hexdigest()[:32]
            s.add(AuditEntry(org_id=org_id, action="record.erased", subject=subject, actor=actor,
                             detail=counts, created_at=utcnow()))
            emit(s, org_id, "memory.record.erased", {"subject": subject, **counts})
        return {"erased": True, "subject": subject, **counts}

    def purge_expired(self, *, org_id: str | None = None) -> int:
        """Hard-delete soft-deleted records whose recovery window has passed (the purge job)."""
        n = 0
        with self.db.session() as s:
            q = select(Record).where(Record.deleted_at.is_not(None), Record.purge_after <= utcnow())
            if org_id:
                q = q.where(Record.org_id == org_id)
            for rec in s.scalars(q.order_by(Record.id).with_for_update()).all():
                self._hard_delete(s, rec)
                s.add(AuditEntry(org_id=rec.org_id, action="record.purged",
                                 subject=hashlib.sha256(rec.id.encode()).hexdigest()[:32], detail={},
                                 created_at=utcnow()))
                n += 1
        return n

    def _hard_delete(self, s: Session, rec: Record) -> dict[str, int]:
        mem_ids = list(s.scalars(select(Memory.id).where(Memory.org_id == rec.org_id, Memory.record_id == rec.id)))
        now = utcnow()
        for mid in mem_ids:
            s.add(IndexTombstone(org_id=rec.org_id, memory_id=mid, created_at=now))
        out = {
            "memories": rowcount(s.execute(delete(Memory).where(Memory.org_id == rec.org_id,
                                                       Memory.record_id == rec.id))),
            "history": rowcount(s.execute(delete(PropertyHistory).where(  # ix_prop_hist leads with org_id
                PropertyHistory.org_id == rec.org_id, PropertyHistory.record_id == rec.id))),
            "properties": rowcount(s.execute(delete(PropertyValue).where(PropertyValue.record_id == rec.id))),
            "keys": rowcount(s.execute(delete(RecordKey).where(RecordKey.record_id == rec.id))),
        }
        s.execute(delete(Record).where(Record.id == rec.id))
        return out


def _locked_for_delete(s: Session, records: list[Record]) -> list[Record]:
    """``records`` locked (``FOR UPDATE``, in id order) and read again, before their rows are deleted; those
    gone meanwhile are left out. A writer holding one finishes first and the deletes that follow see (and count)
    its rows."""
    if not records:
        return []
    q = (select(Record).where(Record.id.in_(sorted({r.id for r in records}))).order_by(Record.id)
         .with_for_update().execution_options(populate_existing=True))
    return list(s.scalars(q))


def key_properties(keys: dict[str, Any]) -> dict[str, Any]:
    """A rendered record's keys as ``{field: value}`` (``email``, ``website_url``, custom key names)."""
    out = {k: v for k, v in keys.items() if k in ("email", "website_url")}
    out.update(keys.get("customKeys") or {})
    return out


def crm_keys(record: dict[str, Any]) -> dict[str, Any]:
    """Personize's ``crmKeys`` entry of a rendered record: type, email, websiteUrl, first custom key."""
    keys = record["keys"]
    out: dict[str, Any] = {"type": record["type"]}
    if keys.get("email"):
        out["email"] = keys["email"]
    if keys.get("website_url"):
        out["websiteUrl"] = keys["website_url"]
    custom = keys.get("customKeys") or {}
    primary = str(record.get("primaryKey") or "")
    if primary.startswith("custom:"):
        name, _, value = primary.removeprefix("custom:").partition(":")
        custom = {name: value, **custom}
    for name, value in custom.items():
        out.update(customKeyName=name, customKeyValue=value)
        break
    return out


def property_results(res: WriteResult) -> list[dict[str, Any]]:
    """Per property, Personize's bulk-update result: ``{propertyName, previousValue, newValue, status}``.

    A write older (by source timestamp) than the stored value is ``failed`` with the reason; ``newValue``
    is then what stays stored."""
    out = []
    for name, after in res.after.items():
        item: dict[str, Any] = {"propertyName": name, "previousValue": res.before.get(name), "newValue": after,
                                "status": "updated", "changed": name in res.applied}
        if name in res.stale:
            item.update(status="failed", error="stale: the stored value has a newer source timestamp")
        out.append(item)
    return out


def _result(res: WriteResult) -> dict[str, Any]:
    return {"version": res.version, "updated": sorted(res.applied), "stale": res.stale, "unchanged": res.unchanged}
