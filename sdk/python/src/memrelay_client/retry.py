"""Retry policy (sans-IO): which outcomes are retried and how long to wait before the next attempt."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date (RFC 9110 §10.2.3).

    ``None`` when absent or unreadable; a date in the past gives ``0.0``.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries on 429, 5xx and connection failures.

    ``max_attempts`` counts the first try. A ``Retry-After`` header is honoured exactly; when it asks for more
    than ``max_retry_after`` seconds the error is raised instead (the caller decides). Without one, the wait is
    exponential (``backoff_base * 2**n``, at most ``backoff_max``) with jitter.
    """

    max_attempts: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    max_retry_after: float = 90.0
    retry_statuses: frozenset[int] = RETRY_STATUSES
    retry_connection_errors: bool = True
    jitter: Callable[[], float] = random.random

    def backoff(self, attempt: int) -> float:
        """Wait after failed attempt number ``attempt`` (1-based) when the server gave no ``Retry-After``."""
        ceiling = min(self.backoff_max, self.backoff_base * (2 ** (attempt - 1)))
        return float(ceiling * (0.5 + 0.5 * self.jitter()))

    def delay_after_status(self, attempt: int, status: int, headers: Mapping[str, str]) -> float | None:
        """Seconds to wait before retrying a response with ``status``, or ``None`` to stop here."""
        if status not in self.retry_statuses or attempt >= self.max_attempts:
            return None
        asked = parse_retry_after(headers.get("retry-after"))
        if asked is None:
            return self.backoff(attempt)
        return asked if asked <= self.max_retry_after else None

    def delay_after_error(self, attempt: int) -> float | None:
        """Seconds to wait before retrying after a connection failure or timeout, or ``None`` to stop."""
        if not self.retry_connection_errors or attempt >= self.max_attempts:
            return None
        return self.backoff(attempt)


NO_RETRIES = RetryPolicy(max_attempts=1)
