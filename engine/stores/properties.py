"""Writing property values: validation, replace/append, array ops, stale-source protection, history."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from operator import itemgetter
from typing import Any, cast

import orjson
from sqlalchemy import Table, bindparam, select
from sqlalchemy.orm import Session

from memrelay.engine.core.errors import Conflict, ValidationFailed
from memrelay.engine.core.properties_types import PropertySpec, PropertyType, UpdateMode
from memrelay.engine.core.util import as_aware, iso, utcnow
from memrelay.engine.domain.coercion import coerce, search_columns
from memrelay.engine.stores.db.models import OutboxEvent, PropertyHistory, PropertyValue, Record
from memrelay.engine.stores.fast_insert import (
    DriverForm,
    driver_tuples,
    insert_driver_tuples,
    insert_rows,
    json_text,
)
from memrelay.engine.stores.outbox import OUTBOX_COLUMNS, outbox_row


@dataclass(frozen=True)
class Provenance:
    """Where a value came from. ``source_ts`` is the source's own time (defaults to now)."""

    source: str = "api"
    source_event_id: str | None = None
    source_ts: datetime | None = None
    actor: str | None = None
    confidence: float | None = None
    evidence: dict[str, Any] | None = None
    """What an inferred value rests on (memory/property ids, producer, superseded evidence); kept in history."""


INFERENCE_SOURCE = "inference"
"""``source`` of values computed by ``memrelay.engine.enrichment`` (never overwrites another source's value)."""


_source_clock_skew = timedelta(seconds=300)


def configure_source_clock_skew(seconds: float) -> None:
    """Set how far in the future a source timestamp may be (``MEMRELAY_SOURCE_CLOCK_SKEW_S``; per process)."""
    global _source_clock_skew
    _source_clock_skew = timedelta(seconds=seconds)


def bounded_source_ts(source_ts: datetime | None, now: datetime) -> datetime:
    """The time a write counts as: the source's own time, but one more than the allowed clock skew in the
    future is clamped to ``now`` (so a bogus ``9999-12-31`` can never make later writes stale forever)."""
    ts = as_aware(source_ts)
    if ts is None or ts > now + _source_clock_skew:
        return now
    return ts


@dataclass
class WriteResult:
    """What a write did: applied changes (``{name: {value, previous}}``), stale and unchanged names, and per
    property the value before the write and the value stored after it (``before``/``after``)."""

    applied: dict[str, Any] = field(default_factory=dict)
    stale: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    version: int = 0
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)


def check_known(schema: dict[str, PropertySpec], names: list[str], entity_type: str) -> None:
    unknown = [n for n in names if n not in schema]
    if unknown:
        raise ValidationFailed(f"unknown propert{'y' if len(unknown) == 1 else 'ies'} for {entity_type}: "
                               + ", ".join(unknown), details={"unknown": unknown, "known": sorted(schema)})


def apply_array_op(spec: PropertySpec, current: Any, op: dict[str, Any]) -> list[Any]:
    """arrayPush {items, unique}, arrayRemove {items}, arrayPatch {match, set} on an array value."""
    if spec.type != PropertyType.ARRAY:
        raise ValidationFailed(f"property {spec.propertyName!r} is not an array", details={"property": spec.propertyName})
    items = list(current or [])
    if "arrayPush" in op:
        push = op["arrayPush"] or {}
        new = push.get("items", [])
        if not isinstance(new, list):
            raise ValidationFailed("arrayPush.items must be an array")
        for it in new:
            if not push.get("unique", False) or it not in items:
                items.append(it)
    elif "arrayRemove" in op:
        rem = (op["arrayRemove"] or {}).get("items", [])
        items = [it for it in items if it not in rem]
    elif "arrayPatch" in op:
        patch = op["arrayPatch"] or {}
        match, setv = patch.get("match") or {}, patch.get("set") or {}
        if not isinstance(match, dict) or not isinstance(setv, dict) or not match:
            raise ValidationFailed("arrayPatch needs object 'match' and 'set'")
        items = [({**it, **setv} if isinstance(it, dict) and all(it.get(k) == v for k, v in match.items()) else it)
                 for it in items]
    return items


