"""Zapier surface: REST hook subscribe/unsubscribe (sharing webhook delivery), polling triggers (newest first,
stable ids), flat actions taking form-encoded ``__``-flattened bodies, and the connection test."""

from __future__ import annotations

from typing import Any

from standardwebhooks import Webhook

from memrelay.engine.stores.db.models_outbound import WebhookSubscription
from memrelay.gateway.blueprints.outbound import flatten
from tests.gateway import test_outbound
from tests.gateway.test_outbound import allow_local, deliver, fast, upsert

receiver = test_outbound.receiver  # the shared fixtures
fast_schedule = test_outbound.fast_schedule

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def hook(api: Any, url: str, event: str = "memory.property.updated") -> str:
    r = api.post("/api/v1/hooks", json={"target_url": url, "event": event})
    assert r.status_code == 201, r.json
    assert set(r.json) == {"id", "event", "target_url", "secret"} and r.json["secret"].startswith("whsec_")
    return r.json["id"]


def test_connection_test_endpoint(api):
    r = api.get("/api/v1/me")
    assert r.status_code == 200 and r.json["data"]["org"]["id"] == api.org_id
    assert api.client.get("/api/v1/me").status_code == 401


def test_rest_hook_receives_the_flat_event_and_unsubscribes(api, other_api, engine, run_jobs, receiver):
    allow_local(api)
    hid = hook(api, receiver.url("/zap"))
    assert api.get("/api/v1/webhooks?kind=zapier_hook").json["data"]["webhooks"][0]["id"] == hid
    upsert(api, "ann@acme.com", job_title="CTO")
    deliver(engine, run_jobs)
    [body] = receiver.bodies("/zap")
    polled = api.get("/api/v1/triggers/memory.property.updated").json
    assert body == polled[0]  # a live hook and the polling sample have the same shape and id
    assert body["id"].startswith("evt_") and body["event"] == "memory.property.updated"
    assert body["propertyName"] == "job_title" and body["value"] == "CTO" and body["type"] == "contact"
    with engine.db.read() as s:
        secret = s.get(WebhookSubscription, hid).secret
    Webhook(secret).verify(receiver.requests[0]["body"], receiver.requests[0]["headers"])  # signed as well
    assert other_api.delete(f"/api/v1/hooks/{hid}").status_code == 404
    assert api.delete(f"/api/v1/hooks/{hid}").json == {"id": hid, "deleted": True}
    assert api.delete(f"/api/v1/hooks/{hid}").status_code == 404
    upsert(api, "bob@acme.com")
    deliver(engine, run_jobs)
    assert len(receiver.requests) == 1


def test_hook_validation_and_kind_separation(api, receiver):
    allow_local(api)
    r = api.post("/api/v1/hooks", json={"target_url": receiver.url(), "event": "nope.happened"})
    assert r.status_code == 422
    assert api.post("/api/v1/hooks", json={"target_url": "http://10.0.0.1/x", "event": "event.failed"}).status_code == 422
    assert api.post("/api/v1/hooks", json={"event": "event.failed"}).status_code == 422
    sub = api.post("/api/v1/webhooks", json={"url": receiver.url(), "eventTypes": ["*"]}).json["data"]
    assert api.delete(f"/api/v1/hooks/{sub['id']}").status_code == 404  # a hook id is not any subscription id


@fast
def test_410_from_zapier_unsubscribes_the_hook(api, engine, run_jobs, receiver, fast_schedule):
    allow_local(api)
    hid = hook(api, receiver.url())
    receiver.respond(410)
    upsert(api, "ann@acme.com")
    deliver(engine, run_jobs)
    upsert(api, "bob@acme.com")
    deliver(engine, run_jobs)
    assert len(receiver.requests) == 1
    assert api.get(f"/api/v1/webhooks/{hid}").json["data"]["active"] is False


def test_polling_trigger_is_newest_first_with_stable_ids_and_org_scoped(api, other_api):
    for i, email in enumerate(("a@x.com", "b@x.com", "c@x.com")):
        upsert(api, email, job_title=f"T{i}")
    first = api.get("/api/v1/triggers/memory.property.updated").json
    assert [item["value"] for item in first] == ["T2", "T1", "T0"]
    assert len({item["id"] for item in first}) == 3
    upsert(api, "d@x.com", job_title="T3")
    second = api.get("/api/v1/triggers/memory.property.updated").json
    assert [item["id"] for item in second[1:]] == [item["id"] for item in first]  # ids never change
    assert second[0]["value"] == "T3"
    assert len(api.get("/api/v1/triggers/memory.property.updated?limit=2").json) == 2
    assert other_api.get("/api/v1/triggers/memory.property.updated").json == []
    assert api.get("/api/v1/triggers/event.failed").json == []
    assert api.get("/api/v1/triggers/no.such.event").status_code == 422


def test_upsert_contact_action_takes_form_encoded_flattened_fields(api):
    r = api.post("/api/v1/actions/upsert-contact", data="email=Ann%40Acme.com&properties__job_title=CTO"
                 "&properties__first_name=Ann", headers=FORM)
    assert r.status_code == 200, r.json
    out = r.json
    assert out["type"] == "contact" and out["created"] is True and out["primaryKey"] == "email:ann@acme.com"
    assert out["updated"] == "first_name,job_title"  # lists come back comma-joined: every value is flat
    assert all(not isinstance(v, dict | list) for v in out.values())
    rec = api.post("/api/v1/search", json={"type": "contact", "email": "ann@acme.com"}).json["data"]["results"][0]
    assert rec["properties"]["job_title"]["value"] == "CTO" and rec["properties"]["job_title"]["source"] == "zapier"
    again = api.post("/api/v1/actions/upsert-contact", json={"email": "ann@acme.com", "properties__job_title": "CEO"})
    assert again.status_code == 200 and again.json["created"] is False and again.json["updated"] == "job_title"
    bad = api.post("/api/v1/actions/upsert-contact", data="properties__job_title=CTO", headers=FORM)
    assert bad.status_code == 422 and "email" in bad.json["error"]["message"]


def test_memorize_action_takes_form_fields_and_answers_flat(api):
    r = api.post("/api/v1/actions/memorize", data="content=Ann+Lee+is+the+CTO+at+Acme.+She+prefers+email."
                 "&email=ann%40acme.com&tags=crm%2C+zapier&speaker=sdr%40us.com", headers=FORM)
    assert r.status_code == 200, r.json
    out = r.json
    assert out["type"] == "contact" and out["memoriesCreated"] >= 1
    assert "timings__extract" in out and all(not isinstance(v, dict | list) for v in out.values())
    assert api.post("/api/v1/actions/memorize", data="email=ann%40acme.com", headers=FORM).status_code == 422


def test_flatten_gives_zapier_friendly_keys():
    assert flatten({"a": {"b": 1, "c": [1, 2]}, "d": [{"e": "x"}, {"e": None}], "f": [], "g": None}) == {
        "a__b": 1, "a__c": "1,2", "d__0__e": "x", "d__1__e": None, "f": "", "g": None}
