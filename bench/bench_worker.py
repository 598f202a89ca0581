"""Workers: events/s and memorize-job latency through the production worker (``memrelay worker``:
``MemrelayWorker``, services built once, jobs in-process) next to the same work through the old forking
path (``rq.Worker``: services built in the parent with the sweeper/dispatcher/reconcile threads running, one
forked work horse per job) — kept runnable here only, as the baseline; then end to end with ``make run``
defaults (``memrelay up``: embedded Redis, SQLite, Milvus Lite, 2 workers) on signed generic-HMAC form
webhooks (field mapping → contact, properties, memories).

Usage: .venv/bin/python bench/bench_worker.py [--events 100] [--memorize-jobs 5] [--e2e-events 300]

Each worker runs in its own process and counts, in Redis, how often it loaded the embedder and opened a
Milvus client. A job running for more than ``FROZEN_AFTER_S`` is counted as a frozen worker.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import redis
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from memrelay.connectors.generic_hmac.webhook import signature_header  # noqa: E402

SECRET = "bench-hmac-secret"
FROZEN_AFTER_S = 30.0
EMBEDDER_LOADS, MILVUS_CONNECTS = "bench:embedder_loads", "bench:milvus_connects"


# --- the worker processes under test -------------------------------------------------------------------------
def _count_loads(conn: redis.Redis) -> None:
    """Count embedder loads and Milvus client creations of this process (and of its forks) in Redis."""
    from memrelay.composition import Services
    from memrelay.engine.adapters.vector_index import VectorIndex

    load, connect = Services._load_embedder, VectorIndex._connect

    def counted_load(self: Services) -> Any:
        conn.incr(EMBEDDER_LOADS)
        return load(self)

    def counted_connect(self: VectorIndex) -> Any:
        if getattr(self, "_client", None) is None:
            conn.incr(MILVUS_CONNECTS)
        return connect(self)

    Services._load_embedder = counted_load  # type: ignore[method-assign]
    VectorIndex._connect = counted_connect  # type: ignore[method-assign]


def worker_main(mode: str, name: str) -> None:
    from memrelay.engine.core.settings import load_settings
    from memrelay.queue.connection import connect

    settings = load_settings()
    _count_loads(connect(settings))
    if mode == "prod":
        from memrelay.worker.main import run_worker

        run_worker(settings, name=name)
        return
    _run_forking_baseline(settings, name)


def _run_forking_baseline(settings: Any, name: str) -> None:
    """Today's (pre-redesign) path: the parent builds the services and starts the maintenance threads, then
    ``rq.Worker`` forks a work horse per job, which uses the parent's (inherited) services."""
    from rq import Worker

    from memrelay.composition import Services
    from memrelay.engine.core.logging_setup import configure_logging
    from memrelay.queue.connection import QUEUES, connect
    from memrelay.worker.context import ContextJob, JobContext
    from memrelay.worker.jobs.deliver import start_dispatcher
    from memrelay.worker.sweeper import start_sweeper

    class ForkingWorker(Worker):
        job_class = ContextJob

        def execute_job(self, job: Any, queue: Any) -> None:
            job.context = context  # copied into the forked horse
            super().execute_job(job, queue)

    configure_logging(settings.log_level, json_logs=settings.log_json)
    context = JobContext(services=Services(settings), redis=connect(settings))
    stop = threading.Event()  # the old worker's threads: sweeper, dispatcher, index reconcile (no warm-up)
    start_sweeper(context.services, context.redis, stop)
    start_dispatcher(context.services, context.redis, stop)
    threading.Thread(target=context.services.index.reconcile, daemon=True).start()
    worker = ForkingWorker(list(QUEUES), connection=connect(settings), name=name, job_class=ContextJob)
    worker.work(with_scheduler=True, logging_level=settings.log_level)


