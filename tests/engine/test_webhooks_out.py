"""Outbound webhook building blocks: Standard Webhooks signing (published vector + the library's verify),
SSRF address checks, Retry-After parsing and a dispatcher that is safe with several workers."""

from __future__ import annotations

import base64
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from sqlalchemy import func, select
from standardwebhooks import Webhook

from memrelay.engine.core.backoff import MAX_RETRY_AFTER_S, parse_retry_after
from memrelay.engine.core.errors import SignatureError, ValidationFailed
from memrelay.engine.egress.signing import new_secret, sign, signed_headers, verify
from memrelay.engine.egress.ssrf import BlockedAddress, check_url, normalise_allowlist
from memrelay.engine.egress.webhooks_out import WebhooksOut, message_body
from memrelay.engine.stores.db.models import OutboxEvent
from memrelay.engine.stores.db.models_outbound import WebhookDelivery
from memrelay.engine.stores.outbox import emit
from tests.support.outbox import skip_unsubscribed_backlog

VECTOR_KEY = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TS = 1614265330
VECTOR_BODY = '{"test": 2432232314}'
VECTOR_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


# --- signing -------------------------------------------------------------------------------------------
def test_signature_matches_the_published_standard_webhooks_vector():
    assert sign(VECTOR_KEY, VECTOR_ID, VECTOR_TS, VECTOR_BODY) == VECTOR_SIG
    assert sign(VECTOR_KEY, VECTOR_ID, VECTOR_TS, VECTOR_BODY.encode()) == VECTOR_SIG
    headers = signed_headers(VECTOR_KEY, VECTOR_ID, VECTOR_BODY.encode(), timestamp=VECTOR_TS)
    assert headers == {"webhook-id": VECTOR_ID, "webhook-timestamp": str(VECTOR_TS), "webhook-signature": VECTOR_SIG}


def test_fresh_signatures_verify_with_the_standardwebhooks_library():
    secret = new_secret()
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 24
    assert new_secret() != secret
    body = json.dumps({"type": "memory.updated", "data": {"x": "é"}}, ensure_ascii=False).encode()
    headers = signed_headers(secret, "evt_1", body)
    assert Webhook(secret).verify(body, headers) == json.loads(body)
    assert verify(secret, headers, body) == json.loads(body)
    with pytest.raises(SignatureError):
        verify(secret, headers, body.replace(b"memory", b"MEMORY"))
    with pytest.raises(SignatureError):
        verify(new_secret(), headers, body)
    stale = signed_headers(secret, "evt_1", body, timestamp=int(time.time()) - 3600)
    with pytest.raises(SignatureError, match="too old"):
        verify(secret, stale, body)


# --- SSRF ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("url", [
    "http://127.0.0.1/hook", "http://10.0.0.5/hook", "http://172.16.3.4/", "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/", "http://100.64.0.1/", "http://0.0.0.0/", "http://[::1]/",
    "http://[fd00::1]/", "http://[::ffff:127.0.0.1]/", "http://224.0.0.1/", "http://localhost:8080/hook",
    "ftp://example.com/hook", "file:///etc/passwd", "javascript:alert(1)", "http:///nohost",
    "http://host.invalid/hook"])
def test_non_public_or_non_http_targets_are_refused(url):
    with pytest.raises(BlockedAddress) as err:
        check_url(url)
    assert err.value.http_status == 422


def test_allowlist_admits_named_hosts_addresses_and_networks():
    assert check_url("http://127.0.0.1:8080/a?b=1", ["127.0.0.1/32"]).path == "/a?b=1"
    target = check_url("http://localhost:8080/x", ["localhost"])
    assert target.ip in ("127.0.0.1", "::1") and target.host_header == "localhost:8080"
    assert check_url("http://10.9.8.7/", normalise_allowlist(["10.0.0.0/8"])).ip == "10.9.8.7"
    with pytest.raises(BlockedAddress):
        check_url("http://10.9.8.7/", ["127.0.0.1/32", "localhost"])
    with pytest.raises(BlockedAddress):
        check_url("http://169.254.169.254/", ["10.0.0.0/8"])
    public = check_url("https://93.184.216.34/hook")  # a public literal needs no allowlist (and no DNS)
    assert (public.ip, public.port, public.host_header) == ("93.184.216.34", 443, "93.184.216.34")


