"""The production worker path: ``memrelay worker`` (the real CLI entry point, as a subprocess) against this
test's Redis and SQL (SQLite, and PostgreSQL with MEMRELAY_TEST_POSTGRES_URL), jobs enqueued by the gateway
(Flask test client) exactly as in production. Waits are bounded polls; nothing asserts wall-clock speed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from rq.job import Job
from rq.registry import FailedJobRegistry
from sqlalchemy import func, select

from memrelay.composition import Services
from memrelay.connectors.generic_hmac.webhook import signature_header
from memrelay.engine.core.settings import Settings
from memrelay.engine.stores.db.models import InboundEvent, Memory, PropertyHistory
from memrelay.engine.stores.identity import Identifiers
from memrelay.queue.connection import queue
from tests.gateway.test_webhooks import HUBSPOT_SECRET, hs_event, send_hubspot
from tests.support.processes import TEST_SECRET_KEYS

REPO = Path(__file__).resolve().parents[2]
SECRET = "whsec-runtime-test"
TEST_JOB = "tests.worker.jobs_for_tests.sleep_then_mark"


def wait_for(predicate: Callable[[], Any], *, timeout: float = 90, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class Workers:
    """``memrelay worker`` subprocesses on this test's settings (each with its own Milvus Lite file)."""

    def __init__(self, settings: Settings, tmp_path: Path):
        self.settings, self.tmp_path = settings, tmp_path
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start ``memrelay worker --name name`` (``env``: extra ``MEMRELAY_*`` settings) and wait until this
        process registered with rq (a killed predecessor's registration under the same name does not count)."""
        full = {k: v for k, v in os.environ.items() if not k.startswith("MEMRELAY_")}
        full.update(MEMRELAY_DATA_DIR=str(self.settings.data_dir), MEMRELAY_DATABASE_URL=self.settings.sql_url,
                    MEMRELAY_REDIS_URL=str(self.settings.redis_url),
                    MEMRELAY_MILVUS_URI=str(self.tmp_path / f"milvus-{name}.db"),
                    MEMRELAY_LOG_JSON="false", MEMRELAY_LOG_LEVEL="INFO",
                    MEMRELAY_CRM_TEST_HOSTS=self.settings.crm_test_hosts, MEMRELAY_SECRET_KEYS=TEST_SECRET_KEYS,
                    PYTHONPATH=os.pathsep.join([str(REPO), full.get("PYTHONPATH", "")]), **(env or {}))
        log = open(self.tmp_path / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen([sys.executable, "-m", "memrelay.cli.main", "worker", "--name", name, *extra],
                                cwd=REPO, env=full, stdout=log, stderr=subprocess.STDOUT)
        self.procs[name] = proc
        conn = redis.Redis.from_url(str(self.settings.redis_url))
        wait_for(lambda: proc.poll() is not None or conn.hget(f"rq:worker:{name}", "pid") == str(proc.pid).encode(),
                 timeout=60, what=f"worker {name} to register")
        assert proc.poll() is None, self.log(name)
        return proc

    def log(self, name: str) -> str:
        return (self.tmp_path / f"{name}.log").read_text(errors="replace")[-4000:]

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)


@pytest.fixture
def workers(settings: Settings, tmp_path: Path) -> Iterator[Workers]:
    w = Workers(settings, tmp_path)
    yield w
    w.stop_all()


@pytest.fixture
def conn(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(str(settings.redis_url))


def send_form(client: Any, src: dict[str, Any], submission: dict[str, Any]) -> Any:
    body = json.dumps(submission).encode()
    return client.post(src["webhookPath"], data=body, headers={
        "Content-Type": "application/json", "X-Signature": signature_header(SECRET, body, int(time.time()))})


def event_statuses(engine: Services, org_id: str) -> dict[str, int]:
    return engine.events.counts(org_id)


def enqueue_test_job(conn: redis.Redis, seconds: float, key: str, *, timeout: int = 60) -> Job:
    return queue(conn, "default").enqueue_call(TEST_JOB, args=(seconds, key), timeout=timeout, result_ttl=600,
                                               failure_ttl=600)


def test_worker_processes_webhook_events_and_batch_memorize(api, engine, workers, backend):
    src = api.post("/api/v1/sources", json={"connector": "generic_hmac", "name": "site", "secret": SECRET}).json["data"]
    workers.start("w-events")
    emails = [f"lead{i}-{uuid.uuid4().hex[:6]}@acme.example" for i in range(12)]
    for i, email in enumerate(emails):
        r = send_form(api.client, src, {"email": email, "first_name": f"Lead{i}", "job_title": "CTO",
                                        "form_name": "Demo", "submission_id": f"s{i}"})
        assert r.status_code in (200, 202), r.json
    wait_for(lambda: event_statuses(engine, api.org_id).get("processed") == len(emails), what="events processed")
    for i, email in enumerate(emails):
        rec = engine.records.get(api.org_id, Identifiers(email=email))
        assert rec["properties"]["first_name"]["value"] == f"Lead{i}"
        assert rec["properties"]["job_title"]["value"] == "CTO"

    rows = [{"Email": f"row{i}@corp.example", "Notes": f"Row {i} wants the {i}-seat plan."} for i in range(6)]
    mapping = {"entityType": "contact", "email": "Email",
               "properties": {"notes": {"sourceField": "Notes", "extractMemories": True}}}
    run = api.post("/api/v1/batch-memorize", json={"source": "csv", "mapping": mapping, "rows": rows,
                                                   "chunkSize": 3})
    assert run.status_code == 202, run.json
    status = wait_for(lambda: (st := api.get(f"/api/v1/batch-memorize/{run.json['data']['runId']}").json["data"])["status"]
                      in ("completed", "failed") and st, what="batch run")
    assert status["status"] == "completed" and status["errorCount"] == 0, status
    with engine.db.read() as s:
        texts = set(s.scalars(select(Memory.text).where(Memory.org_id == api.org_id)))
    assert any("3-seat plan" in t for t in texts)


def test_a_job_over_its_timeout_is_failed_and_recorded(workers, conn):
    workers.start("w-timeout")
    slow = enqueue_test_job(conn, 60, "slow-done", timeout=2)
    wait_for(lambda: slow.get_status(refresh=True) == "failed", what="the slow job to be failed")
    assert slow.id in FailedJobRegistry(queue=queue(conn, "default")).get_job_ids()
    assert "JobTimeoutException" in (slow.latest_result().exc_string or "")
    assert conn.get("slow-done") is None
    quick = enqueue_test_job(conn, 0, "quick-done")  # the same worker carries on
    wait_for(lambda: quick.get_status(refresh=True) == "finished", what="the next job")
    assert conn.get("quick-done") == b"done"


def test_sigterm_finishes_the_current_job_then_stops(workers, conn):
    proc = workers.start("w-drain")
    running = enqueue_test_job(conn, 3, "drain-done")
    waiting = enqueue_test_job(conn, 0, "never")
    wait_for(lambda: running.get_status(refresh=True) == "started", what="the job to start")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0, workers.log("w-drain")
    assert running.get_status(refresh=True) == "finished" and conn.get("drain-done") == b"done"
    assert waiting.get_status(refresh=True) == "queued"  # left for the next worker


def test_sigterm_past_the_grace_period_requeues_the_job(workers, conn):
    proc = workers.start("w-grace", "--grace", "1")
    job = enqueue_test_job(conn, 120, "grace-done")
    wait_for(lambda: job.get_status(refresh=True) == "started", what="the job to start")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0, workers.log("w-grace")
    assert job.get_status(refresh=True) == "queued" and job.id in queue(conn, "default").job_ids
    assert conn.get("grace-done") is None



def test_a_worker_killed_mid_event_is_recovered_by_another(api, engine, workers, blocking_hubspot, backend):
    fake, entered, release = blocking_hubspot
    src = engine.sources.create(api.org_id, connector="hubspot", secret=HUBSPOT_SECRET,
                                config={"api_base": fake.url, "access_token": fake.token})
    victim = workers.start("w-victim")
    r = send_hubspot(api.client, src, [hs_event(1, 2, "jobtitle", "Engineer 2", int(time.time() * 1000))])
    assert r.status_code == 202, r.json
    assert entered.wait(60), workers.log("w-victim")  # the victim is inside the job, waiting on HubSpot
    with engine.db.read() as s:
        (event,) = s.scalars(select(InboundEvent).where(InboundEvent.org_id == api.org_id)).all()
        assert event.status == "processing"
    victim.kill()  # SIGKILL: no cleanup at all
    victim.wait(30)
    release.set()
    workers.start("w-rescuer")

    wait_for(lambda: engine.events.get(api.org_id, event.id).status == "processed", what="the event re-driven")
    done = engine.events.get(api.org_id, event.id)
    assert done.attempts == 2  # the killed attempt, then the rescuer's
    job = Job.fetch(event.id, connection=redis.Redis.from_url(str(engine.settings.redis_url)))
    # the event commits with its effect; the job finishes after (index push, then rq's bookkeeping)
    wait_for(lambda: job.get_status(refresh=True) == "finished", what="the rescuer's job to finish")
    assert job.worker_name == "w-rescuer"
    rec = engine.records.get(api.org_id, Identifiers(type="contact", customKeys={"hubspot_contact_id": "2"}))
    assert rec["properties"]["job_title"]["value"] == "Engineer 2"
    with engine.db.read() as s:  # took effect once: one write of the property in its history
        n = s.scalar(select(func.count()).select_from(PropertyHistory).where(
            PropertyHistory.record_id == rec["recordId"], PropertyHistory.name == "job_title"))
    assert n == 1
