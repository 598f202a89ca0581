"""Retry policies and the one ``Retry-After`` parser (pure: standard library only).

A :class:`RetryPolicy` is a value (like rq's ``Retry`` or Dramatiq's retry options): how many attempts,
how long to wait before each retry (an explicit schedule, or exponential bounds with additive jitter),
how a server's ``Retry-After`` hint combines with that wait, and what happens once attempts are
exhausted. Code that retries asks the policy; it does not carry numbers of its own.

The named policies — stable names, referenced by the job table and by the services that retry:

``events`` (:data:`EVENTS`)
    Inbound events (the event log's sweeper re-enqueues a failed event when due). 6 attempts; waits
    5 s, 30 s, 2 min, 10 min, 30 min; then the event is ``dead`` (dead letter, replayable).
``deliveries`` (:data:`DELIVERIES`)
    Outbound webhook deliveries (the dispatcher). 8 attempts; waits 5 s, 5 min, 30 min, 2 h, 5 h, 10 h,
    10 h; a throttled answer's ``Retry-After`` is honoured when later (capped at a day); then ``dead``.
``workflow_steps`` (:data:`WORKFLOW_STEPS`)
    One workflow step (in process). Attempts are the step's ``retries`` + 1; waits 1 s doubling to 30 s;
    then the step and its run fail and the error is raised.
``llm_calls`` (:data:`LLM_CALLS`)
    One LLM provider request (in process). 4 attempts; waits 0.5 s doubling to 20 s plus up to 0.5 s
    jitter, or the provider's ``Retry-After`` / ``retry-after-ms`` instead; a hint above 60 s gives up at
    once; then the last error is raised.
``crm_calls`` (:data:`CRM_CALLS`)
    One CRM API call, HubSpot or Salesforce (in process). 6 attempts; waits 0.5 s doubling to 30 s plus up
    to 1 s jitter, or the server's ``Retry-After`` instead (clamped to 2 min); then the last error is raised.
``none`` (:data:`NO_RETRY`)
    One attempt; the error is raised.

All of them are in :data:`POLICIES` by name. A caller that must vary a bound (a source's ``max_retries``,
an LLM config's backoff) derives a policy with :meth:`RetryPolicy.but`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal

RetryAfterRule = Literal["ignore", "at_least", "instead"]
"""How a server's hint combines with the policy's own wait: not at all, the later of both, or the hint alone."""
OverCap = Literal["clamp", "give_up"]
"""A hint above ``max_retry_after_s``: wait the cap, or stop retrying at once."""
Exhausted = Literal["raise", "dead"]
"""After the last attempt: the caller raises the last error, or marks the work ``dead`` (a dead letter)."""

MAX_RETRY_AFTER_S = 24 * 3600.0
"""No ``Retry-After`` is ever read as longer than a day."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often to try, how long to wait between tries, and what happens when tries run out.

    ``schedule``, when not empty, is the wait before retry 1, 2, … (its last entry repeats); otherwise the
    wait before retry ``n`` is ``min(max_s, base_s * 2 ** (n - 1) + uniform(0, jitter_s))``.
    """

    name: str
    max_attempts: int
    schedule: tuple[float, ...] = ()
    base_s: float = 1.0
    max_s: float = 60.0
    jitter_s: float = 0.0
    retry_after: RetryAfterRule = "ignore"
    max_retry_after_s: float = MAX_RETRY_AFTER_S
    over_cap: OverCap = "clamp"
    on_exhausted: Exhausted = "raise"

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"retry policy {self.name!r} needs at least one attempt")
        if min((*self.schedule, self.base_s, self.max_s, self.jitter_s, self.max_retry_after_s)) < 0:
            raise ValueError(f"retry policy {self.name!r} has a negative wait")

    @property
    def max_retries(self) -> int:
        """Attempts after the first (rq's ``Retry(max=...)``)."""
        return self.max_attempts - 1

    def but(self, **changes: Any) -> RetryPolicy:
        """A copy with some fields changed (e.g. ``EVENTS.but(max_attempts=3)``)."""
        return replace(self, **changes)

    def backoff(self, retry: int, *, rng: random.Random | None = None) -> float:
        """The policy's own wait before retry ``retry`` (1 = the second attempt), jitter included."""
        if retry < 1:
            raise ValueError("retry numbers start at 1")
        if self.schedule:
            base = self.schedule[min(retry, len(self.schedule)) - 1]
        else:
            base = self.base_s * 2.0 ** (retry - 1)
        jitter = (rng or random).uniform(0, self.jitter_s) if self.jitter_s else 0.0
        return base + jitter if self.schedule else min(self.max_s, base + jitter)

    def intervals(self) -> list[float]:
        """The waits before each retry without jitter (rq's ``Retry(interval=[...])``)."""
        return [self.backoff(n, rng=_NO_JITTER) for n in range(1, self.max_attempts)]

    def next_delay(self, failed_attempts: int, *, retry_after: float | None = None,
                   rng: random.Random | None = None) -> float | None:
        """Seconds to wait after ``failed_attempts`` attempts failed, or ``None``: stop (attempts exhausted,
        or the server asked for longer than ``max_retry_after_s`` under ``over_cap="give_up"``).

        ``retry_after`` is the server's hint in seconds (see :func:`retry_after`), ``None`` when it sent none."""
        if failed_attempts >= self.max_attempts:
            return None
        hint = None if self.retry_after == "ignore" else retry_after
        if hint is not None and hint > self.max_retry_after_s:
            if self.over_cap == "give_up":
                return None
            hint = self.max_retry_after_s
        if hint is not None and self.retry_after == "instead":
            return max(0.0, hint)
        own = self.backoff(failed_attempts, rng=rng)
        return max(own, hint) if hint is not None else own


class _NoJitter(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return 0.0


_NO_JITTER = _NoJitter()

EVENTS = RetryPolicy("events", max_attempts=6, schedule=(5, 30, 120, 600, 1800), on_exhausted="dead")
DELIVERIES = RetryPolicy("deliveries", max_attempts=8, schedule=(5, 300, 1800, 7200, 18000, 36000, 36000),
                         retry_after="at_least", max_retry_after_s=MAX_RETRY_AFTER_S, on_exhausted="dead")
WORKFLOW_STEPS = RetryPolicy("workflow_steps", max_attempts=1, base_s=1.0, max_s=30.0)
LLM_CALLS = RetryPolicy("llm_calls", max_attempts=4, base_s=0.5, max_s=20.0, jitter_s=0.5, retry_after="instead",
                        max_retry_after_s=60.0, over_cap="give_up")
CRM_CALLS = RetryPolicy("crm_calls", max_attempts=6, base_s=0.5, max_s=30.0, jitter_s=1.0, retry_after="instead",
                        max_retry_after_s=120.0, over_cap="clamp")
# A batch chunk is tried 3 times (an attempt that raised waits 5 s, then 30 s; one whose worker died is
# re-driven at once by the sweeper); then its rows are recorded as failed.
BATCH_CHUNKS = RetryPolicy("batch_chunks", max_attempts=3, schedule=(5, 30), on_exhausted="dead")
NO_RETRY = RetryPolicy("none", max_attempts=1)

POLICIES: dict[str, RetryPolicy] = {p.name: p for p in (EVENTS, DELIVERIES, WORKFLOW_STEPS, LLM_CALLS, CRM_CALLS,
                                                        NO_RETRY)}


# --- Retry-After ---------------------------------------------------------------------------------------------
def parse_retry_after(value: str | None, *, now: datetime | float | None = None,
                      cap_s: float | None = MAX_RETRY_AFTER_S) -> float | None:
    """Seconds one ``Retry-After`` value asks for: delta-seconds or an HTTP date (RFC 9110 §10.2.3).

    A date in the past or a negative number is 0; the answer is at most ``cap_s``; anything unreadable
    is ``None``. ``now`` (a datetime or a POSIX timestamp) is what an HTTP date is measured from."""
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # "-0000" and zone-less forms: HTTP dates are always GMT
            when = when.replace(tzinfo=UTC)
        reference = now.timestamp() if isinstance(now, datetime) else (time.time() if now is None else now)
        try:
            seconds = when.timestamp() - reference
        except (OverflowError, ValueError):
            return None
    if seconds != seconds:  # NaN
        return None
    seconds = max(0.0, seconds)
    return min(seconds, cap_s) if cap_s is not None else seconds


def retry_after(headers: Mapping[str, Any] | None, *, now: datetime | float | None = None,
                cap_s: float | None = MAX_RETRY_AFTER_S) -> float | None:
    """Seconds a response's headers ask to wait: ``retry-after-ms`` (OpenAI and others) when readable, else
    ``Retry-After``; names are matched case-insensitively. ``None`` when neither is there or readable."""
    if not headers:
        return None
    lowered = {str(k).lower(): v for k, v in headers.items()}
    try:
        millis = float(str(lowered["retry-after-ms"]).strip())
    except (KeyError, ValueError):
        millis = float("nan")
    if millis == millis:  # not NaN: a readable number
        seconds = max(0.0, millis / 1000)
        return min(seconds, cap_s) if cap_s is not None else seconds
    value = lowered.get("retry-after")
    return parse_retry_after(str(value), now=now, cap_s=cap_s) if value is not None else None
