"""Console events page at scale: render time of /console/events (filters, server-side paging, total count) over
N stored events, next to the JSON API's ``GET /api/v1/events?limit=50`` (no count, no filters but status/source) in
the same process and database — the baseline the console must stay close to.

Usage: .venv/bin/python bench/bench_console.py [--events 5000] [--repeat 20]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from memrelay.composition import Services  # noqa: E402
from memrelay.engine.core.settings import Settings  # noqa: E402
from memrelay.engine.stores.db.migrate import upgrade  # noqa: E402
from memrelay.gateway.app import create_app  # noqa: E402
from memrelay.supervise.embedded import EmbeddedRedis  # noqa: E402


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        redis_srv = EmbeddedRedis(Path(tmp) / "redis.sock").start()
        try:
            settings = Settings(data_dir=Path(tmp) / "data", redis_url=redis_srv.url, rate_limit_per_minute=10**6)
            settings.ensure_data_dir()
            upgrade(settings.sql_url)
            services = Services(settings)
            app = create_app(settings, services=services)
            org = services.tenancy.get_or_create_org("bench")
            key, _ = services.tenancy.create_key(org.id, scopes=["read", "write", "admin"])
            src = services.sources.create(org.id, connector="generic")
            t0 = time.perf_counter()
            for start in range(0, args.events, 500):
                services.events.record(org.id, src["id"], [
                    {"connector": "generic", "dedup_key": f"k{i}", "object_type": "contact", "object_id": str(i),
                     "event_type": "deal.upsert" if i % 10 == 0 else "contact.upsert", "occurred_at": None,
                     "payload": {"record": {"email": f"p{i}@example.org", "api_token": "x"}}}
                    for i in range(start, min(start + 500, args.events))])
            print(f"seeded {args.events} events in {time.perf_counter() - t0:.1f} s ({services.db.dialect})")
            client = app.test_client()
            token = re.search(r'name="csrf_token" value="([^"]+)"',
                              client.get("/console/login").get_data(as_text=True)).group(1)
            assert client.post("/console/login", data={"api_key": key, "csrf_token": token}).status_code == 302
            api = app.test_client()
            hdr = {"Authorization": f"Bearer {key}"}
            last = -(-args.events // 50)

            def get(c: object, path: str, **kw: object) -> Callable[[], object]:
                def run() -> None:
                    resp = c.get(path, **kw)  # type: ignore[attr-defined]
                    assert resp.status_code == 200, (path, resp.status_code)
                return run

            rows = [
                ("baseline: GET /api/v1/events?limit=50", get(api, "/api/v1/events?limit=50", headers=hdr)),
                ("console: /console/events (page 1 of 50, total count)", get(client, "/console/events")),
                (f"console: /console/events?page={last} (deepest page)", get(client, f"/console/events?page={last}")),
                ("console: type=deal.* filter, page 1", get(client, "/console/events?type=deal.*")),
                ("console: status=processed (0 matches)", get(client, "/console/events?status=processed")),
            ]
            print(f"{'request':58} {'p50 ms':>8} {'p95 ms':>8}")
            for label, fn in rows:
                fn()  # warm
                p50, p95 = timed(fn, args.repeat)
                print(f"{label:58} {p50:8.1f} {p95:8.1f}")
            services.close()
        finally:
            redis_srv.stop()


if __name__ == "__main__":
    main()
