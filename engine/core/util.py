"""Small shared helpers: clock and identifiers."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import overload


def utcnow() -> datetime:
    return datetime.now(UTC)


@overload
def as_aware(dt: datetime) -> datetime: ...
@overload
def as_aware(dt: None) -> None: ...
@overload
def as_aware(dt: datetime | None) -> datetime | None: ...


def as_aware(dt: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; every stored time is UTC."""
    if dt is None:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def new_id(prefix: str) -> str:
    """A random, URL-safe, prefixed identifier (e.g. ``rec_3f9a…``)."""
    return f"{prefix}_{secrets.token_hex(12)}"


def new_sortable_id(prefix: str) -> str:
    """Like :func:`new_id`, but ids sort by creation time (ms timestamp first), so ordering by id is
    chronological and index-only."""
    import time

    return f"{prefix}_{int(time.time() * 1000):012x}{secrets.token_hex(8)}"


def iso(dt: datetime | None) -> str | None:
    dt = as_aware(dt)
    return dt.isoformat().replace("+00:00", "Z") if dt else None
