"""Per-request cost of key authentication: one indexed SQL lookup per request (revocation immediate across
processes) next to the former per-process 2 s TTL cache hit (the baseline), measured in the same run, on SQLite
and — with ``MEMRELAY_TEST_POSTGRES_URL`` — PostgreSQL. Also the whole ``GET /api/v1/me`` request through
Flask, an unrestricted key and a department key (SQL loader criteria on a search).

    .venv/bin/python -m bench.bench_auth [--n 3000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from memrelay.engine.core.boundedcache import BoundedTTLCache
from memrelay.engine.stores.db.database import Database
from memrelay.engine.stores.db.migrate import upgrade
from memrelay.engine.stores.tenancy import KeyInfo, Tenancy, hash_key


def _per_call_us(fn: Callable[[], object], n: int) -> tuple[float, float]:
    for _ in range(min(200, n)):
        fn()
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1e6)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def bench_store(label: str, url: str, n: int) -> None:
    upgrade(url)
    db = Database(url)
    tenancy = Tenancy(db)
    org = tenancy.get_or_create_org(f"bench-auth-{os.getpid()}-{time.monotonic_ns()}")
    key, _ = tenancy.create_key(org.id, scopes=["read"])
    cache: BoundedTTLCache[str, KeyInfo] = BoundedTTLCache(10_000, 2.0)
    info = tenancy.authenticate(key)

    def cached() -> KeyInfo:  # the former path: hash + cache hit
        digest = hash_key(key)
        hit = cache.get(digest)
        if hit is None:
            cache.put(digest, info)
            return info
        return hit

    base = _per_call_us(cached, n)
    sql = _per_call_us(lambda: tenancy.authenticate(key), n)
    print(f"{label:10} authenticate  baseline (2 s cache hit) p50 {base[0]:7.1f} µs p99 {base[1]:7.1f} µs | "
          f"SQL per request p50 {sql[0]:7.1f} µs p99 {sql[1]:7.1f} µs")
    db.engine.dispose()


def bench_requests(n: int) -> None:
    from memrelay.composition import Services
    from memrelay.engine.core.access import AccessScope
    from memrelay.engine.core.settings import Settings
    from memrelay.gateway.app import create_app
    from memrelay.supervise.embedded import EmbeddedRedis

    tmp = Path(tempfile.mkdtemp())
    redis = EmbeddedRedis(tmp / "redis.sock").start()
    try:
        url = f"sqlite:///{tmp}/memrelay.db"
        upgrade(url)
        settings = Settings(data_dir=tmp, database_url=url, redis_url=redis.url, milvus_uri=str(tmp / "milvus.db"),
                            log_json=False, log_level="WARNING", rate_limit_per_minute=10**9)
        services = Services(settings, db=Database(url))
        app = create_app(settings, services=services)
        org = services.tenancy.get_or_create_org("bench-requests")
        full, _ = services.tenancy.create_key(org.id, scopes=["read", "write"])
        dept, _ = services.tenancy.create_key(org.id, scopes=["read", "write"],
                                              access=AccessScope.of(["contact", "ticket"], None, ["support"]))
        client = app.test_client()
        for i in range(200):
            client.post("/api/v1/upsert", json={"email": f"p{i}@bench.io", "properties": {"first_name": f"P{i}"}},
                        headers={"Authorization": f"Bearer {full}"})
        # interleaved rounds so both keys see the same machine load
        runs: dict[tuple[str, str], list[float]] = {}
        for _ in range(5):
            for label, key in (("org-wide key", full), ("department key", dept)):
                h = {"Authorization": f"Bearer {key}"}
                runs.setdefault((label, "me"), []).append(
                    _per_call_us(lambda h=h: client.get("/api/v1/me", headers=h), n // 15)[0])
                runs.setdefault((label, "search"), []).append(_per_call_us(
                    lambda h=h: client.post("/api/v1/search", json={"pageSize": 20}, headers=h), n // 50)[0])
        for label in ("org-wide key", "department key"):
            print(f"{label:15} GET /api/v1/me p50 {statistics.median(runs[(label, 'me')]):8.1f} µs | "
                  f"POST /api/v1/search (200 contacts, page 20) p50 "
                  f"{statistics.median(runs[(label, 'search')]):8.1f} µs  (median of 5 interleaved rounds)")
        services.close()
    finally:
        redis.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=3000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    bench_store("sqlite", f"sqlite:///{tmp}/auth.db", args.n)
    if pg := os.environ.get("MEMRELAY_TEST_POSTGRES_URL"):
        import sqlalchemy as sa

        from memrelay.engine.core.settings import Settings

        base = Settings(database_url=pg).sql_url
        schema = f"bench_auth_{os.getpid()}"
        eng = sa.create_engine(base)
        with eng.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        try:
            bench_store("postgresql", f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}", args.n)
        finally:
            with eng.begin() as conn:
                conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
            eng.dispose()
    bench_requests(args.n)


if __name__ == "__main__":
    main()
