"""Typed mutation events, written into the outbox in the caller's transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from memrelay.engine.core.util import iso, new_id, utcnow
from memrelay.engine.stores.db.models import OutboxEvent

EVENT_TYPES = (
    "record.created",
    "memory.property.updated",
    "memory.properties.bulk_updated",
    "memory.updated",
    "memory.deleted",
    "memory.record.deleted",
    "memory.record.deletion_cancelled",
    "memory.record.erased",
    "collection.updated",
    "event.processed",
    "event.failed",
    "generation.completed",
    "batch.completed",
)


def outbox_row(org_id: str, event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
    """An outbox row as plain values (for executemany inserts)."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown outbox event type {event_type!r}")
    return {"public_id": new_id("evt"), "org_id": org_id, "event_type": event_type, "payload": payload,
            "created_at": utcnow()}


def record_created_payload(record_id: str, entity_type: str, primary_key: str, keys: list[tuple[str, str]],
                           created_at: Any) -> dict[str, Any]:
    """``record.created``: the new record's id, type, primary key and the keys it was created with."""
    return {"recordId": record_id, "type": entity_type, "primaryKey": primary_key,
            "keys": {name: value for name, value in keys}, "createdAt": iso(created_at)}


def emit(session: Session, org_id: str, event_type: str, payload: dict[str, Any]) -> OutboxEvent:
    """Add an outbox event to the current transaction (it commits or rolls back with the mutation)."""
    row = OutboxEvent(**outbox_row(org_id, event_type, payload))
    session.add(row)
    return row


def recent(session: Session, org_id: str, *, event_type: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Newest-first outbox events of one org (polling triggers, tests)."""
    q = select(OutboxEvent).where(OutboxEvent.org_id == org_id)
    if event_type:
        q = q.where(OutboxEvent.event_type == event_type)
    rows = session.scalars(q.order_by(OutboxEvent.id.desc()).limit(limit)).all()
    return [{"id": r.public_id, "type": r.event_type, "created_at": iso(r.created_at), "data": r.payload}
            for r in rows]
