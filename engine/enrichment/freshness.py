"""Keeping inferred values current: a change feed over memories (by ``updated_at``) and property history (by
id) marks the inferred properties whose evidence changed as stale, and says when each is due again.

Marks are one row per (record, property), so repeated changes deduplicate; ``on_new_evidence`` pushes the due
time to ``debounce`` after the latest change (bounded by ``MAX_WAIT_FACTOR`` × debounce after the first),
``daily`` is due a day after the value was inferred, ``manual`` is never due (a run clears it). A change older
than the inferred value it would invalidate (read again after a refresh) marks nothing. A change on a company
also marks the records it is the linked company of, for their properties that read ``linkedCompany``
evidence. Times come from the caller (the service's clock), so policies are testable without waiting."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from memrelay.engine.core.properties_types import InferencePolicy, PropertySpec
from memrelay.engine.core.util import as_aware, utcnow
from memrelay.engine.enrichment.declarations import (
    declaration,
    depends_on_company,
    depends_on_memory,
    depends_on_property,
)
from memrelay.engine.enrichment.evidence import linked_to_companies
from memrelay.engine.stores.db.models import Memory, PropertyHistory, PropertyValue, Record
from memrelay.engine.stores.db.models_enrichment import EnrichmentCursor, EnrichmentStale
from memrelay.engine.stores.properties import INFERENCE_SOURCE

FEED_BATCH = 5000
MAX_WAIT_FACTOR = 10
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Change:
    record_id: str
    entity_type: str
    at: datetime
    reason: str
    memory_tags: tuple[str, ...] | None = None  # a memory change
    property_name: str | None = None  # a property change
    source: str | None = None
    via_company: str | None = None  # a change of this record's linked company (that company's id)


def read_feed(s: Session, org_id: str) -> tuple[list[Change], EnrichmentCursor]:
    """Changes since the org's cursor (at most ``FEED_BATCH`` of each kind) and the cursor, advanced."""
    cursor = s.get(EnrichmentCursor, org_id)
    if cursor is None:
        cursor = EnrichmentCursor(org_id=org_id, memory_ts=None, history_id=0, updated_at=utcnow())
        s.add(cursor)
    mq = select(Memory.id, Memory.record_id, Memory.entity_type, Memory.tags, Memory.updated_at).where(
        Memory.org_id == org_id)
    if cursor.memory_ts is not None:
        mq = mq.where(Memory.updated_at > cursor.memory_ts)
    changes: list[Change] = []
    for mid, rid, et, tags, updated in s.execute(mq.order_by(Memory.updated_at).limit(FEED_BATCH)):
        changes.append(Change(rid, et, as_aware(updated), f"memory {mid}", memory_tags=tuple(tags or ())))
        cursor.memory_ts = updated
    hq = (select(PropertyHistory.id, PropertyHistory.record_id, Record.entity_type, PropertyHistory.name,
                 PropertyHistory.source, PropertyHistory.created_at)
          .join(Record, Record.id == PropertyHistory.record_id)
          .where(PropertyHistory.org_id == org_id, PropertyHistory.id > cursor.history_id,
                 PropertyHistory.applied.is_(True)))
    for hid, rid, et, name, source, created in s.execute(hq.order_by(PropertyHistory.id).limit(FEED_BATCH)):
        changes.append(Change(rid, et, as_aware(created), f"property {name}", property_name=name, source=source))
        cursor.history_id = hid
    cursor.updated_at = utcnow()
    return changes, cursor


def dependents(change: Change, inferred: dict[str, PropertySpec]) -> list[PropertySpec]:
    """The inferred properties of the changed record's type whose evidence this change is."""
    if change.via_company is not None:
        return [spec for spec in inferred.values() if depends_on_company(spec)]
    if change.memory_tags is not None:
        return [spec for spec in inferred.values() if depends_on_memory(spec, change.memory_tags)]
    assert change.property_name is not None
    return [spec for spec in inferred.values() if depends_on_property(spec, change.property_name)]


def via_linked_company(s: Session, org_id: str, changes: list[Change],
                       inferred_by_type: dict[str, dict[str, PropertySpec]]) -> list[Change]:
    """Changes on companies, as changes of the records they are the linked company of (only for entity
    types with an inferred property reading ``linkedCompany`` evidence)."""
    types = sorted(et for et, specs in inferred_by_type.items()
                   if et != "company" and any(depends_on_company(spec) for spec in specs.values()))
    on_companies = [ch for ch in changes if ch.entity_type == "company" and ch.via_company is None]
    if not types or not on_companies:
        return []
    linked = linked_to_companies(s, org_id, sorted({ch.record_id for ch in on_companies}), types)
    return [Change(rid, et, ch.at, f"linked company {ch.record_id}: {ch.reason}", via_company=ch.record_id)
            for ch in on_companies for rid, et in linked.get(ch.record_id, [])]