def lock_record(s: Session, record_id: str) -> Record:
    """Row lock for read-modify-write (PostgreSQL FOR UPDATE; SQLite already holds the write lock)."""
    return s.scalars(select(Record).where(Record.id == record_id).with_for_update()).one()


def lock_records(s: Session, record_ids: set[str]) -> None:
    """Row locks on several records, taken in id order (so two writers locking overlapping sets cannot deadlock);
    a record gone meanwhile is skipped."""
    ordered = sorted(record_ids)
    for i in range(0, len(ordered), 500):
        s.execute(select(Record.id).where(Record.id.in_(ordered[i:i + 500])).order_by(Record.id).with_for_update())


@dataclass
class CurrentValue:
    """The stored state of one property that a write needs (read with Core, not the ORM)."""

    id: int | None
    value: Any
    source_ts: datetime | None
    version: int


VALUE_COLUMNS = ("org_id", "record_id", "entity_type", "name", "version", "value", "value_text", "value_num",
                 "source", "source_event_id", "source_ts", "actor", "confidence", "updated_at")
HISTORY_COLUMNS = ("org_id", "record_id", "name", "value", "previous", "applied", "reason", "source",
                   "source_event_id", "source_ts", "actor", "confidence", "evidence", "record_version", "created_at")
"""Column order of the tuple rows :func:`apply_new` queues in ``PendingWrites.inserts`` / ``history``."""


@dataclass
class PendingWrites:
    """Rows a write produces; flushed set-based (one executemany / COPY per run of rows) so bulk paths stay fast.

    Each list takes dicts keyed by column (any caller) or tuples in :data:`VALUE_COLUMNS` /
    :data:`HISTORY_COLUMNS` / :data:`OUTBOX_COLUMNS` order already in the driver's form (the new-record fast
    path :func:`apply_new`: JSON as text, timestamps and booleans converted by a
    :class:`~memrelay.engine.stores.fast_insert.DriverForm`); rows are inserted in the order they were queued,
    so ids keep the order of the writes."""

    inserts: list[Any] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    touches: list[dict[str, Any]] = field(default_factory=list)
    history: list[Any] = field(default_factory=list)
    outbox: list[Any] = field(default_factory=list)

    def flush(self, s: Session) -> None:
        _insert_in_order(s, PROPERTY_VALUES, VALUE_COLUMNS, self.inserts)  # executemany / COPY (fast_insert)
        if self.updates:
            s.execute(PROPERTY_VALUES.update().where(PROPERTY_VALUES.c.id == bindparam("_id")), self.updates)
        if self.touches:
            s.execute(PROPERTY_VALUES.update().where(PROPERTY_VALUES.c.id == bindparam("_id")), self.touches)
        _insert_in_order(s, PROPERTY_HISTORY, HISTORY_COLUMNS, self.history)
        _insert_in_order(s, OUTBOX, OUTBOX_COLUMNS, self.outbox)
        self.inserts, self.updates, self.touches, self.history, self.outbox = [], [], [], [], []


PROPERTY_VALUES = cast(Table, PropertyValue.__table__)
PROPERTY_HISTORY = cast(Table, PropertyHistory.__table__)
OUTBOX = cast(Table, OutboxEvent.__table__)


def driver_form(s: Session) -> DriverForm:
    """The conversions :func:`apply_new` needs on ``s`` (the timestamp and boolean columns of the tables it fills)."""
    return DriverForm.of(s, PROPERTY_VALUES.c.updated_at.type, PROPERTY_HISTORY.c.applied.type)


