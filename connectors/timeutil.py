"""Timestamp parsing shared by connectors and mapping transforms. Everything returned is UTC-aware."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

_MS_THRESHOLD = 100_000_000_000  # epoch numbers above this are milliseconds (year 5138 in seconds)


def from_epoch(number: float) -> datetime:
    """Epoch seconds or milliseconds (auto-detected) to an aware UTC datetime."""
    seconds = number / 1000.0 if abs(number) >= _MS_THRESHOLD else float(number)
    return datetime.fromtimestamp(seconds, UTC)


def from_millis(millis: int) -> datetime:
    """Epoch milliseconds to an aware UTC datetime."""
    return datetime.fromtimestamp(millis / 1000.0, UTC)


def parse_datetime(value: Any) -> datetime | None:
    """Parse ISO 8601 (``Z`` allowed), ``YYYY-MM-DD``, epoch s/ms numbers or digit strings.

    Naive values are taken as UTC. Returns ``None`` for empty or unparseable input.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(), UTC)
    try:
        if isinstance(value, int | float):
            return from_epoch(value)
        if not isinstance(value, str):
            return None
        text = value.strip()
        if not text:
            return None
        if text.lstrip("-").isdigit():
            return from_epoch(int(text))
        parsed = datetime.fromisoformat(text)  # 3.11+: accepts "Z" and most ISO 8601 forms
    except (ValueError, OverflowError, OSError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)
