"""Typed mutation events, written into the outbox in the caller's transaction."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
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


OUTBOX_COLUMNS = ("public_id", "org_id", "event_type", "payload", "created_at")
"""Column order of an outbox row queued as a tuple (:func:`event_ids` gives its ``public_id``)."""


def event_ids() -> Iterator[str]:
    """Fresh event ids for a batch, as long as ``new_id("evt")``'s: 12 hex digits of the millisecond clock then
    12 random ones (randomness drawn from the OS in blocks). Ids made later sort later, so a bulk write
    appends to the unique index on ``public_id`` instead of writing all over it."""
    while True:  # one clock read per block of 256 ids: a block shares its prefix, later blocks sort after it
        block = os.urandom(6 * 256).hex()
        prefix = f"evt_{int(time.time() * 1000):012x}"
        yield from [prefix + block[i:i + 12] for i in range(0, len(block), 12)]


def outbox_row(org_id: str, event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
    """An outbox row as plain values (for executemany inserts)."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown outbox event type {event_type!r}")
    return {"public_id": new_id("evt"), "org_id": org_id, "event_type": event_type, "payload": payload,
            "created_at": utcnow()}


def record_created_payload(record_id: str, entity_type: str, primary_key: str, keys: list[tuple[str, str]],
                           created_at: Any, *, created_iso: str | None = None) -> dict[str, Any]:
    """``record.created``: the new record's id, type, primary key and the keys it was created with.
    ``created_iso``: ``iso(created_at)`` when the caller already has it (a bulk batch shares one time)."""
    return {"recordId": record_id, "type": entity_type, "primaryKey": primary_key,
            "keys": dict(keys), "createdAt": created_iso if created_iso is not None else iso(created_at)}


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
