"""Structured memory at scale: load N records x 10 properties, then time three search shapes.

Prints, side by side in one run, memrelay's engine path and a bare-SQL baseline over the same database:
  - upsert rows/s (memrelay.engine.stores.records.upsert_many, 500 rows per transaction) vs raw executemany inserts
    of the same rows into one plain table (500 per transaction), batches alternating so both see the same load
  - search p50/p95 (memrelay.engine.stores.search.run_search with counts) for three filter shapes vs one hand-written query

Usage: .venv/bin/python bench/bench_structured.py [--records 100000] [--database-url postgresql://...]
       [--skip-search] [--profile]   (--profile: cProfile of memrelay's load batches, top functions by own time)
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

from memrelay.composition import Services
from memrelay.engine.core.settings import Settings
from memrelay.engine.stores.identity import Identifiers
from memrelay.engine.stores.properties import Provenance
from memrelay.engine.stores.search import Condition, Group, SearchQuery, run_search

STAGES = ["subscriber", "lead", "marketing_qualified", "sales_qualified", "opportunity", "customer"]
TITLES = ["Engineer", "VP Engineering", "CTO", "Head of Sales", "Account Executive", "Designer", "CFO"]
COUNTRIES = ["Germany", "France", "USA", "Brazil", "India", "Japan", "Kenya"]


def row(i: int, rnd: random.Random) -> dict[str, object]:
    return {"first_name": f"First{i}", "last_name": f"Last{i % 9973}", "job_title": rnd.choice(TITLES),
            "company_name": f"Company {i % 5000}", "lifecycle_stage": rnd.choice(STAGES),
            "lead_source": rnd.choice(["ads", "webinar", "referral", "organic"]), "city": f"City{i % 300}",
            "country": rnd.choice(COUNTRIES), "phone": f"+49 30 {i:07d}", "newsletter_opt_in": i % 3 == 0}


def pct(samples: list[float], p: float) -> float:
    return sorted(samples)[min(len(samples) - 1, int(round(p / 100 * (len(samples) - 1))))] * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--skip-search", action="store_true", help="only the load figure")
    ap.add_argument("--profile", action="store_true", help="profile memrelay's load batches (cProfile)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="memrelay-bench-"))
    settings = Settings(data_dir=tmp, database_url=args.database_url, redis_url="redis://unused", log_json=False)
    eng = Services(settings)
    if eng.db.dialect == "postgresql":
        with eng.db.engine.begin() as c:
            c.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    eng.migrate()
    org = eng.tenancy.create_org(f"bench-{int(time.time())}")
    rnd = random.Random(7)

    # The baseline: the same rows x 10 columns with raw executemany into a plain table. Batches alternate
    # (memrelay 500 records, then the raw insert of the same 500 rows, each in its own transaction), so
    # both see the same load on a shared machine; the raw table's two indexes are built at the end (timed).
    with eng.db.engine.begin() as c:
        c.exec_driver_sql("DROP TABLE IF EXISTS bench_raw")
        c.exec_driver_sql("CREATE TABLE bench_raw (id INTEGER PRIMARY KEY, email TEXT, first_name TEXT, last_name TEXT,"
                          " job_title TEXT, company_name TEXT, lifecycle_stage TEXT, lead_source TEXT, city TEXT,"
                          " country TEXT, phone TEXT, newsletter BOOLEAN)")
    insert_raw = text("INSERT INTO bench_raw VALUES (:id, :email, :first_name, :last_name, :job_title,"
                      " :company_name, :lifecycle_stage, :lead_source, :city, :country, :phone, :newsletter)")
    batch = 500
    load_s = raw_s = 0.0
    rnd2 = random.Random(7)
    profile = cProfile.Profile() if args.profile else None
    load_before = os.getloadavg()
    for start in range(0, args.records, batch):
        t0 = time.perf_counter()
        # one provenance per item, as a sync's backfill gives each record (its own event id)
        items = [(Identifiers(type="contact", email=f"user{i}@example.com"), row(i, rnd),
                  Provenance(source="bench", source_event_id=f"bench:{i}"))
                 for i in range(start, min(args.records, start + batch))]
        if profile is not None:
            profile.enable()
        eng.records.upsert_many(org.id, items)
        if profile is not None:
            profile.disable()
        t1 = time.perf_counter()
        with eng.db.engine.begin() as c:
            rows = []
            for i in range(start, min(args.records, start + batch)):
                r = row(i, rnd2)
                rows.append({"id": i, "email": f"user{i}@example.com", **{k: r[k] for k in (
                    "first_name", "last_name", "job_title", "company_name", "lifecycle_stage", "lead_source", "city",
                    "country", "phone")}, "newsletter": r["newsletter_opt_in"]})
            c.execute(insert_raw, rows)
        load_s, raw_s = load_s + t1 - t0, raw_s + time.perf_counter() - t1
    t0 = time.perf_counter()
    with eng.db.engine.begin() as c:
        c.exec_driver_sql("CREATE INDEX ix_bench_raw_stage ON bench_raw (lifecycle_stage)")
        c.exec_driver_sql("CREATE INDEX ix_bench_raw_title ON bench_raw (job_title)")
    raw_s += time.perf_counter() - t0
    if eng.db.dialect == "sqlite":
        with eng.db.engine.begin() as c:
            c.exec_driver_sql("ANALYZE")
    else:  # what autovacuum does in production: statistics and the visibility map (index-only scans)
        with eng.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("VACUUM ANALYZE")

    shapes = {
        "EQ stage (selective, 1/6)": ([Group(conditions=[Condition(property="lifecycle_stage", operator="EQ",
                                                                   value="customer")])],
                                      "SELECT count(*) FROM bench_raw WHERE lifecycle_stage='customer'"),
        "AND title=CTO & country": ([Group(conditions=[
            Condition(property="job_title", operator="EQ", value="CTO"),
            Condition(property="country", operator="EQ", value="Japan")])],
            "SELECT count(*) FROM bench_raw WHERE job_title='CTO' AND country='Japan'"),
        "OR contains + IS_SET": ([Group(logic="OR", conditions=[
            Condition(property="company_name", operator="CONTAINS", value="company 42"),
            Condition(property="city", operator="EQ", value="city7")])],
            "SELECT count(*) FROM bench_raw WHERE company_name LIKE '%%Company 42%%' OR city='City7'"),
    }
    load_after = os.getloadavg()
    print(f"\nstructured memory bench — {args.records:,} records x 10 properties on {eng.db.dialect}"
          f"   (load average {load_before[0]:.2f} before the load phase, {load_after[0]:.2f} after)")
    print(f"{'load':40} memrelay {args.records / load_s:10,.0f} rows/s   baseline raw insert "
          f"{args.records / raw_s:10,.0f} rows/s   = {100 * raw_s / load_s:5.1f} % of raw (goal >= 30 %)")
    if profile is not None:
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)
    if args.skip_search:
        eng.close()
        return
    for name, (groups, sql) in shapes.items():
        times, base, total = [], [], 0
        for _ in range(args.queries):
            t = time.perf_counter()
            with eng.db.read() as s:
                _, total = run_search(s, eng.collections, org.id, SearchQuery(
                    identifiers=Identifiers(type="contact"), groups=groups, limit=50))
            times.append(time.perf_counter() - t)
            t = time.perf_counter()
            with eng.db.read_engine.connect() as c:
                c.exec_driver_sql(sql if eng.db.dialect == "postgresql" else sql.replace("%%", "%")).scalar()
            base.append(time.perf_counter() - t)
        print(f"search {name:33} p50 {pct(times, 50):7.2f} ms  p95 {pct(times, 95):7.2f} ms  (total {total:,})"
              f"   baseline p50 {pct(base, 50):6.2f} ms  p95 {pct(base, 95):6.2f} ms")
    eng.close()


if __name__ == "__main__":
    main()
