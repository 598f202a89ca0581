"""Where a worker's time goes on field-mapping events (generic-HMAC form webhooks) on PostgreSQL.

Sends ``--events`` signed form webhooks through the gateway (Flask test client, a private redis-server), then
runs the production worker (``run_worker`` in burst mode, in this process) over them under cProfile, and
prints events/s, SQL statements, SQL transactions and Redis commands per event, and the top functions.

    .venv/bin/python bench/profile_worker_events.py --events 400

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import logging
import pstats
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from sqlalchemy import event  # noqa: E402

from memrelay.composition import Services  # noqa: E402
from memrelay.connectors.generic_hmac.webhook import signature_header  # noqa: E402
from memrelay.engine.core.settings import Settings  # noqa: E402
from memrelay.engine.stores.db.migrate import upgrade  # noqa: E402
from memrelay.supervise.embedded import EmbeddedRedis  # noqa: E402
from memrelay.worker.main import run_worker  # noqa: E402

SECRET = "profile-secret"


def redis_calls(conn: redis.Redis) -> int:
    return sum(int(v["calls"]) for k, v in conn.info("commandstats").items() if k != "cmdstat_info")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=400)
    ap.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/test")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--no-profile", action="store_true", help="measure without cProfile's overhead")
    ap.add_argument("--sql", action="store_true", help="print each distinct SQL statement and how often it ran")
    ap.add_argument("--direct", action="store_true",
                    help="call the job function for each event directly (no rq): the job's own cost")
    args = ap.parse_args()
    logging.disable(logging.WARNING)

    tmp = Path(tempfile.mkdtemp(prefix="profile-worker-"))
    base = Settings(database_url=args.pg_url).sql_url
    schema = f"memrelay_prof_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base)
    with admin.begin() as c:
        c.exec_driver_sql(f"CREATE SCHEMA {schema}")
    url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    upgrade(url)
    rds = EmbeddedRedis(tmp / "redis" / "redis.sock").start()
    settings = Settings(data_dir=tmp / "data", database_url=url, redis_url=rds.url,
                        milvus_uri=str(tmp / "milvus.db"), log_level="WARNING")
    services = Services(settings)
    try:
        from memrelay.gateway.app import create_app

        client = create_app(settings, services=services).test_client()
        org = services.tenancy.get_or_create_org("profile")
        key, _ = services.tenancy.create_key(org.id, scopes=["read", "write", "admin"])
        r = client.post("/api/v1/sources", headers={"Authorization": f"Bearer {key}"},
                        json={"connector": "generic_hmac", "name": "forms", "secret": SECRET})
        src = r.get_json()["data"]
        for i in range(args.events):
            body = json.dumps({"email": f"lead{i}@profile.example", "first_name": f"Lead{i}", "job_title": "CTO",
                               "form_name": "Demo", "submission_id": f"s{i}"}).encode()
            resp = client.post(src["webhookPath"], data=body, headers={
                "Content-Type": "application/json", "X-Signature": signature_header(SECRET, body, int(time.time()))})
            assert resp.status_code in (200, 202), resp.get_data(as_text=True)
        services.embedder.get()  # loaded once per worker process, before its first job

        statements = [0]
        transactions = [0]
        texts: Counter[str] = Counter()

        def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            statements[0] += 1
            texts[" ".join(statement.split())[:160]] += 1

        event.listen(services.db.engine, "before_cursor_execute", count)
        event.listen(services.db.engine, "commit", lambda *a: transactions.__setitem__(0, transactions[0] + 1))
        conn = redis.Redis.from_url(rds.url)
        calls0 = redis_calls(conn)
        prof = cProfile.Profile()
        began = time.perf_counter()
        if not args.no_profile:
            prof.enable()
        if args.direct:
            from memrelay.worker.context import JobContext
            from memrelay.worker.jobs.events import process_event

            ctx = JobContext(services=services, redis=conn)
            for event_id in [e["id"] for e in services.events.list(org.id, status="received", limit=args.events)]:
                process_event(ctx, event_id)
        else:
            run_worker(settings, burst=True, services=services)
        if not args.no_profile:
            prof.disable()
        took = time.perf_counter() - began
        n = services.events.counts(org.id).get("processed", 0)
        print(f"{n}/{args.events} events processed in {took:.2f} s: {n / took:.1f} events/s "
              f"({'with' if not args.no_profile else 'without'} cProfile)")
        print(f"per event: {statements[0] / max(n, 1):.1f} SQL statements, {transactions[0] / max(n, 1):.1f} commits, "
              f"{(redis_calls(conn) - calls0) / max(n, 1):.1f} Redis commands")
        if args.sql:
            for text, k in texts.most_common():
                print(f"{k / max(n, 1):6.2f}  {text}")
        if not args.no_profile:
            out = io.StringIO()
            stats = pstats.Stats(prof, stream=out)
            stats.sort_stats("cumulative").print_stats(args.top)
            stats.sort_stats("tottime").print_stats(args.top)
            stats.print_callers(r"redis/client.py.*\((execute_command|execute)\)")
            print(out.getvalue())
    finally:
        services.close()
        rds.stop()
        with admin.begin() as c:
            c.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.dispose()




if __name__ == "__main__":
    main()
