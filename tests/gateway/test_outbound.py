"""Outbound webhooks end to end: API → outbox → dispatcher → RQ deliver job → a real local HTTP receiver,
verified on the receiving side with the standardwebhooks library."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import redis
from sqlalchemy import select, update
from standardwebhooks import Webhook

from memrelay.engine.core.util import as_aware, utcnow
from memrelay.engine.egress.webhooks_out import DISPATCH_BATCH, RETRY_SCHEDULE_S, WebhooksOut
from memrelay.engine.stores.db.models_outbound import WebhookDelivery
from memrelay.engine.stores.outbox import recent
from memrelay.queue.connection import queue
from memrelay.worker.jobs.deliver import MAX_BATCHES_PER_TICK, dispatch_tick
from tests.support.outbox import skip_unsubscribed_backlog

FAST = (0.0,) * len(RETRY_SCHEDULE_S)


class Receiver:
    """A threaded HTTP server on 127.0.0.1 answering from a script (default 200) and recording requests."""

    def __init__(self) -> None:
        self.script: deque[tuple[int, dict[str, str]]] = deque()
        self.requests: list[dict[str, Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                owner.requests.append({"path": self.path, "headers": dict(self.headers.items()), "body": body})
                status, headers = owner.script.popleft() if owner.script else (200, {})
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def respond(self, *responses: int | tuple[int, dict[str, str]]) -> None:
        self.script.extend(r if isinstance(r, tuple) else (r, {}) for r in responses)

    def bodies(self, path: str | None = None) -> list[dict[str, Any]]:
        return [json.loads(r["body"]) for r in self.requests if path is None or r["path"] == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


# every retry immediate, in the gateway and in the worker (which builds its services from settings); the real
# schedule is asserted separately
fast = pytest.mark.settings(webhook_retry_schedule_s=list(FAST))


@pytest.fixture
def fast_schedule(engine: Any) -> WebhooksOut:
    """The engine's webhook service; the test must carry the ``fast`` mark."""
    svc: WebhooksOut = engine.webhooks_out
    assert svc.schedule == FAST, "mark the test with @fast"
    return svc


def allow_local(api: Any) -> None:
    r = api.put("/api/v1/webhooks/allowlist", json={"hosts": ["127.0.0.1"]})
    assert r.status_code == 200 and r.json["data"] == {"hosts": ["127.0.0.1/32"]}, r.json


def subscribe(api: Any, url: str, types: list[str] | None = None) -> dict[str, Any]:
    r = api.post("/api/v1/webhooks", json={"url": url, "eventTypes": types or ["memory.property.updated"],
                                           "description": "test"})
    assert r.status_code == 201, r.json
    return r.json["data"]


def upsert(api: Any, email: str, **props: Any) -> None:
    r = api.post("/api/v1/upsert", json={"email": email, "properties": props or {"job_title": "CTO"}})
    assert r.status_code == 200, r.json


def deliver(engine: Any, run_jobs: Any) -> dict[str, int]:
    """Dispatcher ticks until the outbox backlog is drained, then run the queued delivery jobs in-process.

    Earlier tests' rows that no subscription wants are skipped first (:func:`skip_unsubscribed_backlog`); every
    other row, this test's among them, goes through ``dispatch_tick``."""
    skip_unsubscribed_backlog(engine.db)
    conn = redis.Redis.from_url(engine.settings.redis_url)
    out = dispatch_tick(engine, conn)
    while out["events"] >= DISPATCH_BATCH * MAX_BATCHES_PER_TICK:
        more = dispatch_tick(engine, conn)
        out = {k: out[k] + more[k] for k in out}
    run_jobs()
    return out


def deliveries(api: Any, sub_id: str, **params: Any) -> dict[str, Any]:
    r = api.get(f"/api/v1/webhooks/{sub_id}/deliveries", query_string=params)
    assert r.status_code == 200, r.json
    return r.json["data"]


def make_due(engine: Any) -> None:
    with engine.db.session() as s:
        s.execute(update(WebhookDelivery).where(WebhookDelivery.status == "retrying").values(next_attempt_at=utcnow()))


