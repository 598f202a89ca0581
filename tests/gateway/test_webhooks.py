"""Webhook gateway end to end: verify → event log → RQ job → engine, with real Redis/RQ and SQL."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import subprocess
import sys
import textwrap
import time

import pytest
import redis
from sqlalchemy import func, select

from memrelay.connectors.hubspot.webhook import v3_signature
from memrelay.engine.stores.db.models import InboundEvent, Memory, PropertyHistory, Record
from memrelay.worker.sweeper import sweep_once
from tests.connectors.connector_samples import ORG_ID, envelope, notification

HUBSPOT_SECRET = "hs-client-secret"


def hubspot_source(api, **config):
    r = api.post("/api/v1/sources", json={"connector": "hubspot", "name": "HubSpot", "secret": HUBSPOT_SECRET,
                                          "config": {"fetch": False, **config}})
    assert r.status_code == 201 and r.json["success"] is True, r.json
    return r.json["data"]


def hs_event(event_id, object_id, prop, value, occurred_ms, *, kind="contact.propertyChange"):
    return {"eventId": event_id, "subscriptionId": 77, "portalId": 62515, "appId": 1, "occurredAt": occurred_ms,
            "subscriptionType": kind, "attemptNumber": 0, "objectId": object_id, "changeSource": "CRM",
            "propertyName": prop, "propertyValue": value}


def send_hubspot(client, src, events, *, secret=HUBSPOT_SECRET, ts_ms=None, body=None):
    body = body if body is not None else json.dumps(events).encode()
    ts = str(ts_ms if ts_ms is not None else int(time.time() * 1000))
    url = "http://localhost" + src["webhookPath"]
    sig = v3_signature(secret, "POST", url, body, ts)
    return client.post(src["webhookPath"], data=body, headers={
        "Content-Type": "application/json", "X-HubSpot-Signature-v3": sig, "X-HubSpot-Request-Timestamp": ts,
        "X-HubSpot-Signature-Version": "v3"})


def contact_by_hubspot_id(api, object_id):
    r = api.post("/api/v1/search", json={"type": "contact", "customKeyName": "hubspot_contact_id",
                                         "customKeyValue": str(object_id)}).json["data"]
    return r["results"][0] if r["results"] else None


@pytest.mark.own_database  # sweep_once counts every org's due events
@pytest.mark.usefixtures("backend", "redis_backend")
def test_hubspot_delivery_is_verified_logged_enqueued_and_applied(api, engine, run_jobs):
    src = hubspot_source(api)
    now = int(time.time() * 1000)
    events = [hs_event(1, 501, "email", "Ann@Acme.com", now - 3000, kind="contact.creation"),
              hs_event(2, 501, "jobtitle", "CTO", now - 2000)]
    r = send_hubspot(api.client, src, events)
    assert r.status_code == 202 and r.json["accepted"] == 2 and r.json["duplicates"] == 0
    with engine.db.read() as s:
        logged = s.scalars(select(InboundEvent).where(InboundEvent.org_id == api.org_id)).all()
    assert {e.status for e in logged} == {"received"}
    from memrelay.queue.jobs import live_job_ids

    conn = redis.Redis.from_url(engine.settings.redis_url)
    assert live_job_ids(conn, [e.id for e in logged]) == {e.id for e in logged}  # job id = event id
    assert sweep_once(engine, conn, stale_after_s=0) == 0  # already queued: the sweeper leaves them
    run_jobs()
    rec = contact_by_hubspot_id(api, 501)
    assert rec["properties"]["job_title"]["value"] == "CTO"
    assert rec["properties"]["job_title"]["source"] == "hubspot"
    listed = api.get("/api/v1/events?status=processed").json["data"]
    assert len(listed["events"]) == 2 and listed["counts"] == {"processed": 2}
    # a redelivery (HubSpot retries) is acknowledged and changes nothing
    again = send_hubspot(api.client, src, events)
    assert again.status_code == 200 and again.json == {"accepted": 0, "duplicates": 2, "eventIds": []}
    assert api.get("/api/v1/events").json["data"]["counts"] == {"processed": 2}


@pytest.mark.parametrize("tamper", ["body", "secret", "stale", "missing"])
def test_bad_signatures_are_401_and_store_nothing(api, engine, tamper):
    src = hubspot_source(api)
    events = [hs_event(9, 9, "jobtitle", "X", int(time.time() * 1000))]
    body = json.dumps(events).encode()
    if tamper == "body":
        ts = str(int(time.time() * 1000))
        sig = v3_signature(HUBSPOT_SECRET, "POST", "http://localhost" + src["webhookPath"], body, ts)
        r = api.client.post(src["webhookPath"], data=body + b" ", headers={
            "X-HubSpot-Signature-v3": sig, "X-HubSpot-Request-Timestamp": ts, "Content-Type": "application/json"})
    elif tamper == "secret":
        r = send_hubspot(api.client, src, events, secret="wrong")
    elif tamper == "stale":
        r = send_hubspot(api.client, src, events, ts_ms=int(time.time() * 1000) - 6 * 60 * 1000)
    else:
        r = api.client.post(src["webhookPath"], data=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 401 and r.json["error"]["code"] == "invalid_signature"
    assert HUBSPOT_SECRET not in json.dumps(r.json)
    with engine.db.read() as s:
        assert s.scalar(select(InboundEvent.id).where(InboundEvent.org_id == api.org_id)) is None


def test_unknown_source_malformed_and_oversize(api, settings):
    src = hubspot_source(api)
    assert api.client.post("/webhooks/hubspot/src_nope", data=b"[]").status_code == 404
    assert api.client.post(src["webhookPath"].replace("hubspot", "stripe"), data=b"[]").status_code == 404
    r = send_hubspot(api.client, src, None, body=b'[{"eventId": 1,')
    assert r.status_code == 400 and r.json["error"]["code"] == "bad_request"
    r = send_hubspot(api.client, src, None, body=b"x" * (settings.max_request_bytes + 10))
    assert r.status_code == 413


@pytest.mark.usefixtures("redis_backend")
def test_redis_down_at_enqueue_then_sweeper_recovers(api, app, engine, run_jobs, settings):
    src = hubspot_source(api)
    from memrelay.gateway.state import state

    with app.app_context():
        real = state().redis
        state().redis = redis.Redis(unix_socket_path="/nonexistent/redis.sock")
        try:
            r = send_hubspot(api.client, src, [hs_event(5, 777, "jobtitle", "Founder", int(time.time() * 1000))])
        finally:
            state().redis = real
    assert r.status_code == 202  # accepted: the event log, not Redis, is the truth
    with engine.db.read() as s:
        assert s.scalar(select(InboundEvent.status).where(InboundEvent.org_id == api.org_id)) == "received"
    run_jobs()
    assert contact_by_hubspot_id(api, 777) is None  # nothing was queued
    assert sweep_once(engine, redis.Redis.from_url(settings.redis_url), stale_after_s=0) == 1
    run_jobs()
    assert contact_by_hubspot_id(api, 777)["properties"]["job_title"]["value"] == "Founder"


@pytest.mark.settings(event_max_attempts=3)
def test_failures_retry_then_dead_letter_then_replay(api, engine, run_jobs, settings):
    bad_mapping = textwrap.dedent("""
        version: 1
        connector: hubspot
        objects:
          contact:
            entity_type: contact
            keys:
              custom: {hubspot_contact_id: id}
            properties:
              lifecycle_stage: jobtitle
        """)
    r = api.post("/api/v1/sources", json={"connector": "hubspot", "secret": HUBSPOT_SECRET, "mapping": bad_mapping,
                                          "config": {"fetch": False}})
    src = r.json["data"]
    send_hubspot(api.client, src, [hs_event(7, 42, "jobtitle", "Astronaut", int(time.time() * 1000))])
    conn = redis.Redis.from_url(settings.redis_url)
    assert engine.events.max_attempts == 3  # from settings, like the worker's own services
    from memrelay.engine.core.util import utcnow
    from memrelay.engine.stores.db.models import InboundEvent as Ev

    for _ in range(5):
        run_jobs()
        with engine.db.session() as s:  # make the next retry due now instead of after the backoff
            for ev in s.scalars(select(Ev).where(Ev.org_id == api.org_id, Ev.status == "failed")):
                ev.next_attempt_at = utcnow()
        sweep_once(engine, conn, stale_after_s=0)
    dead = api.get("/api/v1/events?status=dead").json["data"]["events"]
    assert len(dead) == 1 and dead[0]["attempts"] == 3 and "lifecycle_stage" in dead[0]["lastError"]
    shown = api.get(f"/api/v1/events/{dead[0]['id']}").json["data"]
    assert shown["payload"]["object_id"] == "42"
    # fix the mapping, replay the dead letter
    fixed = bad_mapping.replace("lifecycle_stage: jobtitle", "job_title: jobtitle")
    assert api.patch(f"/api/v1/sources/{src['id']}", json={"mapping": fixed}).status_code == 200
    assert api.post(f"/api/v1/events/{dead[0]['id']}/replay").status_code == 202
    run_jobs()
    assert contact_by_hubspot_id(api, 42)["properties"]["job_title"]["value"] == "Astronaut"
    bad_yaml = api.post("/api/v1/sources", json={"connector": "hubspot", "mapping": "version: 1\nobjects: [\n"})
    assert bad_yaml.status_code == 422


def test_merge_deletion_restore_and_privacy_deletion(api, run_jobs):
    src = hubspot_source(api)
    t = int(time.time() * 1000) - 60_000
    send_hubspot(api.client, src, [hs_event(1, 10, "jobtitle", "CEO", t), hs_event(2, 11, "city", "Paris", t + 1),
                                   hs_event(3, 11, "jobtitle", "Old title", t - 5000)])
    run_jobs()
    merge = {**hs_event(4, 10, None, None, t + 2, kind="contact.merge"), "primaryObjectId": 10,
             "mergedObjectIds": [11], "newObjectId": 10}
    send_hubspot(api.client, src, [merge])
    run_jobs()
    survivor = contact_by_hubspot_id(api, 10)
    assert survivor["properties"]["city"]["value"] == "Paris"
    assert survivor["properties"]["job_title"]["value"] == "CEO"  # newer value kept
    assert set(survivor["keys"]["customKeys"]["hubspot_contact_id"] for _ in [0]) <= {"10", "11"}
    assert contact_by_hubspot_id(api, 11)["recordId"] == survivor["recordId"]  # merged key moved
    send_hubspot(api.client, src, [hs_event(5, 10, None, None, t + 3, kind="contact.deletion")])
    run_jobs()
    assert contact_by_hubspot_id(api, 10) is None
    send_hubspot(api.client, src, [hs_event(6, 10, None, None, t + 4, kind="contact.restore")])
    run_jobs()
    assert contact_by_hubspot_id(api, 10) is not None
    send_hubspot(api.client, src, [hs_event(7, 10, None, None, t + 5, kind="contact.privacyDeletion")])
    run_jobs()
    assert contact_by_hubspot_id(api, 10) is None
    assert api.post("/api/v1/memory/cancel-deletion", json={"customKeyName": "hubspot_contact_id",
                                                            "customKeyValue": "10"}).status_code == 404


def test_stripe_invoice_becomes_properties_and_memory(api, engine, run_jobs):
    secret = "whsec_test_secret"
    src = api.post("/api/v1/sources", json={"connector": "stripe", "secret": secret}).json["data"]
    event = {"id": "evt_1", "object": "event", "type": "invoice.paid", "created": int(time.time()) - 10,
             "data": {"object": {"object": "invoice", "id": "in_1", "number": "INV-7", "customer": "cus_9",
                                 "customer_email": "Buyer@Shop.io", "amount_paid": 129900, "currency": "jpy",
                                 "status": "paid"}}}
    body = json.dumps(event).encode()
    t = int(time.time())
    sig = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    r = api.client.post(src["webhookPath"], data=body, headers={"Stripe-Signature": f"t={t},v1={sig}",
                                                                "Content-Type": "application/json"})
    assert r.status_code == 202, r.json
    run_jobs()
    rec = api.post("/api/v1/search", json={"email": "buyer@shop.io"}).json["data"]["results"][0]
    assert rec["properties"]["lifecycle_stage"]["value"] == "customer"
    with engine.db.read() as s:
        texts = [m.text for m in s.scalars(select(Memory).where(Memory.record_id == rec["recordId"]))]
    assert any("129,900" in t or "129900" in t for t in texts), texts  # JPY has no minor unit


def test_salesforce_outbound_message_acks_and_upserts(api, run_jobs):
    src = api.post("/api/v1/sources", json={"connector": "salesforce", "config": {
        "allowed_org_ids": [ORG_ID], "fetch": False}}).json["data"]
    body = envelope(notification("04l1", "Contact", "<sf:Id>0035g00000XyZ1</sf:Id><sf:Email>sf@acme.com</sf:Email>"
                                 "<sf:Title>Buyer</sf:Title><sf:LastModifiedDate>2026-05-01T10:00:00.000Z"
                                 "</sf:LastModifiedDate>"))
    r = api.client.post(src["webhookPath"], data=body, headers={"Content-Type": "text/xml"})
    assert r.status_code == 200 and r.content_type.startswith("text/xml")
    assert b"<Ack>true</Ack>" in r.data
    run_jobs()
    rec = api.post("/api/v1/search", json={"email": "sf@acme.com"}).json["data"]["results"][0]
    assert rec["properties"]["job_title"]["value"] == "Buyer"
    wrong_token = src["webhookPath"].rsplit("/", 1)[0] + "/not-the-token"
    assert api.client.post(wrong_token, data=body, headers={"Content-Type": "text/xml"}).status_code == 401
    other_org = envelope(notification("04l2", "Contact", "<sf:Id>1</sf:Id>"), org_id="00D000000000OTHER")
    assert api.client.post(src["webhookPath"], data=other_org, headers={"Content-Type": "text/xml"}).status_code == 401


@pytest.mark.usefixtures("backend")
def test_reliability_duplicates_out_of_order_and_a_killed_worker(api, engine, run_jobs, settings, tmp_path):
    """Each event 10 times, shuffled, one worker killed mid-job: every event takes effect exactly once and
    the final values are those with the newest source timestamps."""
    src = hubspot_source(api)
    base = int(time.time() * 1000) - 600_000
    titles = ["Intern", "Engineer", "Senior Engineer", "Staff Engineer", "CTO"]
    events = [hs_event(100 + i, 900, "jobtitle", title, base + i * 1000) for i, title in enumerate(titles)]
    events += [hs_event(200 + i, 900, "city", city, base + i * 1000) for i, city in enumerate(["Lyon", "Nice", "Oslo"])]
    deliveries = [e for e in events for _ in range(10)]
    random.Random(3).shuffle(deliveries)
    for i in range(0, len(deliveries), 7):  # HubSpot batches
        assert send_hubspot(api.client, src, deliveries[i:i + 7]).status_code in (200, 202)
    with engine.db.read() as s:
        ids = list(s.scalars(select(InboundEvent.id).where(InboundEvent.org_id == api.org_id)))
    assert len(ids) == len(events)  # ten deliveries each, one log entry each

    # a separate worker process takes one job and is killed after its writes, before completing it
    victim = ids[0]
    script = textwrap.dedent(f"""
        import os
        from memrelay.composition import Services
        from memrelay.engine.core.settings import Settings
        import redis
        from memrelay.worker.context import JobContext
        from memrelay.worker.jobs.events import process_event
        eng = Services(Settings(data_dir={str(tmp_path / 'victim')!r}, database_url={settings.sql_url!r},
                              redis_url={settings.redis_url!r}, milvus_uri="http://127.0.0.1:1",
                              secret_keys={settings.secret_keys.get_secret_value()!r}))
        real = eng.records.upsert
        def upsert_then_die(*a, **kw):
            real(*a, **kw)
            os._exit(137)   # SIGKILL-like: no cleanup, no status update
        eng.records.upsert = upsert_then_die
        process_event(JobContext(services=eng, redis=redis.Redis.from_url({settings.redis_url!r})), {victim!r})
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=str(tmp_path), capture_output=True, timeout=120,
                          env={"PYTHONPATH": str(__import__("pathlib").Path.cwd()), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 137, proc.stderr.decode()[-2000:]
    with engine.db.read() as s:
        victim_row = s.get(InboundEvent, victim)
        assert victim_row.status == "processing" and victim_row.attempts == 1
        # the dead attempt's writes never committed: effect and completion are one transaction
        assert s.scalar(select(func.count()).select_from(PropertyHistory).join(
            Record, Record.id == PropertyHistory.record_id).where(Record.org_id == api.org_id)) == 0
    # processes everything else; the victim's (unexpired) lease makes its queued job skip it, whenever it runs
    run_jobs()
    # no job is alive for the leased event any more: the sweeper gives the lease back and re-drives it at once
    assert sweep_once(engine, redis.Redis.from_url(settings.redis_url), stale_after_s=3600) == 1
    run_jobs()
    with engine.db.read() as s:
        rows = s.scalars(select(InboundEvent).where(InboundEvent.org_id == api.org_id)).all()
        assert {r.status for r in rows} == {"processed"}
        assert next(r for r in rows if r.id == victim).attempts == 2
        rec = contact_by_hubspot_id(api, 900)
        mems = s.scalars(select(Memory).where(Memory.record_id == rec["recordId"])).all()
    assert rec["properties"]["job_title"]["value"] == "CTO"
    assert rec["properties"]["city"]["value"] == "Oslo"
    changed = [m for m in mems if m.text.startswith("Job title changed to")]
    assert len({m.text for m in changed}) == len(titles)
    assert all(m.seen_count == 1 for m in changed), [(m.text, m.seen_count) for m in changed]
    hist = api.post("/api/v1/memory/property-history", json={"customKeyName": "hubspot_contact_id",
                                                             "customKeyValue": "900", "propertyName": "job_title",
                                                             "pageSize": 100}).json["data"]
    assert sum(1 for h in hist["items"] if h["applied"]) <= len(titles)


def test_typeform_signed_submission(api, run_jobs):
    from tests.connectors.connector_samples import TYPEFORM_BODY, TYPEFORM_SECRET, TYPEFORM_SIGNATURE

    src = api.post("/api/v1/sources", json={"connector": "typeform", "secret": TYPEFORM_SECRET}).json["data"]
    r = api.client.post(src["webhookPath"], data=TYPEFORM_BODY, headers={
        "Typeform-Signature": TYPEFORM_SIGNATURE, "Content-Type": "application/json"})
    assert r.status_code == 202, r.json
    bad = api.client.post(src["webhookPath"], data=TYPEFORM_BODY, headers={
        "Typeform-Signature": "sha256=AAAA", "Content-Type": "application/json"})
    assert bad.status_code == 401
    run_jobs()
    rec = api.post("/api/v1/search", json={"email": "ann.lee@acme.com"}).json["data"]["results"][0]
    assert rec["properties"]["first_name"]["value"] == "Ann"


def test_generic_form_encoded_action_with_api_key_or_token(api, other_api, run_jobs):
    src = api.post("/api/v1/sources", json={"connector": "generic", "name": "Zapier"}).json["data"]
    base = src["webhookPath"].rsplit("/", 1)[0]
    form = {"object": "contact", "email": "Zed@Example.org", "first_name": "Zed", "company__name": "Ex",
            "note": "Asked about SSO and audit logs."}
    r = api.client.post(base, data=form, headers={"X-API-Key": api.key})
    assert r.status_code == 202, r.json
    assert api.client.post(base, data=form, headers={"X-API-Key": other_api.key}).status_code == 404
    assert api.client.post(base, data=form).status_code == 401  # neither key nor token
    by_token = api.client.post(src["webhookPath"], data={**form, "first_name": "Zeddy"})
    assert by_token.status_code == 202
    run_jobs()
    rec = api.post("/api/v1/search", json={"email": "zed@example.org"}).json["data"]["results"][0]
    assert rec["properties"]["first_name"]["value"] in ("Zed", "Zeddy")
