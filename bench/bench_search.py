"""Search EQ / AND / OR p50 vs raw SQL of the same query (issue 16 item 2).

Loads N contacts x 10 properties straight into records/property_values (bulk SQL: this bench measures
reads, bench_structured.py measures writes) and the same rows into one wide table with an index per
filtered column. For each shape, in one run (memrelay and raw sampled alternately), it prints:
  memrelay default  search_page (page of 50 + count bounded at COUNT_CAP, totalIsExact)
  memrelay exact    search_page(count_limit=None)  (includeTotal: true; what every search paid before)
  raw page+bounded  SELECT id ... ORDER BY id LIMIT 51 and count(*) over at most COUNT_CAP ids
  raw exact         the same page and an exact count(*)

Both run as they run in production: ``Database.read()`` (PostgreSQL: autocommit, no BEGIN/ROLLBACK) and raw SQL on
an autocommit connection, sampled alternately in one loop. For comparison with earlier runs it then samples, in a
second loop, both inside a read transaction (BEGIN ... ROLLBACK: what ``read()`` did on PostgreSQL before). The
loops are apart because psycopg forgets a connection's prepared statements at every ROLLBACK: interleaved, the
read-transaction samples kept memrelay's (and raw's) statements from ever being prepared, which production's
autocommit reads are (runs before this change interleaved them: their autocommit figures paid planning every
time). On SQLite both variants are the same deferred read transaction.

It also prints the SQL statements one memrelay search executes (counted with a before_cursor_execute listener) once
the process knows the org's facts (the first typed search of an org, type and set of properties reads them: one
statement more), and the load average before and after (the machine is shared: compare ratios, not times).

Usage: .venv/bin/python bench/bench_search.py [--records 100000] [--database-url postgresql://.../bench_x] [--reuse]
On PostgreSQL the bench resets the public schema of the database it is given, so it refuses a database whose
name does not start with ``bench`` (create one: ``CREATE DATABASE bench_search``). ``--reuse`` keeps a database
that a previous run loaded with the same number of records (1M takes long to load) and only migrates it.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import event, inspect, make_url, text
from sqlalchemy.orm import Session

from memrelay.composition import Services
from memrelay.engine.core.settings import Settings
from memrelay.engine.stores.identity import Identifiers
from memrelay.engine.stores.search import COUNT_CAP, Condition, Group, SearchQuery, search_page

STAGES = ["subscriber", "lead", "marketing_qualified", "sales_qualified", "opportunity", "customer"]
TITLES = ["Engineer", "VP Engineering", "CTO", "Head of Sales", "Account Executive", "Designer", "CFO"]
COUNTRIES = ["Germany", "France", "USA", "Brazil", "India", "Japan", "Kenya"]
COLUMNS = ["first_name", "last_name", "job_title", "company_name", "lifecycle_stage", "lead_source", "city",
           "country", "phone", "plan_tier"]


def row(i: int, rnd: random.Random) -> dict[str, str]:
    return {"first_name": f"First{i}", "last_name": f"Last{i % 9973}", "job_title": rnd.choice(TITLES),
            "company_name": f"Company {i % 5000}", "lifecycle_stage": rnd.choice(STAGES),
            "lead_source": rnd.choice(["ads", "webinar", "referral", "organic"]), "city": f"City{i % 300}",
            "country": rnd.choice(COUNTRIES), "phone": f"+49 30 {i:07d}", "plan_tier": rnd.choice("abc")}


def load(eng: Services, org: str, n: int) -> float:
    now = datetime.now(UTC).replace(tzinfo=None)
    rnd = random.Random(7)
    t0 = time.perf_counter()
    with eng.db.engine.begin() as c:
        c.exec_driver_sql("DROP TABLE IF EXISTS bench_raw")
        c.exec_driver_sql("CREATE TABLE bench_raw (id VARCHAR(40) PRIMARY KEY, "
                          + ", ".join(f"{k} VARCHAR(200)" for k in COLUMNS) + ")")
        for start in range(0, n, 5000):
            recs, props, raw = [], [], []
            for i in range(start, min(n, start + 5000)):
                rid, r = f"rec_{i:012d}", row(i, rnd)
                recs.append({"id": rid, "org": org, "pk": f"user{i}@example.com", "ts": now})
                props += [{"org": org, "rid": rid, "name": k, "v": f'"{v}"', "t": v.casefold(), "ts": now}
                          for k, v in r.items()]
                raw.append({"id": rid, **{k: v.casefold() for k, v in r.items()}})
            c.execute(text("INSERT INTO records (id, org_id, entity_type, primary_key, version, created_at, updated_at)"
                           " VALUES (:id, :org, 'contact', :pk, 1, :ts, :ts)"), recs)
            c.execute(text("INSERT INTO property_values (org_id, record_id, entity_type, name, value, value_text,"
                           " version, updated_at) VALUES (:org, :rid, 'contact', :name, :v, :t, 1, :ts)"), props)
            c.execute(text(f"INSERT INTO bench_raw VALUES (:id, {', '.join(':' + k for k in COLUMNS)})"), raw)
        for col in ("lifecycle_stage", "job_title", "country", "city"):
            c.exec_driver_sql(f"CREATE INDEX ix_bench_raw_{col} ON bench_raw ({col}, id)")
    if eng.db.dialect == "sqlite":
        with eng.db.engine.begin() as c:
            c.exec_driver_sql("ANALYZE")
    else:
        with eng.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("VACUUM ANALYZE")
    return time.perf_counter() - t0


def loaded_org(eng: Services, n: int) -> str | None:
    """The org of a previous run's ``n`` records in this database, if there is one (``--reuse``)."""
    with eng.db.read_engine.connect() as c:
        if "bench_raw" not in inspect(c).get_table_names():
            return None
        if c.exec_driver_sql("SELECT count(*) FROM bench_raw").scalar() != n:
            return None
        orgs = c.exec_driver_sql("SELECT DISTINCT org_id FROM records").scalars().all()
    return orgs[0] if len(orgs) == 1 else None


