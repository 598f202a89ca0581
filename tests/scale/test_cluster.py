"""The scale configuration end to end (``make test-scale``): 2 ``memrelay serve`` gateways and 3 ``memrelay
worker`` processes on PostgreSQL, the machine's Redis (one logical database, flushed first) and the real Milvus
server, under a bounded mixed workload with redeliveries, a worker ``kill -9`` and a drop of every worker's
Redis connection. Checks exactly-once, nothing stuck, every memory indexed and cross-gateway reads.
Waits are bounded polls; nothing asserts wall-clock speed."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from rq import Queue
from rq.registry import FailedJobRegistry, StartedJobRegistry
from sqlalchemy import func, select
from stripe import WebhookSignature

from memrelay.connectors.generic_hmac.webhook import signature_header
from memrelay.connectors.hubspot.webhook import v1_signature
from memrelay.engine.stores.db.database import Database
from memrelay.engine.stores.db.migrate import upgrade
from memrelay.engine.stores.db.models import InboundEvent, Memory, OutboxEvent, PropertyHistory
from memrelay.engine.stores.tenancy import Tenancy
from memrelay.queue.connection import QUEUES
from tests.conftest import PG_URL
from tests.support.cluster import Cluster, kill_redis_clients
from tests.support.milvus_server import MilvusServer
from tests.support.processes import wait_for

pytestmark = [pytest.mark.scale_cluster, pytest.mark.skipif(not PG_URL, reason="needs MEMRELAY_TEST_POSTGRES_URL")]

REDIS_URL = os.environ.get("MEMRELAY_SCALE_REDIS_URL", "redis://127.0.0.1:6379/9")
HS_SECRET, STRIPE_SECRET, FORM_SECRET = "hs-scale-secret", "whsec_scale_0123456789", "form-scale-secret"


@pytest.fixture
def cluster(fresh_pg_schema: str, milvus_server: MilvusServer, tmp_path: Path) -> Iterator[tuple[Cluster, Database]]:
    upgrade(fresh_pg_schema)
    redis.Redis.from_url(REDIS_URL).flushdb()
    c = Cluster(database_url=fresh_pg_schema, redis_url=REDIS_URL, milvus_uri=milvus_server.uri,
                log_dir=tmp_path / "cluster")
    db = Database(fresh_pg_schema)
    try:
        for name in ("w1", "w2", "w3"):  # first: a gateway is ready only once a live worker exists
            c.start_worker(name)
        for name in ("gw-a", "gw-b"):
            c.start_gateway(name)
        yield c, db
    finally:
        c.stop()
        db.dispose()
        redis.Redis.from_url(REDIS_URL).flushdb()


class Client:
    """One org's admin key, talking to a given gateway."""

    def __init__(self, cluster: Cluster, key: str):
        self.cluster, self.key = cluster, key
        self.session = requests.Session()

    def url(self, gateway: str, path: str) -> str:
        return self.cluster.gateway_url(gateway) + path

    def api(self, gateway: str, method: str, path: str, body: Any = None) -> requests.Response:
        return self.session.request(method, self.url(gateway, path), json=body, timeout=30,
                                    headers={"Authorization": f"Bearer {self.key}"})

    def raw(self, gateway: str, path: str, body: bytes, headers: dict[str, str]) -> requests.Response:
        return self.session.post(self.url(gateway, path), data=body, timeout=30,
                                 headers={"Content-Type": "application/json", **headers})


def _hubspot(src: dict[str, Any], i: int) -> tuple[str, bytes, dict[str, str]]:
    body = json.dumps([{"eventId": 9000 + i, "subscriptionId": 7, "portalId": 62515, "appId": 1,
                        "occurredAt": 1_717_000_000_000 + i, "subscriptionType": "contact.propertyChange",
                        "attemptNumber": 0, "objectId": 500 + i, "changeSource": "CRM",
                        "propertyName": "lifecyclestage", "propertyValue": "customer"}]).encode()
    return src["webhookPath"], body, {"X-HubSpot-Signature-Version": "v1",
                                      "X-HubSpot-Signature": v1_signature(HS_SECRET, body)}


