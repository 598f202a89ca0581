"""Field-mapping throughput and latency: the scale-out configuration next to the single-process embedded run.

Both runs receive the same signed generic-HMAC form webhooks (one field-mapping event each), sent by a few
client threads spread over the gateways, and are measured from the event log itself:
  * events/s = events / (last ``processed_at`` - first ``received_at``), and that divided by the workers,
  * p50/p95 of ``processed_at - received_at`` per event.

Configurations:
  * scale: 2 ``memrelay serve`` + 3 ``memrelay worker`` on PostgreSQL (a fresh schema), the machine's Redis
    (one logical database, flushed) and the real Milvus server (pinned, cached package),
  * embedded: ``memrelay up`` with its defaults (SQLite, embedded Redis, Milvus Lite, its default workers).

    .venv/bin/python bench/bench_scale.py --events 600

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
import requests  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from sqlalchemy import select  # noqa: E402

from memrelay.connectors.generic_hmac.webhook import signature_header  # noqa: E402
from memrelay.engine.core.settings import Settings  # noqa: E402
from memrelay.engine.stores.db.database import Database  # noqa: E402
from memrelay.engine.stores.db.migrate import upgrade  # noqa: E402
from memrelay.engine.stores.db.models import InboundEvent  # noqa: E402
from memrelay.engine.stores.tenancy import Tenancy  # noqa: E402
from tests.support.cluster import Cluster  # noqa: E402
from tests.support.milvus_server import MilvusServer  # noqa: E402
from tests.support.processes import clean_env, free_port, readyz, wait_for  # noqa: E402

SECRET = "bench-scale-secret"


def _org(db: Database) -> tuple[str, str]:
    tenancy = Tenancy(db)
    org = tenancy.get_or_create_org(f"bench-{uuid.uuid4().hex[:6]}")
    key, _ = tenancy.create_key(org.id, scopes=["read", "write", "admin"])
    return org.id, key


def _drive(db: Database, gateways: list[str], events: int, threads: int, timeout: float) -> dict[str, float]:
    """Create a generic-HMAC source, send ``events`` form webhooks, wait for all, return the measurements."""
    org_id, key = _org(db)
    created = requests.post(gateways[0] + "/api/v1/sources", timeout=30, headers={"Authorization": f"Bearer {key}"},
                            json={"connector": "generic_hmac", "name": "bench", "secret": SECRET})
    assert created.status_code == 201, created.text
    src = created.json()["data"]

    def send(i: int) -> None:
        body = json.dumps({"email": f"lead{i}@bench.example", "first_name": f"Lead{i}", "job_title": "CTO",
                           "form_name": "Demo", "submission_id": f"s{i}"}).encode()
        r = requests.post(gateways[i % len(gateways)] + src["webhookPath"], data=body, timeout=60, headers={
            "Content-Type": "application/json", "X-Signature": signature_header(SECRET, body, int(time.time()))})
        assert r.status_code in (200, 202), r.text

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(send, range(events)))

    def rows() -> list[Any]:
        with db.read() as s:
            return list(s.execute(select(InboundEvent.received_at, InboundEvent.processed_at, InboundEvent.status)
                                  .where(InboundEvent.org_id == org_id)).all())

    done = wait_for(lambda: sum(1 for r in rows() if r[2] == "processed") == events, timeout, 0.5)
    got = rows()
    processed = [(r[0], r[1]) for r in got if r[2] == "processed" and r[1] is not None]
    lat = sorted((p - rc).total_seconds() for rc, p in processed)  # type: ignore[operator]
    span = (max(p for _, p in processed) - min(rc for rc, _ in processed)).total_seconds()  # type: ignore[type-var,operator]
    return {"events": float(len(got)), "processed": float(len(processed)), "complete": float(done),
            "span_s": span, "events_per_s": len(processed) / span if span > 0 else 0.0,
            "p50_s": statistics.median(lat), "p95_s": lat[max(0, int(round(0.95 * len(lat))) - 1)]}


def run_scale(events: int, threads: int, pg_url: str, redis_url: str, timeout: float) -> dict[str, float]:
    base = Settings(database_url=pg_url).sql_url
    schema = f"memrelay_bench_{uuid.uuid4().hex[:8]}"
    eng = sa.create_engine(base)
    with eng.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    upgrade(url)
    redis.Redis.from_url(redis_url).flushdb()
    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    milvus = MilvusServer(tmp / "milvus").start()
    cluster = Cluster(database_url=url, redis_url=redis_url, milvus_uri=milvus.uri, log_dir=tmp / "cluster")
    db = Database(url)
    try:
        for name in ("w1", "w2", "w3"):
            cluster.start_worker(name)
        for name in ("gw-a", "gw-b"):
            cluster.start_gateway(name)
        return _drive(db, [cluster.gateway_url("gw-a"), cluster.gateway_url("gw-b")], events, threads, timeout)
    finally:
        cluster.stop()
        milvus.stop()
        db.dispose()
        redis.Redis.from_url(redis_url).flushdb()
        with eng.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        eng.dispose()


def run_embedded(events: int, threads: int, timeout: float) -> tuple[dict[str, float], int]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-embedded-"))
    port = free_port()
    settings = Settings(data_dir=tmp / "data")
    env = clean_env(MEMRELAY_DATA_DIR=str(settings.data_dir), MEMRELAY_HOST="127.0.0.1", MEMRELAY_PORT=str(port),
                    MEMRELAY_LOG_JSON="false", MEMRELAY_LOG_LEVEL="WARNING")
    with open(tmp / "up.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "memrelay.cli.main", "up"], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    db = None
    try:
        if not wait_for(lambda: proc.poll() is not None or readyz(port) == 200, 180):
            raise RuntimeError((tmp / "up.log").read_text()[-3000:])
        db = Database(settings.sql_url)
        return _drive(db, [f"http://127.0.0.1:{port}"], events, threads, timeout), settings.workers
    finally:
        if db is not None:
            db.dispose()
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=600)
    ap.add_argument("--threads", type=int, default=8, help="client threads sending webhooks")
    ap.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/test")
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/10")
    ap.add_argument("--timeout", type=float, default=600, help="seconds to wait for every event to be processed")
    args = ap.parse_args()
    scale = run_scale(args.events, args.threads, args.pg_url, args.redis_url, args.timeout)
    print("scale:", json.dumps(scale), flush=True)
    embedded, up_workers = run_embedded(args.events, args.threads, args.timeout)
    print(f"{args.events} generic-HMAC form webhooks (field mapping), {args.threads} client threads")
    print(f"{'configuration':<44}{'workers':>8}{'processed':>11}{'ev/s':>9}{'ev/s/worker':>13}"
          f"{'p50 s':>9}{'p95 s':>9}")
    for label, m, workers in (("2 serve + 3 worker, PostgreSQL+Redis+Milvus", scale, 3),
                              ("memrelay up (embedded defaults)", embedded, up_workers)):
        print(f"{label:<44}{workers:>8}{int(m['processed']):>7}/{int(m['events']):<3}{m['events_per_s']:>9.1f}"
              f"{m['events_per_s'] / workers:>13.1f}{m['p50_s']:>9.2f}{m['p95_s']:>9.2f}")
    per_worker = scale["events_per_s"] / 3
    print(f"goal >= 50 events/s per worker (scale configuration): {'met' if per_worker >= 50 else 'missed'}"
          f" ({per_worker:.1f})")


if __name__ == "__main__":
    main()