def test_allowlist_entries_are_normalised_and_validated():
    assert normalise_allowlist([" LocalHost ", "127.0.0.1", "10.1.2.3/8", "::1", "127.0.0.1"]) == [
        "localhost", "127.0.0.1/32", "10.0.0.0/8", "::1/128"]
    with pytest.raises(ValidationFailed):
        normalise_allowlist(["http://x.com/"])


# --- retry-after ---------------------------------------------------------------------------------------
def test_retry_after_accepts_seconds_and_http_dates_and_is_capped():
    now = datetime.now(UTC)
    assert parse_retry_after("120", now=now) == 120
    in_90s = format_datetime(now + timedelta(seconds=90), usegmt=True)
    assert parse_retry_after(in_90s, now=now) == pytest.approx(90, abs=1)
    assert parse_retry_after("-5", now=now) == 0
    assert parse_retry_after(str(10 * 86400), now=now) == MAX_RETRY_AFTER_S
    assert parse_retry_after("soon", now=now) is None and parse_retry_after(None, now=now) is None


# --- dispatch ------------------------------------------------------------------------------------------
def _org(engine, name: str) -> str:
    return engine.tenancy.get_or_create_org(f"{name}-{time.time_ns()}").id


@pytest.mark.usefixtures("backend")
def test_concurrent_dispatchers_fan_out_each_event_exactly_once_within_its_org(engine):
    svc = WebhooksOut(engine.db, allow_local=True)
    a, b = _org(engine, "a"), _org(engine, "b")
    for org in (a, b):
        svc.set_allowlist(org, ["127.0.0.1"])
    sub_all = svc.create(a, url="http://127.0.0.1:9/all", event_types=["*"])
    sub_one = svc.create(a, url="http://127.0.0.1:9/one", event_types=["batch.completed"])
    sub_off = svc.create(a, url="http://127.0.0.1:9/off", event_types=["*"], active=False)
    sub_b = svc.create(b, url="http://127.0.0.1:9/b", event_types=["*"])
    with engine.db.session() as s:
        for i in range(60):
            emit(s, a, "memory.updated" if i % 3 else "batch.completed", {"i": i})
        emit(s, b, "event.failed", {"i": -1})
    skip_unsubscribed_backlog(engine.db)  # earlier tests' rows: the threads below dispatch every org's
    taken: list[int] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            while n := svc.dispatch(limit=7):
                taken.append(n)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with engine.db.read() as s:
        undispatched = s.scalar(select(func.count()).select_from(OutboxEvent).where(
            OutboxEvent.org_id.in_((a, b)), OutboxEvent.dispatched_at.is_(None)))
        rows = s.execute(select(WebhookDelivery.subscription_id, WebhookDelivery.org_id)
                         .where(WebhookDelivery.org_id.in_((a, b)))).all()
    assert undispatched == 0
    per_sub = {sid: sum(1 for r in rows if r[0] == sid) for sid in {r[0] for r in rows}}
    assert per_sub == {sub_all["id"]: 60, sub_one["id"]: 20, sub_b["id"]: 1}
    assert sub_off["id"] not in per_sub
    assert all(org == (b if sid == sub_b["id"] else a) for sid, org in rows)
    for org, sub in ((a, sub_all), (a, sub_one), (a, sub_off), (b, sub_b)):  # leave no due deliveries behind
        svc.delete(org, sub["id"])


def test_bodies_are_the_standard_webhooks_envelope_or_the_flat_zapier_item():
    ev = OutboxEvent(id=1, public_id="evt_1", org_id="o", event_type="memory.updated",
                     payload={"recordId": "rec_1", "type": "contact"}, created_at=datetime(2026, 1, 2, tzinfo=UTC))
    assert json.loads(message_body("webhook", ev)) == {
        "id": "evt_1", "type": "memory.updated", "timestamp": "2026-01-02T00:00:00Z",
        "data": {"recordId": "rec_1", "type": "contact"}}
    assert json.loads(message_body("zapier_hook", ev)) == {
        "recordId": "rec_1", "type": "contact", "id": "evt_1", "event": "memory.updated",
        "created_at": "2026-01-02T00:00:00Z"}
