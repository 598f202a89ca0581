"""The scale configuration end to end (``make test-scale``): 2 ``memrelay serve`` gateways and 3 ``memrelay
worker`` processes on PostgreSQL, the machine's Redis (one logical database, flushed first) and the real Milvus
server, under a bounded mixed workload (signed HubSpot, Stripe, form and Zapier-style webhooks with
redeliveries, memorize, batch-memorize, recall) and three faults while it runs:

1. a worker ``kill -9`` (it is restarted under the same name at once) and a drop of every Redis connection;
2. Redis losing all its data (``FLUSHDB`` of the cluster's logical database) — queued jobs, batch chunks in
   flight, worker registrations and leases are gone;
3. PostgreSQL resetting every connection of the cluster's processes (``pg_terminate_backend``), repeatedly.

Then checks exactly-once (one effect and one ``event.processed`` per event, redeliveries deduplicated, no
duplicate memories), nothing stuck (every event processed, every batch run completed, every outbox row
dispatched, every memory indexed) and cross-gateway reads. Waits are bounded polls; nothing asserts
wall-clock speed. A webhook answered 5xx during a fault is delivered again, as its provider would."""

from __future__ import annotations

import json
import os
import threading
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
from memrelay.engine.core.settings import Settings
from memrelay.engine.stores.db.database import Database
from memrelay.engine.stores.db.migrate import upgrade
from memrelay.engine.stores.db.models import BatchChunk, InboundEvent, Memory, OutboxEvent, PropertyHistory
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
        """An /api/v1 call, sent again (bounded) while a fault makes it answer 5xx, as a client would."""
        r = self.session.request(method, self.url(gateway, path), json=body, timeout=30,
                                 headers={"Authorization": f"Bearer {self.key}"})
        for _ in range(10):
            if r.status_code < 500:
                break
            time.sleep(0.5)
            r = self.session.request(method, self.url(gateway, path), json=body, timeout=30,
                                     headers={"Authorization": f"Bearer {self.key}"})
        return r

    def data(self, gateway: str, method: str, path: str, body: Any = None, *, status: int = 200) -> Any:
        """The payload of a successful /api/v1 answer (``{"success": true, "data": ...}``)."""
        r = self.api(gateway, method, path, body)
        assert r.status_code == status and r.json()["success"] is True, (method, path, r.status_code, r.text)
        return r.json()["data"]

    def raw(self, gateway: str, path: str, body: bytes, headers: dict[str, str]) -> requests.Response:
        """A webhook delivery; a 5xx answer (a fault) is delivered again, as the provider would (bounded)."""
        r = self.session.post(self.url(gateway, path), data=body, timeout=30,
                              headers={"Content-Type": "application/json", **headers})
        for _ in range(10):
            if r.status_code < 500:
                break
            time.sleep(0.5)
            r = self.session.post(self.url(gateway, path), data=body, timeout=30,
                                  headers={"Content-Type": "application/json", **headers})
        return r


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


def _batch(cl: Client, gateway: str, prefix: str, n: int) -> tuple[str, set[str]]:
    rows = [{"Email": f"{prefix}{i}@scale.example", "Notes": f"{prefix.title()} {i} wants the {i}-seat plan."}
            for i in range(n)]
    run = cl.data(gateway, "POST", "/api/v1/batch-memorize",
                  {"source": "csv", "rows": rows, "chunkSize": 2,
                   "mapping": {"entityType": "contact", "email": "Email",
                               "properties": {"notes": {"sourceField": "Notes", "extractMemories": True}}}},
                  status=202)
    return str(run["runId"]), {r["Notes"] for r in rows}


class PgResets:
    """Terminates every PostgreSQL connection of the cluster ``rounds`` times, ``every_s`` apart, in a thread
    (while the test keeps sending)."""

    def __init__(self, cluster: Cluster, admin_url: str, rounds: int = 4, every_s: float = 1.5):
        self.cluster, self.admin_url, self.rounds, self.every_s = cluster, admin_url, rounds, every_s
        self.terminated: list[int] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        for _ in range(self.rounds):
            self.terminated.append(self.cluster.terminate_pg_backends(self.admin_url))
            time.sleep(self.every_s)

    def __enter__(self) -> PgResets:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.thread.join(60)


