"""REST-hook signing secrets, outbound secret rotation with an overlap window, the ``record.created`` and
per-property events on every write path, the cursor feed behind Zapier's polling fallback, and Zapier's searches
and extra actions — through the API, the outbox dispatcher and the production worker, verified on the receiving
side with the ``standardwebhooks`` library."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import select, update
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from memrelay.engine.core.util import utcnow
from memrelay.engine.egress import webhooks_out
from memrelay.engine.egress.signing import signed_headers
from memrelay.engine.stores.db.models import OutboxEvent
from memrelay.engine.stores.db.models_outbound import WebhookSubscription
from memrelay.engine.stores.identity import Identifiers
from memrelay.engine.stores.properties import Provenance
from tests.gateway import test_outbound
from tests.gateway.test_outbound import allow_local, deliver, upsert

receiver = test_outbound.receiver


def hook(api: Any, url: str, event: str) -> dict[str, Any]:
    r = api.post("/api/v1/hooks", json={"target_url": url, "event": event})
    assert r.status_code == 201, r.json
    return dict(r.json)


def events(engine: Any, org_id: str, event_type: str | None = None) -> list[dict[str, Any]]:
    q = select(OutboxEvent).where(OutboxEvent.org_id == org_id)
    if event_type:
        q = q.where(OutboxEvent.event_type == event_type)
    with engine.db.read() as s:
        return [{**e.payload, "event": e.event_type} for e in s.scalars(q.order_by(OutboxEvent.id))]


def verifies(secret: str, req: dict[str, Any]) -> bool:
    try:
        Webhook(secret).verify(req["body"], req["headers"])
    except WebhookVerificationError:
        return False
    return True


# --- signing secret and rotation --------------------------------------------------------------------------
def test_rest_hook_subscribe_returns_the_secret_that_signs_its_deliveries(api, engine, run_jobs, receiver):
    allow_local(api)
    sub = hook(api, receiver.url("/zap"), "memory.property.updated")
    assert sub["secret"].startswith("whsec_")
    assert "secret" not in api.get(f"/api/v1/webhooks/{sub['id']}").json["data"]  # shown once
    upsert(api, "ann@acme.com", job_title="CTO")
    deliver(engine, run_jobs)
    [req] = receiver.requests
    assert {"webhook-id", "webhook-timestamp", "webhook-signature"} <= {k.lower() for k in req["headers"]}
    assert verifies(sub["secret"], req)
    other = api.post("/api/v1/hooks", json={"target_url": receiver.url("/z2"), "event": "record.created"}).json
    assert not verifies(other["secret"], req)  # each hook has its own secret


@pytest.mark.usefixtures("backend")
def test_rotation_signs_with_both_secrets_during_the_overlap_then_only_the_new(api, other_api, engine, run_jobs,
                                                                                receiver):
    allow_local(api)
    made = api.post("/api/v1/webhooks", json={"url": receiver.url("/w"), "eventTypes": ["record.created"]})
    sub = made.json["data"]
    old = sub["secret"]
    assert other_api.post(f"/api/v1/webhooks/{sub['id']}/rotate-secret", json={}).status_code == 404
    write_key = api.post("/api/v1/keys", json={"name": "w", "scopes": ["read", "write"]}).json["data"]["key"]
    assert api.client.post(f"/api/v1/webhooks/{sub['id']}/rotate-secret", json={},
                           headers={"Authorization": f"Bearer {write_key}"}).status_code == 403
    rotated = api.post(f"/api/v1/webhooks/{sub['id']}/rotate-secret", json={"overlapSeconds": 3600}).json["data"]
    new = rotated["secret"]
    assert new.startswith("whsec_") and new != old and rotated["previousSecretExpiresAt"]
    upsert(api, "ann@acme.com")
    deliver(engine, run_jobs)
    [req] = receiver.requests
    sigs = req["headers"]["webhook-signature"].split(" ")
    assert len(sigs) == 2 and all(s.startswith("v1,") for s in sigs)
    assert verifies(new, req) and verifies(old, req)  # a receiver holding either secret accepts it
    assert not verifies("whsec_" + "A" * 32, req)

    with engine.db.session() as s:  # the overlap window ends
        s.execute(update(WebhookSubscription).where(WebhookSubscription.id == sub["id"])
                  .values(previous_secret_expires_at=utcnow() - timedelta(seconds=1)))
    assert api.get(f"/api/v1/webhooks/{sub['id']}").json["data"]["previousSecretExpiresAt"] is None
    upsert(api, "bob@acme.com")
    deliver(engine, run_jobs)
    req = receiver.requests[1]
    assert len(req["headers"]["webhook-signature"].split(" ")) == 1
    assert verifies(new, req) and not verifies(old, req)

    now_only = api.post(f"/api/v1/webhooks/{sub['id']}/rotate-secret", json={"overlapSeconds": 0}).json["data"]
    assert now_only["previousSecretExpiresAt"] is None
    upsert(api, "cy@acme.com")
    deliver(engine, run_jobs)
    req = receiver.requests[2]
    assert verifies(now_only["secret"], req) and not verifies(new, req)
    bad = api.post(f"/api/v1/webhooks/{sub['id']}/rotate-secret", json={"overlapSeconds": 10**9})
    assert bad.status_code == 422


@pytest.mark.usefixtures("backend")
def test_rest_hook_rotation_and_the_rotated_secret_is_encrypted_at_rest(api, engine, run_jobs, receiver):
    allow_local(api)
    sub = hook(api, receiver.url("/zap"), "record.created")
    r = api.post(f"/api/v1/hooks/{sub['id']}/rotate-secret", json={"overlapSeconds": 600})
    assert r.status_code == 200 and set(r.json) == {"id", "secret", "previousSecretExpiresAt"}
    upsert(api, "dee@acme.com")
    deliver(engine, run_jobs)
    [req] = receiver.requests
    assert verifies(sub["secret"], req) and verifies(r.json["secret"], req)
    with engine.db.engine.connect() as conn:
        raw = repr(conn.execute(sa.text("SELECT * FROM webhook_subscriptions")).all())
    assert sub["secret"] not in raw and r.json["secret"] not in raw and "mre1$" in raw
    wh = api.post("/api/v1/webhooks", json={"url": receiver.url(), "eventTypes": ["*"]}).json["data"]
    assert api.post(f"/api/v1/hooks/{wh['id']}/rotate-secret", json={}).status_code == 404  # not a REST hook


def test_signed_headers_with_several_secrets_verify_with_each():
    a, b = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_" + "Zm9vYmFyYmF6cXV4cXV1eGZvb2Jhcg=="
    body = b'{"id":"evt_1"}'
    headers = signed_headers((a, b), "evt_1", body)
    assert headers["webhook-signature"].count("v1,") == 2
    for secret in (a, b):
        assert Webhook(secret).verify(body, headers) == {"id": "evt_1"}
    with pytest.raises(ValueError):
        signed_headers((), "evt_1", body)


# --- events -----------------------------------------------------------------------------------------------
def test_a_multi_property_write_emits_one_property_event_per_property(api, engine, run_jobs, receiver):
    allow_local(api)
    hook(api, receiver.url("/prop"), "memory.property.updated")
    upsert(api, "ann@acme.com", job_title="CTO", first_name="Ann")
    upsert(api, "ann@acme.com", job_title="CEO", first_name="Ann")  # one change: one event
    props = events(engine, api.org_id, "memory.property.updated")
    assert [(e["propertyName"], e["value"], e["previous"]) for e in props] == [
        ("job_title", "CTO", None), ("first_name", "Ann", None), ("job_title", "CEO", "CTO")]
    assert props[0]["changedProperties"] == ["job_title", "first_name"] and props[0]["version"] == 1
    [bulk] = events(engine, api.org_id, "memory.properties.bulk_updated")
    assert set(bulk["properties"]) == {"job_title", "first_name"}
    deliver(engine, run_jobs)
    assert sorted(b["propertyName"] for b in receiver.bodies("/prop")) == ["first_name", "job_title", "job_title"]


@pytest.mark.usefixtures("backend")
def test_record_created_once_per_new_record_on_every_write_path(api, engine, run_jobs):
    upsert(api, "ann@acme.com", job_title="CTO")  # upsert
    upsert(api, "ann@acme.com", job_title="CEO")  # same record: nothing new
    assert api.post("/api/v1/memorize", json={"content": "Bob runs infra at Acme.", "email": "bob@acme.com"}
                    ).status_code == 200  # memorize
    out = api.post("/api/v1/batch-memorize", json={"items": [
        {"content": "Cy likes golf.", "email": "cy@acme.com"}, {"content": "Ann moved to Paris.",
                                                               "email": "ann@acme.com"}]})
    assert out.status_code == 200, out.json  # batch (items form)
    r = api.post("/api/v1/batch-memorize", json={
        "source": "csv", "mapping": {"entityType": "contact", "email": "mail",
                                     "properties": {"job_title": {"sourceField": "title"}}},
        "rows": [{"mail": "dee@acme.com", "title": "VP"}, {"mail": "bob@acme.com", "title": "SRE"}]})
    assert r.status_code == 202, r.json
    run_jobs()  # batch (rows form: the bulk write path in the worker)
    src = api.post("/api/v1/sources", json={"connector": "generic", "name": "crm"}).json["data"]
    assert api.client.post(src["webhookPath"], json={"object": "contact", "email": "eve@acme.com",
                                                     "first_name": "Eve"}).status_code == 202
    run_jobs()  # a webhook event
    engine.records.upsert_many(api.org_id, [(Identifiers(type="contact", email="fay@acme.com"), {}, Provenance(
        source="t")), (Identifiers(type="contact", email="ann@acme.com"), {}, Provenance(source="t"))])
    created = events(engine, api.org_id, "record.created")
    assert [e["keys"].get("email") for e in created] == [
        "ann@acme.com", "bob@acme.com", "cy@acme.com", "dee@acme.com", "eve@acme.com", "fay@acme.com"]
    for e in created:
        assert e["recordId"].startswith("rec_") and e["type"] == "contact" and e["createdAt"]
    first = [e["event"] for e in events(engine, api.org_id)][:2]
    assert first == ["record.created", "memory.property.updated"]  # created comes before its first values


# --- cursor feed (Zapier's polling fallback) --------------------------------------------------------------
def _page(api: Any, **params: Any) -> dict[str, Any]:
    r = api.get("/api/v1/feed", query_string=params)
    assert r.status_code == 200, r.json
    return dict(r.json["data"])


@pytest.mark.usefixtures("backend")
def test_the_feed_pages_newest_first_without_gaps_or_duplicates(api, other_api, engine):
    for i in range(7):
        upsert(api, f"p{i}@acme.com", job_title=f"T{i}")
    upsert(other_api, "x@other.com")
    first = _page(api, eventTypes="memory.property.updated", limit=3)
    assert [i["value"] for i in first["items"]] == ["T6", "T5", "T4"] and first["hasMore"]
    upsert(api, "late@acme.com", job_title="LATE")  # arrives while paging: shifts nothing
    seen = [i["id"] for i in first["items"]]
    cursor = first["nextCursor"]
    while cursor:
        page = _page(api, eventTypes="memory.property.updated", limit=3, cursor=cursor)
        seen += [i["id"] for i in page["items"]]
        cursor = page["nextCursor"]
    expected = [e["id"] for e in reversed(api.get("/api/v1/triggers/memory.property.updated?limit=100").json)
                if e["value"] != "LATE"]
    assert seen == list(reversed(expected)) and len(seen) == 7 == len(set(seen))
    assert _page(other_api, eventTypes="memory.property.updated")["items"][0]["value"] == "CTO"
    # the bare polling trigger takes the same cursor and filters
    page2 = api.get(f"/api/v1/triggers/memory.property.updated?limit=3&cursor={first['nextCursor']}").json
    assert [i["value"] for i in page2] == ["T3", "T2", "T1"]
    assert api.get("/api/v1/feed?cursor=not-a-cursor").status_code == 400
    assert api.get("/api/v1/feed?eventTypes=nope.x").status_code == 422


def test_the_feed_filters_by_property_and_entity_type_and_tails(api, engine, monkeypatch):
    upsert(api, "a@acme.com", job_title="CTO", first_name="A")
    upsert(api, "b@acme.com", first_name="B")
    r = api.post("/api/v1/upsert", json={"website_url": "acme.com", "type": "company", "properties": {}})
    assert r.status_code == 200, r.json
    titles = api.get("/api/v1/triggers/memory.property.updated?property=job_title").json
    assert [t["value"] for t in titles] == ["CTO"]
    bulk = _page(api, eventTypes="memory.properties.bulk_updated", property="job_title")["items"]
    assert len(bulk) == 1 and bulk[0]["properties"]["job_title"]["value"] == "CTO"
    companies = api.get("/api/v1/triggers/record.created?type=company").json
    assert [c["keys"]["website_url"] for c in companies] == ["acme.com"]
    monkeypatch.setattr(webhooks_out, "FEED_SETTLE_S", 3600.0)  # tailing skips events younger than this
    assert _page(api, eventTypes="record.created", cursor="tail")["items"] == []
    monkeypatch.setattr(webhooks_out, "FEED_SETTLE_S", 0.0)
    tail = _page(api, eventTypes="record.created", cursor="tail", limit=2)
    assert [i["type"] for i in tail["items"]] == ["contact", "contact"] and tail["hasMore"]
    rest = _page(api, eventTypes="record.created", cursor=tail["nextCursor"], limit=2)
    assert [i["type"] for i in rest["items"]] == ["company"] and not rest["hasMore"]
    quiet = _page(api, eventTypes="record.created", cursor=rest["nextCursor"])
    assert quiet["items"] == [] and quiet["nextCursor"] == rest["nextCursor"]
    upsert(api, "c@acme.com")
    assert [i["keys"]["email"] for i in _page(api, eventTypes="record.created", cursor=quiet["nextCursor"])
            ["items"]] == ["c@acme.com"]


# --- Zapier searches and actions --------------------------------------------------------------------------
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def test_find_record_search_answers_an_array(api, other_api):
    upsert(api, "ann@acme.com", job_title="CTO")
    [rec] = api.get("/api/v1/searches/find-record?email=Ann@Acme.com").json
    assert rec["id"] == rec["recordId"] and rec["properties__job_title__value"] == "CTO"
    assert rec["keys__email"] == "ann@acme.com"
    assert api.post("/api/v1/searches/find-record", data="email=nobody%40acme.com", headers=FORM).json == []
    assert other_api.get("/api/v1/searches/find-record?email=ann@acme.com").json == []
    assert api.get("/api/v1/searches/find-record").status_code == 400


def test_smart_recall_search_answers_memories(api):
    assert api.post("/api/v1/memorize", json={"content": "Ann Lee prefers email and works on SSO rollout.",
                                              "email": "ann@acme.com"}).status_code == 200
    hits = api.post("/api/v1/searches/smart-recall", data="query=SSO%20rollout&email=ann%40acme.com",
                    headers=FORM).json
    assert hits and all("id" in h for h in hits) and "SSO" in hits[0]["text"]
    assert api.post("/api/v1/searches/smart-recall", data="email=ann%40acme.com", headers=FORM).status_code == 422


def test_company_record_and_batch_memorize_actions(api):
    r = api.post("/api/v1/actions/upsert-company", data="website_url=acme.com&properties__industry=Software",
                 headers=FORM)
    assert r.status_code == 200, r.json
    assert r.json["type"] == "company" and r.json["created"] is True
    r = api.post("/api/v1/actions/upsert-record", json={"type": "contact", "email": "zed@acme.com",
                                                         "properties": {"job_title": "CFO"}})
    assert r.status_code == 200, r.json
    assert r.json["recordId"].startswith("rec_") and r.json["updated"] == "job_title"
    r = api.post("/api/v1/actions/batch-memorize", json={"items": [
        {"content": "Zed signs off budgets.", "email": "zed@acme.com"},
        {"content": "Acme builds SaaS.", "website_url": "acme.com", "type": "company"}]})
    assert r.status_code == 200, r.json
    [found] = api.get("/api/v1/searches/find-record?email=zed@acme.com").json
    assert found["properties__job_title__value"] == "CFO"


PRIVATE = "http://10.1.2.3:5678/webhook"  # e.g. a self-hosted n8n / Zapier-compatible receiver on the LAN
LOCAL = ("http://127.0.0.1:5678/webhook", "http://localhost:5678/webhook", "http://169.254.169.254/latest",
         "http://[::ffff:127.0.0.1]:5678/x", "http://[fe80::1]/x")


def _hook_status(api: Any, url: str) -> int:
    r = api.post("/api/v1/hooks", json={"target_url": url, "event": "record.created"})
    assert r.status_code in (201, 422), r.json
    assert r.status_code == 201 or r.json["error"]["code"] == "blocked_url"
    return int(r.status_code)


@pytest.mark.settings(egress_allow_local_targets=False)  # the production default
def test_private_targets_need_the_org_allowlist_and_local_ones_an_operator_setting(api, engine):
    for url in (PRIVATE, *LOCAL):
        assert _hook_status(api, url) == 422, url
    everything = ["10.0.0.0/8", "127.0.0.0/8", "localhost", "169.254.0.0/16", "fe80::/10", "::ffff:127.0.0.1"]
    assert api.put("/api/v1/webhooks/allowlist", json={"hosts": everything}).status_code == 200
    assert _hook_status(api, PRIVATE) == 201  # a private network target: the org admin's allowlist is enough
    for url in LOCAL:  # loopback and link-local: refused whatever the allowlist says
        assert _hook_status(api, url) == 422, url
    sub = api.post("/api/v1/webhooks", json={"url": PRIVATE, "eventTypes": ["*"]}).json["data"]
    assert api.patch(f"/api/v1/webhooks/{sub['id']}", json={"url": LOCAL[0]}).status_code == 422


@pytest.mark.settings(egress_allow_local_targets=True)
def test_the_operator_setting_lets_the_allowlist_admit_local_targets(api):
    assert _hook_status(api, LOCAL[0]) == 422  # still needs the org allowlist
    assert api.put("/api/v1/webhooks/allowlist", json={"hosts": ["127.0.0.0/8", "localhost"]}).status_code == 200
    assert _hook_status(api, LOCAL[0]) == 201 and _hook_status(api, LOCAL[1]) == 201
    assert _hook_status(api, LOCAL[2]) == 422  # link-local is not on this allowlist


def test_delivery_time_check_refuses_local_targets_without_the_operator_setting(api, engine, receiver):
    allow_local(api)
    hook(api, receiver.url("/zap"), "record.created")  # subscribed while the setting allowed it
    upsert(api, "ann@acme.com")
    engine.webhooks_out.dispatch()
    [delivery_id] = engine.webhooks_out.due()
    strict = webhooks_out.WebhooksOut(engine.db, allow_local=False)  # the operator turned the setting off
    out = strict.attempt(delivery_id)
    assert out["status"] == "retrying" and "loopback or link-local" in out["error"]
    assert receiver.requests == []  # never contacted