def _insert_in_order(s: Session, table: Table, columns: tuple[str, ...], rows: list[Any]) -> None:
    """Insert queued rows (dicts, or driver-form tuples in ``columns`` order) in order: dicts holding exactly
    ``columns`` are converted to driver tuples too (together, a column at a time), so a batch mixing new and
    existing records is still one statement per table."""
    if not rows:
        return
    if set(map(type, rows)) == {tuple}:  # the bulk load's case: one statement, no per-row Python
        insert_driver_tuples(s, table, columns, rows)
        return
    dicts = [i for i, r in enumerate(rows) if type(r) is not tuple]
    get, wanted = itemgetter(*columns), set(columns)
    plain = [i for i in dicts if rows[i].keys() == wanted]
    if plain:
        rows = list(rows)
        for i, t in zip(plain, driver_tuples(s, table, columns, [get(rows[i]) for i in plain]), strict=True):
            rows[i] = t
    start = 0
    while start < len(rows):
        tuples = isinstance(rows[start], tuple)
        end = start + 1
        while end < len(rows) and isinstance(rows[end], tuple) == tuples:
            end += 1
        run = rows[start:end] if start or end < len(rows) else rows
        if tuples:
            insert_driver_tuples(s, table, columns, run)
        else:
            insert_rows(s, table, run)
        start = end


def load_current(s: Session, record_ids: list[str], names: list[str] | None = None) -> dict[str, dict[str, CurrentValue]]:
    """Current values of many records (optionally only some properties), keyed by record then name."""
    out: dict[str, dict[str, CurrentValue]] = {}
    t = PropertyValue.__table__
    ids = sorted(set(record_ids))
    for start in range(0, len(ids), 900):
        q = select(t.c.id, t.c.record_id, t.c.name, t.c.value, t.c.source_ts, t.c.version).where(
            t.c.record_id.in_(ids[start:start + 900]))
        if names is not None:
            q = q.where(t.c.name.in_(names))
        for pid, rid, name, value, ts, version in s.execute(q):
            out.setdefault(rid, {})[name] = CurrentValue(pid, value, ts, version)
    return out


def write_properties(s: Session, record: Record, values: dict[str, Any], schema: dict[str, PropertySpec],
                     prov: Provenance, *, expected_version: int | None = None,
                     array_ops: dict[str, dict[str, Any]] | None = None, emit_events: bool = True,
                     new_record: bool = False) -> WriteResult:
    """Validate and write ``values`` (and array ops) on one locked record in the caller's transaction.
    ``new_record``: created in this transaction, so it has no stored value to read."""
    check_known(schema, list(values) + list(array_ops or {}), record.entity_type)
    if expected_version is not None and record.version != expected_version:
        raise Conflict(f"record version is {record.version}, not {expected_version}",
                       details={"currentVersion": record.version, "expectedVersion": expected_version})
    coerced = {name: coerce(schema[name], v) for name, v in values.items()}
    names = list(coerced) + [n for n in (array_ops or {}) if n not in coerced]
    current = load_current(s, [record.id], names).get(record.id, {}) if names and not new_record else {}
    writes = PendingWrites()
    result = apply_coerced(record, coerced, current, schema, prov, writes, array_ops=array_ops,
                           emit_events=emit_events)
    s.flush()
    writes.flush(s)
    return result