# --- subscriptions ---------------------------------------------------------------------------------------
def test_subscription_crud_secret_shown_once_and_org_scoped(api, other_api, receiver):
    allow_local(api)
    sub = subscribe(api, receiver.url(), ["*"])
    assert sub["secret"].startswith("whsec_") and sub["eventTypes"] == ["*"] and sub["kind"] == "webhook"
    listed = api.get("/api/v1/webhooks").json["data"]["webhooks"]
    assert [w["id"] for w in listed] == [sub["id"]] and "secret" not in listed[0]
    assert "secret" not in api.get(f"/api/v1/webhooks/{sub['id']}").json["data"]
    r = api.patch(f"/api/v1/webhooks/{sub['id']}", json={"eventTypes": ["event.failed", "batch.completed"],
                                                         "active": False})
    assert r.status_code == 200 and r.json["data"]["eventTypes"] == ["event.failed", "batch.completed"]
    assert r.json["data"]["active"] is False
    assert other_api.get(f"/api/v1/webhooks/{sub['id']}").status_code == 404
    assert other_api.delete(f"/api/v1/webhooks/{sub['id']}").status_code == 404
    assert other_api.get("/api/v1/webhooks").json["data"] == {"webhooks": []}
    bad = api.post("/api/v1/webhooks", json={"url": receiver.url(), "eventTypes": ["memory.exploded"]})
    assert bad.status_code == 422 and bad.json["error"]["details"]["unknown"] == ["memory.exploded"]
    assert api.patch(f"/api/v1/webhooks/{sub['id']}", json={"eventTypes": []}).status_code == 422
    assert api.delete(f"/api/v1/webhooks/{sub['id']}").json == {"success": True, "data": {"id": sub["id"], "deleted": True}}
    assert api.get(f"/api/v1/webhooks/{sub['id']}").status_code == 404


def test_ssrf_targets_are_refused_unless_allowlisted(api, app, engine, receiver):
    from tests.conftest import make_api

    for url in (receiver.url(), "http://10.1.2.3/hook", "http://169.254.169.254/latest/meta-data/",
                "ftp://example.com/hook", "http://localhost:8080/hook", "http://[::1]/hook", "http://0.0.0.0/"):
        r = api.post("/api/v1/webhooks", json={"url": url, "eventTypes": ["*"]})
        assert r.status_code == 422 and r.json["error"]["code"] == "blocked_url", (url, r.json)
    reader = make_api(app, engine, scopes=("read", "write"))
    assert reader.put("/api/v1/webhooks/allowlist", json={"hosts": ["127.0.0.1"]}).status_code == 403
    assert api.put("/api/v1/webhooks/allowlist", json={"hosts": ["not a host!"]}).status_code == 422
    allow_local(api)
    assert api.get("/api/v1/webhooks/allowlist").json["data"] == {"hosts": ["127.0.0.1/32"]}
    assert api.post("/api/v1/webhooks", json={"url": receiver.url(), "eventTypes": ["*"]}).status_code == 201
    # the allowlist names 127.0.0.1 only: other private ranges stay refused
    assert api.post("/api/v1/webhooks", json={"url": "http://10.1.2.3/", "eventTypes": ["*"]}).status_code == 422


# --- delivery ------------------------------------------------------------------------------------------
@pytest.mark.usefixtures("backend")
def test_delivery_is_signed_per_standard_webhooks_and_logged(api, engine, run_jobs, receiver):
    allow_local(api)
    sub = subscribe(api, receiver.url())
    upsert(api, "ann@acme.com", job_title="CTO")
    upsert(api, "bob@acme.com", job_title="CEO")
    deliver(engine, run_jobs)
    assert len(receiver.requests) == 2
    with engine.db.read() as s:
        events = {e["id"]: e for e in recent(s, api.org_id)}
    for req in receiver.requests:
        payload = Webhook(sub["secret"]).verify(req["body"], req["headers"])  # the receiver's own check
        assert req["headers"]["webhook-id"] == payload["id"] and payload["id"] in events
        assert payload["type"] == "memory.property.updated" and payload["data"] == events[payload["id"]]["data"]
        assert req["headers"]["webhook-signature"].startswith("v1,")
        assert req["headers"]["Content-Type"] == "application/json"
    log = deliveries(api, sub["id"])
    assert log["total"] == 2 and [d["status"] for d in log["deliveries"]] == ["succeeded", "succeeded"]
    newest = log["deliveries"][0]
    assert newest["eventId"] == receiver.bodies()[1]["id"]  # newest first
    att = newest["log"][0]
    assert (att["attempt"], att["manual"], att["statusCode"], att["responseSnippet"], att["error"]) == (
        1, False, 200, "ok", None)
    assert att["durationMs"] >= 0 and att["at"]
    deliver(engine, run_jobs)
    assert len(receiver.requests) == 2  # nothing twice
    page = deliveries(api, sub["id"], page=2, pageSize=1)
    assert page["deliveries"][0]["eventId"] == receiver.bodies()[0]["id"] and page["hasMore"] is False