def _stripe(src: dict[str, Any], i: int) -> tuple[str, bytes, dict[str, str]]:
    body = json.dumps({"id": f"evt_scale_{i}", "object": "event", "api_version": "2024-06-20",
                       "created": 1_717_240_000 + i, "livemode": False, "type": "customer.created",
                       "data": {"object": {"id": f"cus_scale_{i}", "object": "customer",
                                           "email": f"stripe{i}@scale.example", "name": f"Stripe Person{i}",
                                           "created": 1_717_239_990, "livemode": False, "metadata": {}}}}).encode()
    sig = WebhookSignature.generate_signature_header(body.decode(), STRIPE_SECRET, int(time.time()))
    return src["webhookPath"], body, {"Stripe-Signature": sig}


def _form(src: dict[str, Any], i: int) -> tuple[str, bytes, dict[str, str]]:
    body = json.dumps({"email": f"form{i}@scale.example", "first_name": f"Form{i}", "job_title": "CTO",
                       "form_name": "Demo", "submission_id": f"sub-{i}"}).encode()
    return src["webhookPath"], body, {"X-Signature": signature_header(FORM_SECRET, body, int(time.time()))}


def _zapier(src: dict[str, Any], i: int, key: str) -> tuple[str, bytes, dict[str, str]]:
    body = json.dumps({"event_id": f"zap_{i}", "object_type": "contact", "email": f"zap{i}@scale.example",
                       "first_name": f"Zap{i}", "company__name": "Umbrella",
                       "updated_at": "2024-05-04T09:00:00Z"}).encode()
    return src["webhookPath"].rsplit("/", 1)[0], body, {"X-API-Key": key}