def mark_stale(s: Session, org_id: str, changes: list[Change], inferred_by_type: dict[str, dict[str, PropertySpec]],
               *, debounce_s: float, now: datetime | None = None) -> int:
    """Mark the dependents of ``changes`` (and of their linked-company changes) stale, deduplicated per
    record and property; returns marks touched."""
    now = now or utcnow()
    wanted: dict[tuple[str, str], tuple[PropertySpec, datetime, list[str]]] = {}
    for ch in [*changes, *via_linked_company(s, org_id, changes, inferred_by_type)]:
        for spec in dependents(ch, inferred_by_type.get(ch.entity_type, {})):
            key = (ch.record_id, spec.propertyName)
            _, at, reasons = wanted.get(key, (spec, ch.at, []))
            wanted[key] = (spec, max(at, ch.at), [*reasons, ch.reason][-5:])
    if not wanted:
        return 0
    record_ids = sorted({rid for rid, _ in wanted})
    computed = {(rid, name): (_inferred_at(updated, src_ts), src) for rid, name, updated, src_ts, src in s.execute(
        select(PropertyValue.record_id, PropertyValue.name, PropertyValue.updated_at, PropertyValue.source_ts,
               PropertyValue.source)
        .where(PropertyValue.record_id.in_(record_ids), PropertyValue.name.in_({n for _, n in wanted})))}
    existing = {(m.record_id, m.property): m for m in s.scalars(select(EnrichmentStale).where(
        EnrichmentStale.record_id.in_(record_ids)))}
    touched = 0
    for key, (spec, at, reasons) in wanted.items():
        inferred_at, source = computed.get(key, (None, None))
        if source not in (None, INFERENCE_SOURCE):
            continue  # another source owns the value: an inference would not replace it
        if inferred_at is not None and at <= inferred_at:
            continue  # the value was computed after this change
        mark = existing.get(key)
        policy = declaration(spec).policy
        if mark is None:
            mark = EnrichmentStale(org_id=org_id, record_id=key[0], property=key[1], policy=policy.value,
                                   reasons=reasons, marks=1, marked_at=now, due_at=None)
            s.add(mark)
        else:
            mark.reasons = [*(mark.reasons or []), *reasons][-5:]
            mark.policy = policy.value
            mark.marks += 1
        mark.due_at = due_time(policy, as_aware(mark.marked_at) or now, inferred_at, debounce_s, now)
        touched += 1
    return touched


def _inferred_at(updated: datetime | None, source_ts: datetime | None) -> datetime | None:
    """When a value was last computed: a refresh that confirms it only moves ``source_ts``."""
    times = [as_aware(t) for t in (updated, source_ts) if t is not None]
    return max(times) if times else None


def due_time(policy: InferencePolicy, marked_at: datetime, inferred_at: datetime | None, debounce_s: float,
             now: datetime) -> datetime | None:
    """When a stale mark is re-run (see the module docstring)."""
    if policy == InferencePolicy.MANUAL:
        return None
    if policy == InferencePolicy.DAILY:
        return max(now, (inferred_at or now - DAY) + DAY)
    debounce = timedelta(seconds=debounce_s)
    return min(now + debounce, marked_at + debounce * MAX_WAIT_FACTOR)


def due_marks(s: Session, org_id: str, limit: int, now: datetime | None = None) -> list[EnrichmentStale]:
    """Marks whose time has come, oldest due first."""
    return list(s.scalars(select(EnrichmentStale).where(
        EnrichmentStale.org_id == org_id, EnrichmentStale.due_at.is_not(None),
        EnrichmentStale.due_at <= (now or utcnow())).order_by(EnrichmentStale.due_at).limit(limit)))


def postpone(s: Session, mark_ids: list[int], until: datetime) -> None:
    """Retry these marks no earlier than ``until`` (their refresh failed, e.g. budget or no model)."""
    for row in s.scalars(select(EnrichmentStale).where(EnrichmentStale.id.in_(mark_ids))):
        if row.due_at is not None:
            row.due_at = max(as_aware(row.due_at), until)


def next_due(s: Session, org_id: str) -> datetime | None:
    return as_aware(s.scalar(select(EnrichmentStale.due_at).where(
        EnrichmentStale.org_id == org_id, EnrichmentStale.due_at.is_not(None))
        .order_by(EnrichmentStale.due_at).limit(1)))


def clear_marks(s: Session, marks: list[tuple[int, int]]) -> None:
    """Delete the refreshed marks ``(id, marks count when read)``, unless marked again meanwhile."""
    for mark_id, seen in marks:
        row = s.get(EnrichmentStale, mark_id)
        if row is not None and row.marks == seen:
            s.delete(row)


def clear_for(s: Session, record_ids: list[str], name: str) -> None:
    """A run recomputed these records: their marks for ``name`` are settled."""
    for row in s.scalars(select(EnrichmentStale).where(EnrichmentStale.record_id.in_(record_ids),
                                                       EnrichmentStale.property == name)):
        s.delete(row)


def stale_summary(s: Session, org_id: str, now: datetime | None = None) -> dict[str, Any]:
    rows = s.execute(select(EnrichmentStale.property, EnrichmentStale.policy, EnrichmentStale.due_at)
                     .where(EnrichmentStale.org_id == org_id)).all()
    out: dict[str, Any] = {}
    for name, policy, due in rows:
        entry = out.setdefault(name, {"stale": 0, "due": 0, "policy": policy})
        entry["stale"] += 1
        entry["due"] += int(due is not None and as_aware(due) <= (now or utcnow()))
    return out