@fast
def test_retries_honour_retry_after_and_keep_the_webhook_id(api, engine, run_jobs, receiver, fast_schedule):
    allow_local(api)
    sub = subscribe(api, receiver.url())
    receiver.respond(500, (429, {"Retry-After": "120"}), (503, {"Retry-After": "120"}), 200)
    upsert(api, "ann@acme.com")
    deliver(engine, run_jobs)  # attempt 1: 500, the (fast) schedule retries at once
    deliver(engine, run_jobs)  # attempt 2: 429 asks for 120 s, later than the schedule
    d = deliveries(api, sub["id"])["deliveries"][0]
    assert d["status"] == "retrying" and [a["statusCode"] for a in d["log"]] == [500, 429]
    wait = datetime.fromisoformat(d["nextAttemptAt"]) - datetime.fromisoformat(d["log"][-1]["at"])
    assert wait == timedelta(seconds=120)
    deliver(engine, run_jobs)
    assert len(receiver.requests) == 2  # not due yet
    make_due(engine)
    deliver(engine, run_jobs)  # attempt 3: 503 is not a throttle status, its Retry-After is ignored
    deliver(engine, run_jobs)  # attempt 4: 200
    d = deliveries(api, sub["id"])["deliveries"][0]
    assert d["status"] == "succeeded" and [a["statusCode"] for a in d["log"]] == [500, 429, 503, 200]
    assert len({r["headers"]["webhook-id"] for r in receiver.requests}) == 1
    for req in receiver.requests:
        Webhook(sub["secret"]).verify(req["body"], req["headers"])


@fast
def test_410_disables_the_subscription_and_stops_retrying(api, engine, run_jobs, receiver, fast_schedule):
    allow_local(api)
    sub = subscribe(api, receiver.url())
    receiver.respond(410)
    upsert(api, "ann@acme.com")
    deliver(engine, run_jobs)
    upsert(api, "bob@acme.com")
    deliver(engine, run_jobs)
    deliver(engine, run_jobs)
    assert len(receiver.requests) == 1
    state = api.get(f"/api/v1/webhooks/{sub['id']}").json["data"]
    assert state["active"] is False and "410" in state["disabledReason"]
    log = deliveries(api, sub["id"])
    assert [d["status"] for d in log["deliveries"]] == ["cancelled"]  # bob's event found no active subscription
    r = api.post(f"/api/v1/webhooks/{sub['id']}/deliveries/{log['deliveries'][0]['id']}/redeliver")
    assert r.status_code == 409
    assert api.patch(f"/api/v1/webhooks/{sub['id']}", json={"active": True}).json["data"]["disabledReason"] is None


@pytest.mark.settings(webhook_retry_schedule_s=[0, 0, 0])
def test_failing_target_goes_dead_after_the_last_attempt(api, engine, run_jobs, receiver):
    allow_local(api)
    sub = subscribe(api, receiver.url())
    receiver.respond(500, 502, 503, 500)
    upsert(api, "ann@acme.com")
    for _ in range(4):
        deliver(engine, run_jobs)
    d = deliveries(api, sub["id"])["deliveries"][0]
    assert d["status"] == "dead" and d["attempts"] == 3 and d["nextAttemptAt"] is None
    assert [a["statusCode"] for a in d["log"]] == [500, 502, 503] and d["lastError"] == "HTTP 503"
    assert len(receiver.requests) == 3