def apply_coerced(record: Record, coerced: dict[str, Any], current: dict[str, CurrentValue],
                  schema: dict[str, PropertySpec], prov: Provenance, writes: PendingWrites, *,
                  array_ops: dict[str, dict[str, Any]] | None = None, emit_events: bool = True) -> WriteResult:
    """Decide what validated values do to one record and queue the rows (no I/O; shared by bulk paths)."""
    now = utcnow()
    src_ts = bounded_source_ts(prov.source_ts, now)
    names = list(coerced) + [n for n in (array_ops or {}) if n not in coerced]
    result = WriteResult()
    bumped = False
    for name in names:
        spec = schema[name]
        cur = current.get(name)
        old = cur.value if cur else None
        if name in coerced:
            new = coerced[name]
            if spec.updateMode == UpdateMode.APPEND and cur is not None and old is not None:
                new = _append(spec, old, new)
        else:
            new = old
        if array_ops and name in array_ops:
            new = apply_array_op(spec, new, array_ops[name])
        stored_ts = as_aware(cur.source_ts) if cur else None
        result.before[name] = result.after[name] = old
        if stored_ts is not None and src_ts < stored_ts:
            writes.history.append(_history(record, name, new, old, prov, src_ts, applied=False,
                                           reason="older_source_timestamp"))
            result.stale.append(name)
            continue
        if cur is not None and new == old:
            result.unchanged.append(name)
            if cur.id is not None and (stored_ts is None or src_ts > stored_ts):
                writes.touches.append({"_id": cur.id, "source_ts": src_ts})
            continue
        if not bumped:
            record.version += 1
            record.updated_at = now
            bumped = True
        text, num = search_columns(spec, new)
        row = {"value": new, "value_text": text, "value_num": num, "source": prov.source,
               "source_event_id": prov.source_event_id, "source_ts": src_ts, "actor": prov.actor,
               "confidence": prov.confidence, "updated_at": now}
        if cur is None or cur.id is None:
            version = (cur.version if cur else 0) + 1
            if cur is not None:  # inserted earlier in this same batch: replace the queued insert
                writes.inserts = [r for r in writes.inserts if not _is_value_of(r, record.id, name)]
            writes.inserts.append({"org_id": record.org_id, "record_id": record.id,
                                   "entity_type": record.entity_type, "name": name,
                                   "version": version, **row})
            current[name] = CurrentValue(None, new, src_ts, version)
        else:
            cur.version += 1
            writes.updates.append({"_id": cur.id, "version": cur.version, **row})
            cur.value, cur.source_ts = new, src_ts
        writes.history.append(_history(record, name, new, old, prov, src_ts, applied=True, version=record.version))
        result.applied[name] = {"value": new, "previous": old}
        result.after[name] = new
    result.version = record.version
    if emit_events and result.applied:
        writes.outbox.extend(_events(record, result, prov))
    return result


class BatchStamp:
    """What the new records of one bulk batch share, computed once per batch instead of once per record: the
    batch's time (every new record's ``created_at``/``updated_at``, as one transaction's rows) and its driver
    forms."""

    __slots__ = ("now", "form", "now_d", "applied_d")

    def __init__(self, now: datetime, form: DriverForm) -> None:
        self.now, self.form = now, form
        self.now_d, self.applied_d = form.datetime(now), form.boolean(True)


def apply_new(record: Record, coerced: dict[str, Any], current: dict[str, CurrentValue],
              schema: dict[str, PropertySpec], prov: Provenance, writes: PendingWrites,
              event_ids: Iterator[str], stamp: BatchStamp) -> WriteResult:
    """:func:`apply_coerced` for a record that has no stored or queued value yet (created by this batch):
    every value is applied, the record's version goes up once, and the rows are queued as driver-form tuples
    (``stamp``: the batch's time and conversions; no per-row dict; each value JSON-encoded once, its events'
    payloads spliced from that text). Same rows, same result, same events as :func:`apply_coerced`."""
    if current or not coerced:
        return apply_coerced(record, coerced, current, schema, prov, writes)
    src_ts = bounded_source_ts(prov.source_ts, stamp.now)  # each item has its own provenance (event id, time)
    ts_d, evidence = stamp.form.datetime(src_ts), json_text(prov.evidence)
    now_d, applied_d = stamp.now_d, stamp.applied_d
    record.version += 1
    record.updated_at = stamp.now
    version = record.version
    org, rid, et = record.org_id, record.id, record.entity_type
    source, event_id, actor, confidence = prov.source, prov.source_event_id, prov.actor, prov.confidence
    values, history = writes.inserts, writes.history
    applied: dict[str, Any] = {}
    texts: dict[str, str | None] = {}
    text_type = PropertyType.TEXT
    for name, new in coerced.items():
        text: str | None
        num: float | None
        spec = schema[name]
        if type(new) is str and spec.type == text_type:  # search_columns of a text, inline
            text, num = new.casefold()[:512], None
        else:
            text, num = search_columns(spec, new)
        j = texts[name] = _json_or_none(new)
        value = json_text(new) if j is None else j
        values.append((org, rid, et, name, 1, value, text, num, source, event_id, ts_d, actor, confidence, now_d))
        history.append((org, rid, name, value, "null", applied_d, None, source, event_id, ts_d, actor, confidence,
                        evidence, version, now_d))
        current[name] = CurrentValue(None, new, src_ts, 1)
        applied[name] = {"value": new, "previous": None}
    result = WriteResult(applied=applied, version=version, before=dict.fromkeys(coerced), after=dict(coerced))
    base = {"recordId": rid, "type": et, "version": version, "source": source, "sourceEventId": event_id,
            "changedProperties": list(applied)}
    kind = "memory.property.updated"
    head = _json_or_none(base)
    if head is None or None in texts.values():  # something orjson refuses: whole payloads, as emit() would
        payloads = [json_text({**base, "propertyName": name, **change}) for name, change in applied.items()]
        bulk = json_text({**base, "properties": applied})
    else:  # orjson's own output for {**base, "propertyName": name, "value": v, "previous": None}, spliced
        head = head[:-1]
        pairs = [(_json_key(name), j) for name, j in texts.items()]
        payloads = [f'{head},"propertyName":{k},"value":{j},"previous":null}}' for k, j in pairs]
        bulk = head + ',"properties":{' + ",".join([f'{k}:{{"value":{j},"previous":null}}' for k, j in pairs]) + "}}"
    outbox = writes.outbox
    for payload in payloads:
        outbox.append((next(event_ids), org, kind, payload, now_d))
    if len(applied) > 1:
        outbox.append((next(event_ids), org, "memory.properties.bulk_updated", bulk, now_d))
    return result