def test_two_gateways_three_workers_exactly_once_under_faults(cluster: tuple[Cluster, Database]) -> None:
    c, db = cluster
    tenancy = Tenancy(db)
    org = tenancy.get_or_create_org(f"scale-{uuid.uuid4().hex[:6]}")
    key, _ = tenancy.create_key(org.id, scopes=["read", "write", "admin"])
    cl = Client(c, key)
    flusher = redis.Redis.from_url(REDIS_URL)

    def source(connector: str, **extra: Any) -> dict[str, Any]:
        return dict(cl.data("gw-a", "POST", "/api/v1/sources", {"connector": connector, "name": connector, **extra},
                            status=201))

    hs = source("hubspot", secret=HS_SECRET, config={"fetch": False})
    st = source("stripe", secret=STRIPE_SECRET)
    fm = source("generic_hmac", secret=FORM_SECRET)
    zp = source("generic")

    n = 12
    deliveries = [d for i in range(n) for d in (_hubspot(hs, i), _stripe(st, i), _form(fm, i), _zapier(zp, i, key))]
    expected_events = len(deliveries)
    gateways = ("gw-a", "gw-b")
    quarter = len(deliveries) // 4

    def send(start: int, stop: int) -> None:
        for j in range(start, stop):
            path, body, headers = deliveries[j]
            for attempt in range(2 + j % 2):  # each event 2-3 times, alternating gateways
                r = cl.raw(gateways[(j + attempt) % 2], path, body, headers)
                assert r.status_code in (200, 202), (path, r.status_code, r.text)

    send(0, quarter)
    memorized = set()
    for i in range(6):
        text = f"Customer {i} asked about SSO and a {i + 2}-seat plan."
        cl.data(gateways[i % 2], "POST", "/api/v1/memorize",
                {"content": text, "tags": ["scale"], "identifiers": {"email": f"memo{i}@scale.example"}})
        memorized.add(text)
    runs = [_batch(cl, "gw-b", "row", 6)]

    # fault 1: kill -9 one worker, drop every Redis connection, restart the killed worker under its own name
    c.kill_worker("w2")
    assert kill_redis_clients(REDIS_URL) >= 1
    send(quarter, 2 * quarter)
    c.start_worker("w2")

    # fault 2: Redis loses everything while a batch run's chunks and events are queued
    runs.append(_batch(cl, "gw-a", "flushed", 6))
    send(2 * quarter, 2 * quarter + quarter // 2)
    flusher.flushdb()
    send(2 * quarter + quarter // 2, 3 * quarter)

    # fault 3: PostgreSQL resets every connection of the cluster, repeatedly, under load
    assert PG_URL
    with PgResets(c, Settings(database_url=PG_URL).sql_url) as resets:
        runs.append(_batch(cl, "gw-b", "reset", 6))
        send(3 * quarter, len(deliveries))
    assert sum(resets.terminated) >= 1, resets.terminated

    def statuses() -> dict[str, int]:
        with db.read() as s:
            return dict(s.execute(select(InboundEvent.status, func.count()).where(InboundEvent.org_id == org.id)
                                  .group_by(InboundEvent.status)).all())

    assert wait_for(lambda: statuses() == {"processed": expected_events}, 150, 0.5), (
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

    # every batch run finishes complete although its chunks met a killed worker, an empty Redis, PG resets
    def run_states() -> dict[str, str]:
        return {run_id: cl.data("gw-a", "GET", f"/api/v1/batch-memorize/{run_id}")["status"] for run_id, _ in runs}

    if not wait_for(lambda: set(run_states().values()) <= {"completed", "failed", "partial"}, 150, 0.5):
        conn = redis.Redis.from_url(REDIS_URL)
        jobs = {q: {"failed": FailedJobRegistry(q, connection=conn).get_job_ids(),
                    "started": StartedJobRegistry(q, connection=conn).get_job_ids(),
                    "queued": Queue(q, connection=conn).job_ids} for q in QUEUES}
        with db.read() as s:
            chunks = s.execute(select(BatchChunk.run_id, BatchChunk.chunk_index, BatchChunk.status,
                                      BatchChunk.attempts).where(BatchChunk.org_id == org.id)).all()
        pytest.fail(f"batch runs not finished: {run_states()}\nchunks: {chunks}\njobs: {jobs}\n"
                    + "\n".join(f"--- {n}\n{c.log(n)[-1500:]}" for n in c.workers))
    for run_id, _ in runs:
        status = cl.data("gw-a", "GET", f"/api/v1/batch-memorize/{run_id}")
        assert status["status"] == "completed" and status["errorCount"] == 0, status
    with db.read() as s:
        completed = Counter(p["runId"] for p in s.scalars(
            select(OutboxEvent.payload).where(OutboxEvent.org_id == org.id,
                                              OutboxEvent.event_type == "batch.completed")))
        texts = list(s.scalars(select(Memory.text).where(Memory.org_id == org.id)))
    assert completed == Counter({run_id: 1 for run_id, _ in runs})
    expected_texts = memorized.union(*(notes for _, notes in runs))
    assert expected_texts <= set(texts), expected_texts - set(texts)
    assert [t for t, k in Counter(texts).items() if k > 1 and t in expected_texts] == []  # no duplicate memory

    def undispatched() -> int:
        with db.read() as s:
            return int(s.scalar(select(func.count()).select_from(OutboxEvent)
                                .where(OutboxEvent.org_id == org.id, OutboxEvent.dispatched_at.is_(None))) or 0)

    assert wait_for(lambda: undispatched() == 0, 60, 0.5), f"{undispatched()} outbox rows never dispatched"

    def pending() -> int:
        with db.read() as s:
            return int(s.scalar(select(func.count()).select_from(Memory)
                                .where(Memory.org_id == org.id, Memory.index_state != "indexed")) or 0)

    assert wait_for(lambda: pending() == 0, 90, 1), f"{pending()} memories not indexed"

    # reads through the other gateway see the writes made through the first
    for i in (0, n - 1):
        for email, prop, value in ((f"form{i}@scale.example", "first_name", f"Form{i}"),
                                   (f"zap{i}@scale.example", "first_name", f"Zap{i}")):
            recs = cl.data("gw-b", "POST", "/api/v1/search", {"email": email})["results"]
            assert recs and recs[0]["properties"][prop]["value"] == value, (email, recs)
        assert cl.data("gw-a", "POST", "/api/v1/search", {"email": f"stripe{i}@scale.example"})["results"]
    recall = cl.data("gw-b", "POST", "/api/v1/recall", {"query": "SSO seat plan", "type": "contact",
                                                         "tags": ["scale"], "email": "memo3@scale.example"})
    assert "SSO" in json.dumps(recall)