def test_real_retry_schedule_values(api, engine, run_jobs, receiver):
    assert RETRY_SCHEDULE_S == (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
    assert WebhooksOut(engine.db).schedule == RETRY_SCHEDULE_S
    allow_local(api)
    subscribe(api, receiver.url())
    receiver.respond(*[500] * len(RETRY_SCHEDULE_S))
    upsert(api, "ann@acme.com")
    for attempt, delay in enumerate([*RETRY_SCHEDULE_S[1:], None], start=1):
        before = utcnow()
        deliver(engine, run_jobs)
        with engine.db.read() as s:
            d = s.scalars(select(WebhookDelivery).where(WebhookDelivery.org_id == api.org_id)).one()
        assert d.attempts == attempt
        if delay is None:
            assert d.status == "dead" and d.next_attempt_at is None
        else:
            wait = (as_aware(d.next_attempt_at) - before).total_seconds()
            assert d.status == "retrying" and delay <= wait < delay + 5, (attempt, wait)
            make_due(engine)
    assert len(receiver.requests) == len(RETRY_SCHEDULE_S)


@fast
def test_address_is_checked_again_at_delivery_time(api, engine, run_jobs, receiver, fast_schedule):
    allow_local(api)
    sub = subscribe(api, receiver.url())
    assert api.put("/api/v1/webhooks/allowlist", json={"hosts": []}).status_code == 200
    upsert(api, "ann@acme.com")
    deliver(engine, run_jobs)
    d = deliveries(api, sub["id"])["deliveries"][0]
    assert receiver.requests == [] and d["status"] == "retrying"
    assert d["log"][0]["statusCode"] is None and d["log"][0]["error"].startswith("blocked: 127.0.0.1 resolves")


def test_manual_redelivery_resends_with_the_same_webhook_id(api, other_api, engine, run_jobs, receiver):
    allow_local(api)
    sub = subscribe(api, receiver.url())
    upsert(api, "ann@acme.com")
    deliver(engine, run_jobs)
    did = deliveries(api, sub["id"])["deliveries"][0]["id"]
    assert other_api.post(f"/api/v1/webhooks/{sub['id']}/deliveries/{did}/redeliver").status_code == 404
    r = api.post(f"/api/v1/webhooks/{sub['id']}/deliveries/{did}/redeliver")
    assert r.status_code == 202 and r.json["data"]["status"] == "manual"
    run_jobs()
    assert len(receiver.requests) == 2
    assert receiver.requests[0]["headers"]["webhook-id"] == receiver.requests[1]["headers"]["webhook-id"]
    d = deliveries(api, sub["id"])["deliveries"][0]
    assert d["status"] == "succeeded" and [(a["attempt"], a["manual"]) for a in d["log"]] == [(1, False), (2, True)]


@pytest.mark.usefixtures("backend")
def test_an_orgs_events_never_reach_another_orgs_subscriptions(api, other_api, engine, run_jobs, receiver):
    for a in (api, other_api):
        allow_local(a)
    mine = subscribe(api, receiver.url("/a"), ["*"])
    theirs = subscribe(other_api, receiver.url("/b"), ["*"])
    upsert(api, "ann@acme.com")
    upsert(api, "bob@acme.com")
    deliver(engine, run_jobs)  # each upsert: record.created + memory.property.updated
    assert {r["path"] for r in receiver.requests} == {"/a"} and len(receiver.requests) == 4
    assert deliveries(other_api, theirs["id"])["total"] == 0
    assert other_api.get(f"/api/v1/webhooks/{mine['id']}/deliveries").status_code == 404
    upsert(other_api, "cid@other.com")
    deliver(engine, run_jobs)
    assert [r["path"] for r in receiver.requests].count("/b") == 2
    assert deliveries(api, mine["id"])["total"] == 4


def test_events_before_a_subscription_are_not_delivered_to_it(api, engine, run_jobs, receiver):
    allow_local(api)
    upsert(api, "ann@acme.com")
    sub = subscribe(api, receiver.url())
    upsert(api, "bob@acme.com")
    deliver(engine, run_jobs)
    assert len(receiver.requests) == 1 and deliveries(api, sub["id"])["total"] == 1
    assert receiver.bodies()[0]["data"]["value"] == "CTO"


def test_dispatcher_loop_delivers_in_the_background(api, engine, receiver, settings):
    from memrelay.worker.jobs.deliver import start_dispatcher
    from memrelay.worker.main import run_worker

    allow_local(api)
    subscribe(api, receiver.url())
    upsert(api, "ann@acme.com")
    conn = redis.Redis.from_url(settings.redis_url)
    stop = threading.Event()
    start_dispatcher(engine, conn, stop, every_s=0.1)
    try:
        deadline = utcnow() + timedelta(seconds=30)
        while not queue(conn, "deliver").count and utcnow() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
    run_worker(settings, burst=True)
    assert len(receiver.requests) == 1