def p50s(fns: list[Callable[[], object]], n: int) -> list[float]:
    """The p50 (ms) of each of ``fns``, sampled in turn so that all see the same load (the machine is shared:
    only the ratios are meaningful)."""
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(n):
        for fn, out in zip(fns, samples, strict=True):
            t = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t)
    return [statistics.median(x) * 1000 for x in samples]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--reuse", action="store_true", help="keep the records a previous run loaded (same --records)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="memrelay-bench-search-"))
    eng = Services(Settings(data_dir=tmp, database_url=args.database_url, redis_url="redis://unused",
                            log_json=False))
    org = loaded_org(eng, args.records) if args.reuse else None
    if org is not None:
        eng.migrate()
        load_s = 0.0
    else:
        if eng.db.dialect == "postgresql":
            if not (make_url(args.database_url).database or "").startswith("bench"):
                raise SystemExit("refusing to reset the public schema of a database not named bench*")
            with eng.db.engine.begin() as c:
                c.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        eng.migrate()
        org = eng.tenancy.create_org(f"bench-{int(time.time())}").id
        load_s = load(eng, org, args.records)

    def eq(p: str, v: str) -> Condition:
        return Condition(property=p, operator="EQ", value=v)

    shapes = {
        "EQ stage=customer": ([Group(conditions=[eq("lifecycle_stage", "customer")])], "lifecycle_stage='customer'"),
        "AND title=CTO & country=Japan": ([Group(conditions=[eq("job_title", "CTO"), eq("country", "Japan")])],
                                          "job_title='cto' AND country='japan'"),
        "OR city=City7 | title=CFO": ([Group(logic="OR", conditions=[eq("city", "City7"), eq("job_title", "CFO")])],
                                      "city='city7' OR job_title='cfo'"),
    }
    raw_autocommit = (eng.db.read_engine if eng.db.is_sqlite
                      else eng.db.engine.execution_options(isolation_level="AUTOCOMMIT"))
    print(f"\nsearch bench — {args.records:,} contacts x 10 properties on {eng.db.dialect} (loaded in {load_s:.0f} s);"
          f" p50 of {args.queries} queries, page of 50, count cap {COUNT_CAP:,}; load average {_load_average()}")
    for name, (groups, where) in shapes.items():
        q = SearchQuery(identifiers=Identifiers(type="contact"), groups=groups, limit=50)
        found = None

        def memrelay(limit: int | None, q: SearchQuery = q, in_transaction: bool = False) -> None:
            nonlocal found
            with Session(eng.db.read_engine) if in_transaction else eng.db.read() as s:
                found = search_page(s, eng.collections, org, q, count_limit=limit)

        def raw(bounded: bool, where: str = where, in_transaction: bool = False) -> None:
            with (eng.db.read_engine if in_transaction else raw_autocommit).connect() as c:
                c.exec_driver_sql(f"SELECT id FROM bench_raw WHERE {where} ORDER BY id LIMIT 51").all()
                inner = f"SELECT id FROM bench_raw WHERE {where}" + (f" LIMIT {COUNT_CAP}" if bounded else "")
                c.exec_driver_sql(f"SELECT count(*) FROM ({inner}) AS m").scalar()

        statements: list[str] = []

        def count(*args: object, statements: list[str] = statements) -> None:
            statements.append(str(args[2]))

        memrelay(COUNT_CAP)  # warm (the org's facts read and cached), then count one search's statements
        event.listen(eng.db.read_engine, "before_cursor_execute", count)
        memrelay(COUNT_CAP)
        event.remove(eng.db.read_engine, "before_cursor_execute", count)
        # production first, in a loop of its own: a ROLLBACK makes psycopg forget the connection's prepared
        # statements, so interleaving the read-transaction variants would never let a statement be prepared
        default_ms, raw_bounded = p50s([lambda: memrelay(COUNT_CAP), lambda: raw(True)], args.queries)
        tx_ms, raw_tx = p50s([lambda: memrelay(COUNT_CAP, in_transaction=True),
                              lambda: raw(True, in_transaction=True)], args.queries)
        shown = found
        exact_ms, raw_exact = p50s([lambda: memrelay(None), lambda: raw(False)], max(5, args.queries // 5))
        assert shown is not None and found is not None
        print(f"  {name:30} memrelay {default_ms:7.2f} ms (total {shown.total:,}{'' if shown.total_is_exact else '+'})"
              f" vs raw page+bounded count {raw_bounded:6.2f} ms = {default_ms / raw_bounded:4.1f}x"
              f" | in a read transaction: memrelay {tx_ms:6.2f} ms vs raw {raw_tx:6.2f} ms = {tx_ms / raw_tx:4.1f}x"
              f" | exact count: memrelay {exact_ms:7.2f} ms (total {found.total:,}) vs raw {raw_exact:6.2f} ms"
              f" = {exact_ms / raw_exact:4.1f}x | {len(statements)} statements per search")
    print(f"  load average {_load_average()}")
    eng.close()


def _load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
