"""Inbound delivery headers (issue 18, "each event's verified headers"): what the event log stores — end-to-end
headers only, bounded, credentials masked before storage — and that group commit keeps each caller's headers
on its own events."""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy import text

from memrelay.composition import Services
from memrelay.engine.core.delivery_headers import MASKED, MAX_TOTAL, OMITTED, VERIFIED, capture_headers

SECRETS = {
    "Authorization": "Bearer mr_live_0123456789abcdefSECRET",
    "X-API-Key": "apikey-0123456789-SECRET",
    "Cookie": "sid=cookie0123456789SECRET; theme=dark",
    "X-Custom-Token": "tok-0123456789-SECRET",
    "X-Client-Secret": "cs-0123456789-SECRET",
    "Stripe-Signature": "t=1700000000,v1=abcdef0123456789SECRET",
    "X-Forwarded-Credential": "whsec_0123456789SECRET",
    "X-Anything": "sk_live_0123456789SECRET",
}


def test_credentials_keep_their_name_and_lose_their_value() -> None:
    plain = {"Content-Type": "application/json", "User-Agent": "Stripe/1.0", "X-Request-Id": "req-42",
             "Idempotency-Key": "idem-7"}
    out = capture_headers([*SECRETS.items(), *plain.items()], verified=["stripe-signature"])
    assert set(out) == set(SECRETS) | set(plain)
    assert all("SECRET" not in v for v in out.values()), out
    assert {k: out[k] for k in plain} == plain  # ordinary headers unchanged, Idempotency-Key is not a credential
    assert out["Stripe-Signature"] == VERIFIED  # the verified signature says so, nothing of its value
    assert out["Authorization"] == f"Bearer mr_l{MASKED}"  # the scheme and a short prefix, no more
    assert out["Cookie"] == f"sid={MASKED}; theme={MASKED}"
    assert out["X-API-Key"].endswith(MASKED) and len(out["X-API-Key"]) <= 4 + len(MASKED)
    assert out["X-Anything"].endswith(MASKED)  # a credential-looking value under an innocent name
    short = capture_headers([("X-Token", "abc")])
    assert short["X-Token"] == MASKED  # too short to show any of it


def test_hop_by_hop_headers_are_dropped_and_repeats_joined() -> None:
    out = capture_headers([("Connection", "keep-alive, X-Hop"), ("Keep-Alive", "timeout=5"), ("X-Hop", "1"),
                           ("Transfer-Encoding", "chunked"), ("Proxy-Authorization", "Basic c2VjcmV0"),
                           ("Upgrade", "h2c"), ("TE", "trailers"), ("X-Trace", "a"), ("x-trace", "b"),
                           ("Host", "memrelay.example")])
    assert out == {"X-Trace": "a, b", "Host": "memrelay.example"}


def test_the_stored_headers_are_bounded() -> None:
    many = [(f"X-Filler-{i:03d}", "v" * 500) for i in range(40)] + [("X-Huge", "h" * 50_000)]
    out = capture_headers(many)
    stored = {k: v for k, v in out.items() if k != OMITTED}
    assert sum(len(k) + len(v) for k, v in stored.items()) <= MAX_TOTAL
    assert all(len(v) <= 1024 + len("…(truncated)") for v in stored.values())
    assert out[OMITTED].startswith(f"{len(many) - len(stored)} header(s) left out")
    assert list(stored)[:3] == ["X-Filler-000", "X-Filler-001", "X-Filler-002"]  # in arrival order
    assert capture_headers([("X-Huge", "h" * 50_000)])["X-Huge"] == "h" * 1024 + "…(truncated)"


def _source(engine: Services) -> tuple[str, str]:
    org = engine.tenancy.create_org("hdr-org").id
    src = engine.sources.create(org, connector="hubspot", secret="s", config={"fetch": False})
    return org, src["id"]


def _event(key: str) -> dict[str, Any]:
    return {"connector": "hubspot", "dedup_key": key, "event_type": "contact.propertyChange",
            "object_type": "contact", "object_id": key, "occurred_at": None, "payload": {"k": key}}


def test_group_commit_keeps_each_deliverys_headers_on_its_own_events(backend: str, engine: Services) -> None:
    org, source = _source(engine)
    log = engine.events
    inner = log._group._write
    gate = threading.Event()

    def slow_first(rows: list[dict[str, Any]]) -> set[str]:
        if log._group.batches == 0:
            gate.wait(10)
        return inner(rows)

    log._group._write = slow_first
    ids: dict[int, list[str]] = {}

    def call(i: int) -> None:
        ids[i] = log.record(org, source, [_event(f"e{i}a"), _event(f"e{i}b")],
                            headers=[("X-Delivery", f"d{i}"), ("Authorization", f"Bearer secret-of-caller-{i}")],
                            verification={"connector": "hubspot", "scheme": "hubspot-signature-v3",
                                          "verifiedHeaders": ["X-HubSpot-Signature-v3"]})[0]

    threads = [threading.Thread(target=call, args=(i,)) for i in range(5)]
    threads[0].start()
    time.sleep(0.2)
    for t in threads[1:]:
        t.start()
    deadline = time.monotonic() + 10
    while len(log._group._queue) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    gate.set()
    for t in threads:
        t.join(30)
    assert log._group.batches == 2  # callers 1-4 shared one transaction
    assert all(len(v) == 2 for v in ids.values()) and len(ids) == 5
    for i, event_ids in ids.items():
        for event_id in event_ids:
            ev = engine.events.get(org, event_id)
            assert ev.headers is not None and ev.headers["X-Delivery"] == f"d{i}"
            assert ev.verification == {"connector": "hubspot", "scheme": "hubspot-signature-v3",
                                       "verifiedHeaders": ["X-HubSpot-Signature-v3"]}
    with engine.db.read() as s:  # the raw column text: no caller's credential reached the database
        raw = " ".join(str(r[0]) for r in s.execute(text("SELECT headers FROM events WHERE source_id = :s"),
                                                     {"s": source}))
    assert "X-Delivery" in raw and "secret-of-caller" not in raw


def test_events_recorded_without_headers_keep_null(engine: Services) -> None:
    org, source = _source(engine)
    new_ids, _ = engine.events.record(org, source, [_event("plain")])
    ev = engine.events.get(org, new_ids[0])
    assert ev.headers is None and ev.verification is None
