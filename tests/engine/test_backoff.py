"""The one retry-policy module: named policies, waits (schedule, exponential, jitter bounds), Retry-After
rules, exhaustion, and the one Retry-After parser (delta-seconds, HTTP dates, retry-after-ms, caps)."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from requests.structures import CaseInsensitiveDict
from urllib3 import HTTPHeaderDict

from memrelay.engine.core.backoff import (
    CRM_CALLS,
    DELIVERIES,
    EVENTS,
    LLM_CALLS,
    MAX_RETRY_AFTER_S,
    NO_RETRY,
    POLICIES,
    WORKFLOW_STEPS,
    RetryPolicy,
    parse_retry_after,
    retry_after,
)

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


# --- named policies --------------------------------------------------------------------------------------
def test_named_policies_are_declared_once_under_stable_names():
    assert set(POLICIES) == {"events", "deliveries", "workflow_steps", "llm_calls", "crm_calls", "none"}
    assert POLICIES["events"] is EVENTS and POLICIES["deliveries"] is DELIVERIES
    assert POLICIES["workflow_steps"] is WORKFLOW_STEPS and POLICIES["llm_calls"] is LLM_CALLS
    assert POLICIES["crm_calls"] is CRM_CALLS and POLICIES["none"] is NO_RETRY
    assert all(name == p.name for name, p in POLICIES.items())


def test_event_and_delivery_schedules_and_what_happens_when_exhausted():
    assert (EVENTS.max_attempts, EVENTS.intervals(), EVENTS.on_exhausted) == (6, [5, 30, 120, 600, 1800], "dead")
    assert DELIVERIES.max_attempts == 8 and DELIVERIES.on_exhausted == "dead"
    assert DELIVERIES.intervals() == [5, 300, 1800, 7200, 18000, 36000, 36000]
    assert EVENTS.max_retries == 5 and NO_RETRY.max_retries == 0 and NO_RETRY.next_delay(1) is None
    assert [EVENTS.next_delay(n) for n in range(1, 7)] == [5, 30, 120, 600, 1800, None]
    assert EVENTS.but(max_attempts=9).next_delay(8) == 1800  # the schedule's last wait repeats
    assert EVENTS.but(max_attempts=2).next_delay(2) is None
    assert {p.on_exhausted for p in (WORKFLOW_STEPS, LLM_CALLS, CRM_CALLS)} == {"raise"}


def test_exponential_waits_double_up_to_the_bound():
    steps = WORKFLOW_STEPS.but(max_attempts=9)
    assert [steps.next_delay(n) for n in range(1, 10)] == [1, 2, 4, 8, 16, 30, 30, 30, None]
    assert steps.but(base_s=0.01).intervals()[:3] == [0.01, 0.02, 0.04]
    assert LLM_CALLS.intervals() == [0.5, 1.0, 2.0]  # no jitter in the rq-style interval list
    assert CRM_CALLS.intervals() == [0.5, 1.0, 2.0, 4.0, 8.0]


@pytest.mark.parametrize("policy", [LLM_CALLS.but(max_attempts=12), CRM_CALLS.but(max_attempts=12)])
def test_jitter_stays_within_its_bounds_and_the_cap(policy: RetryPolicy):
    rng = random.Random(7)
    for retry in range(1, 12):
        base = policy.base_s * 2 ** (retry - 1)
        draws = [policy.backoff(retry, rng=rng) for _ in range(200)]
        assert all(min(base, policy.max_s) <= d <= min(base + policy.jitter_s, policy.max_s) for d in draws)
        if base + policy.jitter_s < policy.max_s:
            assert max(draws) - min(draws) > policy.jitter_s / 2  # really jittered, not a constant
        else:
            assert max(draws) == policy.max_s
    assert policy.backoff(50, rng=rng) == policy.max_s


def test_a_schedule_with_jitter_adds_at_most_the_jitter():
    policy = EVENTS.but(jitter_s=2.0)
    rng = random.Random(1)
    draws = [policy.backoff(1, rng=rng) for _ in range(100)]
    assert all(5 <= d <= 7 for d in draws) and len(set(draws)) > 50
    assert policy.intervals()[0] == 5


def test_retry_after_rules():
    # deliveries: the later of the schedule and the hint, capped at a day
    assert DELIVERIES.next_delay(1, retry_after=120) == 120
    assert DELIVERIES.next_delay(1, retry_after=1) == 5
    assert DELIVERIES.next_delay(2, retry_after=10 * 86400) == MAX_RETRY_AFTER_S
    assert DELIVERIES.next_delay(8, retry_after=1) is None  # exhausted whatever the server says
    # CRM: the hint instead of the backoff, clamped to two minutes
    assert CRM_CALLS.next_delay(3, retry_after=0.25) == 0.25
    assert CRM_CALLS.next_delay(1, retry_after=600) == 120
    # LLM: the hint instead, but one above the limit gives up at once
    assert LLM_CALLS.next_delay(1, retry_after=60) == 60
    assert LLM_CALLS.next_delay(1, retry_after=61) is None
    assert LLM_CALLS.but(max_retry_after_s=5).next_delay(1, retry_after=6) is None
    # events and workflow steps ignore hints
    assert EVENTS.next_delay(1, retry_after=1000) == 5
    assert WORKFLOW_STEPS.but(max_attempts=3).next_delay(1, retry_after=1000) == 1


def test_invalid_policies_are_refused():
    with pytest.raises(ValueError):
        RetryPolicy("x", max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy("x", max_attempts=2, schedule=(1, -1))
    with pytest.raises(ValueError):
        EVENTS.backoff(0)


# --- the Retry-After parser ------------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "seconds"), [
    ("120", 120), (" 7 ", 7), ("1.5", 1.5), ("0", 0), ("-5", 0),
    (str(10 * 86400), MAX_RETRY_AFTER_S), ("inf", MAX_RETRY_AFTER_S),
    (format_datetime(NOW + timedelta(seconds=90), usegmt=True), 90),               # IMF-fixdate
    ((NOW + timedelta(seconds=45)).strftime("%A, %d-%b-%y %H:%M:%S GMT"), 45),    # RFC 850
    ((NOW + timedelta(seconds=30)).strftime("%a %b %d %H:%M:%S %Y"), 30),         # asctime (GMT)
    (format_datetime(NOW - timedelta(hours=1), usegmt=True), 0),                   # in the past
    (format_datetime(NOW + timedelta(days=3), usegmt=True), MAX_RETRY_AFTER_S),
])
def test_retry_after_values(value: str, seconds: float):
    assert parse_retry_after(value, now=NOW) == pytest.approx(seconds)


@pytest.mark.parametrize("value", [None, "", "  ", "soon", "nan", "Mon, 99 Foo 2026 25:61:00 GMT", "12s"])
def test_unreadable_retry_after_is_none(value: str | None):
    assert parse_retry_after(value, now=NOW) is None


def test_retry_after_caps_and_reference_time():
    assert parse_retry_after("500", cap_s=60) == 60
    assert parse_retry_after("500", cap_s=None) == 500
    assert parse_retry_after(str(10 * 86400), cap_s=None) == 10 * 86400
    in_20s = format_datetime(NOW + timedelta(seconds=20), usegmt=True)
    assert parse_retry_after(in_20s, now=NOW.timestamp()) == pytest.approx(20)
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=100), usegmt=True)
    assert 95 <= (parse_retry_after(soon) or 0) <= 100  # default reference: the clock


def test_retry_after_headers_prefer_milliseconds_and_match_names_in_any_case():
    assert retry_after({"retry-after-ms": "1500", "Retry-After": "9"}) == 1.5
    assert retry_after({"Retry-After-Ms": "250"}) == 0.25
    assert retry_after({"retry-after-ms": "soon", "RETRY-AFTER": "9"}) == 9  # unreadable ms: the header
    assert retry_after({"retry-after-ms": "-10"}) == 0
    assert retry_after({"retry-after-ms": str(10 * 86400 * 1000)}) == MAX_RETRY_AFTER_S
    assert retry_after({"retry-after-ms": "90000"}, cap_s=60) == 60
    assert retry_after({"Content-Type": "text/plain"}) is None
    assert retry_after({}) is None and retry_after(None) is None
    in_30s = time.time() + 30
    dated = {"Retry-After": format_datetime(datetime.fromtimestamp(in_30s, UTC), usegmt=True)}
    assert retry_after(dated, now=in_30s - 30) == pytest.approx(30, abs=1)


def test_retry_after_reads_the_header_types_of_the_http_libraries():
    assert retry_after(CaseInsensitiveDict({"Retry-After": "3"})) == 3  # requests
    assert retry_after(HTTPHeaderDict({"retry-after": "4"})) == 4  # urllib3 (hubspot-api-client)
