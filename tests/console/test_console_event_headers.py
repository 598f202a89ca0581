"""Each inbound event's verified headers (issue 18 item 1): a delivery through the real receiver stores its request
headers with credentials masked before storage and which check let it in; the console's event page and
``GET /api/v1/events/<id>`` show both, and no secret, token or signature value is readable in the database row."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import text

from memrelay.connectors.generic_hmac.webhook import signature_header
from memrelay.engine.core.delivery_headers import VERIFIED
from tests.console.test_console import console

SECRET = "hmac-header-test-secret"
CREDENTIALS = {"Authorization": "Bearer mr_notakey_0123456789SECRETVALUE",
               "Cookie": "mrc_session=cookie0123456789SECRETVALUE; theme=dark",
               "X-Upstream-Token": "upstream-token-0123456789SECRETVALUE",
               "X-Partner-Api-Key": "partner-0123456789SECRETVALUE"}


def _row_text(engine: Any, event_id: str) -> str:
    """The event's stored columns as the database holds them (the headers and verification JSON, the payload)."""
    with engine.db.read() as s:
        row = s.execute(text("SELECT headers, verification, payload FROM events WHERE id = :i"), {"i": event_id}).one()
    return " ".join(str(v) for v in row)


def _signed_delivery(c: Any) -> tuple[str, str]:
    src = c.api.post("/api/v1/sources", json={"connector": "generic_hmac", "secret": SECRET}).json["data"]
    raw = json.dumps({"event_id": "hdr-1", "email": "ada@example.org", "name": "Ada"}).encode()
    sig = signature_header(SECRET, raw, int(time.time()))
    sender = c.api.client.application.test_client(use_cookies=False)  # a cookie jar would replace our Cookie
    resp = sender.post(src["webhookPath"], data=raw, headers={
        "Content-Type": "application/json", "X-Signature": sig, "X-Request-Id": "req-77", "User-Agent": "Sender/2.1",
        "Connection": "keep-alive, X-Hop-Only", "X-Hop-Only": "hop", **CREDENTIALS})
    assert resp.status_code == 202, resp.json
    return resp.json["eventIds"][0], sig


def test_signed_delivery_headers_are_masked_in_the_row_and_shown_on_the_page_and_api(app, engine):
    c = console(app, engine)
    event_id, sig = _signed_delivery(c)
    row = _row_text(engine, event_id)
    secrets = [*CREDENTIALS.values(), sig, sig.split("v1=")[1], SECRET]
    assert not [s for s in secrets if s in row]  # masked before storage: nothing readable in the database
    assert "cookie0123456789" not in row and "SECRETVALUE" not in row

    api = c.api.get(f"/api/v1/events/{event_id}").json["data"]
    headers = api["headers"]
    assert headers["X-Request-Id"] == "req-77" and headers["User-Agent"] == "Sender/2.1"
    assert headers["X-Signature"] == VERIFIED  # the verified signature shows as verified, not its value
    assert headers["Authorization"].startswith("Bearer ") and headers["Authorization"].endswith("(masked)")
    assert headers["Cookie"] == "mrc_session=…(masked); theme=…(masked)"
    assert headers["X-Upstream-Token"].endswith("(masked)") and headers["X-Partner-Api-Key"].endswith("(masked)")
    assert "X-Hop-Only" not in headers and "Connection" not in headers  # hop-by-hop
    assert api["verification"]["connector"] == "generic_hmac" and api["verification"]["scheme"] == "hmac-sha256"
    assert api["verification"]["verifiedHeaders"] == ["X-Signature"]
    assert "SECRETVALUE" not in json.dumps(api)

    page = c.text(f"/console/events/{event_id}")
    assert "Request headers" in page and "X-Request-Id" in page and "req-77" in page and VERIFIED in page
    assert "hmac-sha256" in page and "generic_hmac" in page and "X-Signature" in page
    assert "SECRETVALUE" not in page and sig.split("v1=")[1] not in page


def test_api_key_and_path_token_deliveries_say_how_they_were_verified(app, engine):
    c = console(app, engine)
    src = c.api.post("/api/v1/sources", json={"connector": "generic", "name": "Zapier"}).json["data"]
    by_key = c.api.post(f"/webhooks/generic/{src['id']}", json={"event_id": "k-1", "email": "k@example.org"})
    assert by_key.status_code == 202, by_key.json
    key_event = by_key.json["eventIds"][0]
    by_token = c.api.client.post(src["webhookPath"], json={"event_id": "t-1", "email": "t@example.org"})
    assert by_token.status_code == 202, by_token.json
    token_event = by_token.json["eventIds"][0]
    key_id = engine.tenancy.authenticate(c.api.key).key_id

    shown = c.api.get(f"/api/v1/events/{key_event}").json["data"]
    assert shown["verification"]["scheme"] == "api-key" and shown["verification"]["apiKeyId"] == key_id
    assert shown["headers"]["Authorization"] == VERIFIED
    assert c.api.key not in _row_text(engine, key_event) and c.api.key[3:12] not in _row_text(engine, key_event)

    token = src["webhookPath"].rsplit("/", 1)[1]
    tok = c.api.get(f"/api/v1/events/{token_event}").json["data"]
    assert tok["verification"]["scheme"] == "path-token" and tok["verification"]["connector"] == "generic"
    assert token not in _row_text(engine, token_event)
    page = c.text(f"/console/events/{token_event}")
    assert "path-token" in page and token not in page


def test_events_stored_before_headers_were_kept_say_so(app, engine):
    c = console(app, engine)
    src = c.api.post("/api/v1/sources", json={"connector": "generic"}).json["data"]
    new_ids, _ = engine.events.record(c.api.org_id, src["id"], [{
        "connector": "generic", "dedup_key": "old-1", "event_type": "contact.upsert", "object_type": "contact",
        "object_id": None, "occurred_at": None, "payload": {"email": "old@example.org"}}])
    assert c.api.get(f"/api/v1/events/{new_ids[0]}").json["data"]["headers"] is None
    assert "Not recorded" in c.text(f"/console/events/{new_ids[0]}")