# --- helpers ---------------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def submission(i: int, run: str) -> dict[str, Any]:
    return {"email": f"lead{i}-{run}@corp{i % 50}.example", "first_name": f"Lead{i}", "last_name": "Bench",
            "job_title": ["CTO", "VP Sales", "Engineer"][i % 3], "company": f"Corp {i % 50}",
            "form_name": "Demo request", "submission_id": f"{run}-{i}",
            "message": f"We run {i % 7 + 2} warehouses and want a demo next week."}


def signed(body: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Signature": signature_header(SECRET, body, int(time.time()))}


_logs: dict[str, Any] = {}


def processed(db_url: str, org_id: str) -> int:
    """How many of the org's events the log says are processed."""
    from memrelay.engine.stores.db.database import Database
    from memrelay.engine.stores.event_log import EventLog

    log = _logs.get(db_url) or _logs.setdefault(db_url, EventLog(Database(db_url)))
    return int(log.counts(org_id).get("processed", 0))


def frozen_jobs(conn: redis.Redis) -> set[str]:
    """Jobs started more than FROZEN_AFTER_S ago and still running."""
    from rq.job import Job
    from rq.registry import StartedJobRegistry

    from memrelay.queue.connection import QUEUES

    out = set()
    now = time.time()
    for q in QUEUES:
        for jid in StartedJobRegistry(q, connection=conn).get_job_ids():
            try:
                job = Job.fetch(jid, connection=conn)
            except Exception:
                continue
            if job.started_at and now - job.started_at.timestamp() > FROZEN_AFTER_S:
                out.add(jid)
    return out


def wait_until(pred: Any, timeout: float, conn: redis.Redis | None = None, frozen: set[str] | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        if conn is not None and frozen is not None:
            frozen |= frozen_jobs(conn)
        time.sleep(0.1)
    return False


# --- part 1: production worker vs forking baseline ---------------------------------------------------------------
def compare_one(mode: str, tmp: Path, redis_url: str, milvus_uri: str, n_events: int, n_memorize: int,
                deadline_s: float) -> dict[str, Any]:
    from memrelay.composition import build_services
    from memrelay.engine.core.settings import Settings
    from memrelay.gateway.app import create_app

    data = tmp / mode
    env_settings = {"MEMRELAY_DATA_DIR": str(data), "MEMRELAY_REDIS_URL": redis_url,
                    "MEMRELAY_MILVUS_URI": milvus_uri, "MEMRELAY_LOG_JSON": "false", "MEMRELAY_LOG_LEVEL": "WARNING"}
    settings = Settings(data_dir=data, redis_url=redis_url, milvus_uri=milvus_uri, log_json=False,
                        log_level="WARNING")
    settings.ensure_data_dir()
    services = build_services(settings)
    services.migrate()
    conn = redis.Redis.from_url(redis_url)
    conn.flushdb()
    org = services.tenancy.get_or_create_org(f"bench-{mode}")
    key, _ = services.tenancy.create_key(org.id, scopes=["read", "write", "admin"])
    client = create_app(settings, services=services).test_client()
    auth = {"Authorization": f"Bearer {key}"}
    src = client.post("/api/v1/sources", json={"connector": "generic_hmac", "name": "site", "secret": SECRET},
                      headers=auth).json["data"]
    run = uuid.uuid4().hex[:6]
    for i in range(n_events):  # through the gateway: verify, log, enqueue (the worker is not running yet)
        body = json.dumps(submission(i, run)).encode()
        assert client.post(src["webhookPath"], data=body, headers=signed(body)).status_code == 202

    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMRELAY_")}
    env.update(env_settings, PYTHONPATH=str(ROOT))
    name = f"bench-{mode}-{run}"
    log = open(tmp / f"{mode}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "worker", mode, name], cwd=ROOT,
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    frozen: set[str] = set()
    try:
        assert wait_until(lambda: conn.exists(f"rq:worker:{name}"), 60), (tmp / f"{mode}.log").read_text()[-2000:]
        t0 = time.perf_counter()
        done_all = wait_until(lambda: processed(settings.sql_url, org.id) >= n_events, deadline_s, conn, frozen)
        events_s = time.perf_counter() - t0
        n_done = processed(settings.sql_url, org.id)

        latencies: list[float] = []
        for j in range(n_memorize):  # one batch-memorize job at a time: enqueue -> completed
            rows = [{"Email": f"m{j}-{k}-{run}@corp.example",
                     "Notes": f"Customer {k} asked about the {k + 2}-seat plan and SSO in call {j}."}
                    for k in range(10)]
            mapping = {"entityType": "contact", "email": "Email",
                       "properties": {"notes": {"sourceField": "Notes", "extractMemories": True}}}
            t = time.perf_counter()
            r = client.post("/api/v1/batch-memorize", json={"source": "bench", "mapping": mapping, "rows": rows,
                                                            "chunkSize": 10}, headers=auth)
            status_url = f"/api/v1/batch-memorize/{r.json['data']['runId']}"
            ok = wait_until(lambda u=status_url: client.get(u, headers=auth).json["data"]["status"]  # type: ignore[misc]
                            in ("completed", "failed"), 120, conn, frozen)
            latencies.append(time.perf_counter() - t if ok else float("inf"))
        frozen |= frozen_jobs(conn)
        return {"mode": mode, "events": n_done, "of": n_events, "complete": done_all, "seconds": events_s,
                "events_per_s": n_done / events_s if events_s else 0.0,
                "memorize_p50": statistics.median(latencies), "memorize_max": max(latencies),
                "embedder_loads": int(conn.get(EMBEDDER_LOADS) or 0),
                "milvus_connects": int(conn.get(MILVUS_CONNECTS) or 0), "jobs": n_events + n_memorize,
                "frozen": len(frozen)}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        services.close()


def compare(n_events: int, n_memorize: int, deadline_s: float) -> list[dict[str, Any]]:
    from memrelay.supervise.embedded import EmbeddedMilvus, EmbeddedRedis

    with tempfile.TemporaryDirectory(prefix="bench-worker-") as d:
        tmp = Path(d)
        r = EmbeddedRedis(tmp / "redis" / "redis.sock").start()
        milvus = EmbeddedMilvus(tmp / "milvus" / "milvus.db").start()  # one server for every process, as `up`
        try:
            return [compare_one(mode, tmp, r.url, milvus.uri, n_events, n_memorize, deadline_s)
                    for mode in ("fork", "prod")]
        finally:
            milvus.stop()
            r.stop()


# --- part 2: end to end with `make run` defaults -----------------------------------------------------------------
def end_to_end(n_events: int, concurrency: int, deadline_s: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-up-") as d:
        cwd = Path(d)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEMRELAY_")}
        env.update(MEMRELAY_HOST="127.0.0.1", MEMRELAY_PORT=str(port))  # what `make run` sets; the rest default
        log = open(cwd / "up.log", "wb")  # noqa: SIM115
        up = subprocess.Popen([sys.executable, "-m", "memrelay.cli.main", "up"], cwd=cwd, env=env, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        try:
            if not wait_until(lambda: _ready(base), 120):
                raise RuntimeError("memrelay up did not become ready:\n" + (cwd / "up.log").read_text()[-3000:])
            key = (cwd / ".memrelay" / "admin_key").read_text().strip()
            auth = {"Authorization": f"Bearer {key}"}
            me = requests.get(f"{base}/api/v1/me", headers=auth, timeout=10).json()["data"]
            src = requests.post(f"{base}/api/v1/sources", headers=auth, timeout=10,
                                json={"connector": "generic_hmac", "name": "site", "secret": SECRET}).json()["data"]
            conn = redis.Redis(unix_socket_path=str(cwd / ".memrelay" / "redis" / "redis.sock"))
            db_url = f"sqlite:///{cwd / '.memrelay' / 'memrelay.db'}"
            run = uuid.uuid4().hex[:6]
            todo = iter(range(n_events))
            errors: list[int] = []
            lock = threading.Lock()

            def send() -> None:
                sess = requests.Session()
                for i in todo:
                    body = json.dumps(submission(i, run)).encode()
                    r = sess.post(base + src["webhookPath"], data=body, headers=signed(body), timeout=30)
                    if r.status_code != 202:
                        with lock:
                            errors.append(r.status_code)

            frozen: set[str] = set()
            t0 = time.perf_counter()
            senders = [threading.Thread(target=send) for _ in range(concurrency)]
            for t in senders:
                t.start()
            for t in senders:
                t.join()
            sent_s = time.perf_counter() - t0
            complete = wait_until(lambda: processed(db_url, me["org"]["id"]) >= n_events, deadline_s, conn, frozen)
            total_s = time.perf_counter() - t0
            n_done = processed(db_url, me["org"]["id"])
            frozen |= frozen_jobs(conn)
            workers = len(__import__("rq").Worker.all(connection=conn))
            return {"events": n_done, "of": n_events, "complete": complete, "errors": len(errors),
                    "accept_s": sent_s, "seconds": total_s, "events_per_s": n_done / total_s,
                    "frozen": len(frozen), "workers": workers}
        finally:
            os.killpg(up.pid, signal.SIGINT)
            try:
                up.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(up.pid, signal.SIGKILL)
                up.wait()


def _ready(base: str) -> bool:
    try:
        return requests.get(f"{base}/readyz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        worker_main(sys.argv[2], sys.argv[3])
        return
    p = argparse.ArgumentParser()
    p.add_argument("--events", type=int, default=100, help="webhook events per worker kind")
    p.add_argument("--memorize-jobs", type=int, default=5, help="batch-memorize jobs (10 rows each), one by one")
    p.add_argument("--e2e-events", type=int, default=300)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--deadline", type=float, default=240.0, help="seconds to wait for a phase before giving up")
    a = p.parse_args()

    rows = compare(a.events, a.memorize_jobs, a.deadline)
    print(f"\nworker comparison: {a.events} generic-HMAC form events, then {a.memorize_jobs} batch-memorize jobs "
          f"(10 rows each) one at a time; one worker process each")
    print(f"{'worker':38} {'events':>9} {'events/s':>9} {'memorize p50':>13} {'max':>8} {'embedder':>9} "
          f"{'milvus':>7} {'frozen':>7}")
    labels = {"fork": "rq.Worker (fork per job, old path)", "prod": "MemrelayWorker (memrelay worker)"}
    for r in rows:
        print(f"{labels[r['mode']]:38} {r['events']:>4}/{r['of']:<4} {r['events_per_s']:>9.1f} "
              f"{r['memorize_p50']:>12.2f}s {r['memorize_max']:>7.2f}s {r['embedder_loads']:>9} "
              f"{r['milvus_connects']:>7} {r['frozen']:>7}")
    fork, prod = rows
    print(f"speed-up: {prod['events_per_s'] / max(fork['events_per_s'], 1e-9):.1f}x events/s, "
          f"{fork['memorize_p50'] / max(prod['memorize_p50'], 1e-9):.1f}x memorize latency (p50); "
          f"embedder loads / Milvus clients per {prod['jobs']} jobs: "
          f"{prod['embedder_loads']}/{prod['milvus_connects']} (prod) vs "
          f"{fork['embedder_loads']}/{fork['milvus_connects']} (fork)")

    e2e = end_to_end(a.e2e_events, a.concurrency, a.deadline)
    print(f"\nend to end, `memrelay up` defaults (embedded Redis, SQLite, Milvus Lite, {e2e['workers']} workers): "
          f"{a.e2e_events} signed generic-HMAC form webhooks, {a.concurrency} concurrent senders")
    print(f"{'processed':>12} {'accept (s)':>11} {'all processed (s)':>18} {'events/s':>9} {'rejected':>9} "
          f"{'frozen':>7}")
    print(f"{e2e['events']:>6}/{e2e['of']:<5} {e2e['accept_s']:>11.1f} {e2e['seconds']:>18.1f} "
          f"{e2e['events_per_s']:>9.1f} {e2e['errors']:>9} {e2e['frozen']:>7}")


if __name__ == "__main__":
    main()