def _json_or_none(value: Any) -> str | None:
    """orjson's text of ``value`` (what :func:`json_text` stores), or None when orjson refuses it."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return None


@lru_cache(maxsize=4096)
def _json_key(name: str) -> str:
    return orjson.dumps(name).decode()


def _is_value_of(row: Any, record_id: str, name: str) -> bool:
    if isinstance(row, tuple):
        return bool(row[1] == record_id and row[3] == name)
    return bool(row["record_id"] == record_id and row["name"] == name)


def _append(spec: PropertySpec, old: Any, new: Any) -> Any:
    if spec.type == PropertyType.ARRAY:
        merged = list(old)
        merged.extend(v for v in new if v not in merged)
        return merged
    if spec.type == PropertyType.TEXT and isinstance(old, str) and new not in old:
        return f"{old}\n{new}"
    return new


def _history(record: Record, name: str, value: Any, previous: Any, prov: Provenance, src_ts: datetime, *,
             applied: bool, reason: str | None = None, version: int | None = None) -> dict[str, Any]:
    return {"org_id": record.org_id, "record_id": record.id, "name": name, "value": value, "previous": previous,
            "applied": applied, "reason": reason, "source": prov.source, "source_event_id": prov.source_event_id,
            "source_ts": src_ts, "actor": prov.actor, "confidence": prov.confidence,
            "evidence": prov.evidence, "record_version": version if version is not None else record.version, "created_at": utcnow()}


def _events(record: Record, result: WriteResult, prov: Provenance) -> list[dict[str, Any]]:
    """One ``memory.property.updated`` per changed property (whatever the write's size), plus one
    ``memory.properties.bulk_updated`` carrying every change when the write changed several."""
    base = {"recordId": record.id, "type": record.entity_type, "version": result.version, "source": prov.source,
            "sourceEventId": prov.source_event_id, "changedProperties": list(result.applied)}
    rows = [outbox_row(record.org_id, "memory.property.updated", {**base, "propertyName": name, **change})
            for name, change in result.applied.items()]
    if len(result.applied) > 1:
        rows.append(outbox_row(record.org_id, "memory.properties.bulk_updated", {**base, "properties": result.applied}))
    return rows


def property_rows_to_dict(rows: list[PropertyValue]) -> dict[str, dict[str, Any]]:
    """Current values with provenance, keyed by property name."""
    return {pv.name: {"value": pv.value, "version": pv.version, "source": pv.source,
                      "sourceEventId": pv.source_event_id, "sourceTimestamp": iso(pv.source_ts),
                      "actor": pv.actor, "confidence": pv.confidence, "updatedAt": iso(pv.updated_at)}
            for pv in rows}