def test_two_gateways_three_workers_exactly_once_under_faults(cluster: tuple[Cluster, Database]) -> None:
    c, db = cluster
    tenancy = Tenancy(db)
    org = tenancy.get_or_create_org(f"scale-{uuid.uuid4().hex[:6]}")
    key, _ = tenancy.create_key(org.id, scopes=["read", "write", "admin"])
    cl = Client(c, key)

    def source(connector: str, **extra: Any) -> dict[str, Any]:
        r = cl.api("gw-a", "POST", "/api/v1/sources", {"connector": connector, "name": connector, **extra})
        assert r.status_code == 201, r.text
        return dict(r.json())

    hs = source("hubspot", secret=HS_SECRET, config={"fetch": False})
    st = source("stripe", secret=STRIPE_SECRET)
    fm = source("generic_hmac", secret=FORM_SECRET)
    zp = source("generic")

    n = 12
    deliveries = [d for i in range(n) for d in (_hubspot(hs, i), _stripe(st, i), _form(fm, i), _zapier(zp, i, key))]
    expected_events = len(deliveries)
    gateways = ("gw-a", "gw-b")

    def send(batch: list[tuple[str, bytes, dict[str, str]]], start: int) -> None:
        for j, (path, body, headers) in enumerate(batch):
            for attempt in range(2 + (start + j) % 2):  # each event 2-3 times, alternating gateways
                r = cl.raw(gateways[(start + j + attempt) % 2], path, body, headers)
                assert r.status_code in (200, 202), (path, r.status_code, r.text)

    half = len(deliveries) // 2
    send(deliveries[:half], 0)
    memorized = []
    for i in range(6):
        r = cl.api(gateways[i % 2], "POST", "/api/v1/memorize",
                   {"content": f"Customer {i} asked about SSO and a {i + 2}-seat plan.", "tags": ["scale"],
                    "identifiers": {"email": f"memo{i}@scale.example"}})
        assert r.status_code in (200, 201, 202), r.text
        memorized.append(r.json())
    rows = [{"Email": f"row{i}@scale.example", "Notes": f"Row {i} wants the {i}-seat plan."} for i in range(6)]
    run = cl.api("gw-b", "POST", "/api/v1/batch-memorize",
                 {"source": "csv", "rows": rows, "chunkSize": 2,
                  "mapping": {"entityType": "contact", "email": "Email",
                              "properties": {"notes": {"sourceField": "Notes", "extractMemories": True}}}})
    assert run.status_code == 202, run.text

    # faults mid-run: kill -9 one worker, drop every worker's Redis connection, then restart the killed worker
    c.kill_worker("w2")
    assert kill_redis_clients(REDIS_URL) >= 1
    send(deliveries[half:], half)
    c.start_worker("w2-restarted")  # the killed worker's RQ registration lives on until its TTL: a new name

    def statuses() -> dict[str, int]:
        with db.read() as s:
            return dict(s.execute(select(InboundEvent.status, func.count()).where(InboundEvent.org_id == org.id)
                                  .group_by(InboundEvent.status)).all())

    assert wait_for(lambda: statuses() == {"processed": expected_events}, 120, 0.5), (
        statuses(), {name: c.log(name)[-1500:] for name in c.workers})
    with db.read() as s:
        event_ids = set(s.scalars(select(InboundEvent.id).where(InboundEvent.org_id == org.id)))
        processed = Counter(p["eventId"] for p in s.scalars(
            select(OutboxEvent.payload).where(OutboxEvent.org_id == org.id,
                                              OutboxEvent.event_type == "event.processed")))
        history = Counter(s.execute(select(PropertyHistory.record_id, PropertyHistory.name,
                                           PropertyHistory.source_event_id)
                                    .where(PropertyHistory.org_id == org.id,
                                           PropertyHistory.source_event_id.is_not(None))).all())
    assert len(event_ids) == expected_events  # redeliveries deduplicated
    assert processed == Counter({eid: 1 for eid in event_ids})  # one notification per event, none lost
    assert [h for h, count in history.items() if count > 1] == []  # no effect applied twice

    def pending() -> int:
        with db.read() as s:
            return int(s.scalar(select(func.count()).select_from(Memory)
                                .where(Memory.org_id == org.id, Memory.index_state != "indexed")) or 0)

    assert wait_for(lambda: pending() == 0, 90, 1), f"{pending()} memories not indexed"

    # reads through the other gateway see the writes made through the first
    for i in (0, n - 1):
        for email, prop, value in ((f"form{i}@scale.example", "first_name", f"Form{i}"),
                                   (f"zap{i}@scale.example", "first_name", f"Zap{i}")):
            recs = cl.api("gw-b", "POST", "/api/v1/search", {"email": email}).json()["records"]
            assert recs and recs[0]["properties"][prop]["value"] == value, (email, recs)
        stripe_recs = cl.api("gw-a", "POST", "/api/v1/search", {"email": f"stripe{i}@scale.example"}).json()
        assert stripe_recs["records"], stripe_recs
    recall = cl.api("gw-b", "POST", "/api/v1/recall", {"query": "SSO seat plan", "type": "contact", "tags": ["scale"],
                                                        "email": "memo3@scale.example"})
    assert recall.status_code == 200, recall.text
    assert "SSO" in json.dumps(recall.json())

    # the batch run finishes although one of its chunks ran on the killed worker
    run_id = run.json()["runId"]
    if not wait_for(lambda: cl.api("gw-a", "GET", f"/api/v1/batch-memorize/{run_id}").json()["status"]
                    in ("completed", "failed"), 120, 0.5):
        conn = redis.Redis.from_url(REDIS_URL)
        jobs = {q: {"failed": FailedJobRegistry(q, connection=conn).get_job_ids(),
                    "started": StartedJobRegistry(q, connection=conn).get_job_ids(), "queued": Queue(q, connection=conn).job_ids}
                for q in QUEUES}
        pytest.fail(f"batch run not finished: {json.dumps(cl.api('gw-a', 'GET', f'/api/v1/batch-memorize/{run_id}').json())}"
                    f"\njobs: {jobs}\n" + "\n".join(f"--- {n}\n{c.log(n)[-1500:]}" for n in c.workers))
    status = cl.api("gw-a", "GET", f"/api/v1/batch-memorize/{run_id}").json()
    assert status["status"] == "completed" and status["errorCount"] == 0, status

