"""Set-based inserts (issue 16 item 1): the rows one bulk batch writes (records, 10 property values and 10
history rows per record) through SQLAlchemy Core ``execute(insert, list_of_dicts)`` (the previous path) vs
``memrelay.engine.stores.fast_insert.insert_rows`` (driver executemany on SQLite, COPY on PostgreSQL), in
one run, alternating, same rows, same transaction size.

Usage: .venv/bin/python bench/bench_bulk_insert.py [--database-url postgresql://...] [--records 2000] [--reps 3]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table

from bench.bench_structured import row
from memrelay.composition import Services
from memrelay.engine.core.settings import Settings
from memrelay.engine.core.util import new_sortable_id, utcnow
from memrelay.engine.stores.db.models import PropertyHistory, PropertyValue, Record
from memrelay.engine.stores.fast_insert import insert_rows

TABLES = [cast(Table, t.__table__) for t in (Record, PropertyValue, PropertyHistory)]


def batch(org: str, n: int, tag: str, rnd: random.Random) -> list[list[dict[str, Any]]]:
    now = utcnow()
    recs = [{"id": new_sortable_id("rec") + tag, "org_id": org, "entity_type": "contact",
             "primary_key": f"email:{tag}{i}", "version": 1, "created_at": now, "updated_at": now,
             "deleted_at": None, "purge_after": None} for i in range(n)]
    values, history = [], []
    for r in recs:
        for name, v in row(rnd.randrange(10**6), rnd).items():
            common = {"org_id": org, "record_id": r["id"], "name": name, "source": "bench", "source_event_id": None,
                      "source_ts": now, "actor": None, "confidence": None}
            values.append({**common, "entity_type": "contact", "value": v, "value_text": str(v)[:512],
                           "value_num": None, "version": 1, "updated_at": now})
            history.append({**common, "value": v, "previous": None, "applied": True, "reason": None,
                            "evidence": None, "record_version": 1, "created_at": now})
    return [recs, values, history]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--records", type=int, default=2000)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    eng = Services(Settings(data_dir=Path(tempfile.mkdtemp()), database_url=args.database_url,
                            redis_url="redis://unused", log_json=False))
    if eng.db.dialect == "postgresql":
        with eng.db.engine.begin() as c:
            c.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    eng.migrate()
    org = eng.tenancy.create_org("bulk-insert").id
    rnd = random.Random(1)
    rates: dict[str, list[float]] = {"core": [], "fast": []}
    for rep in range(args.reps):
        for mode in (("core", "fast") if rep % 2 == 0 else ("fast", "core")):  # alternate: tables grow
            data = batch(org, args.records, f"{mode}{rep}", rnd)
            t = time.perf_counter()
            with eng.db.session() as s:
                for table, rows in zip(TABLES, data, strict=True):
                    if mode == "core":
                        s.execute(table.insert(), rows)
                    else:
                        insert_rows(s, table, rows)
            rates[mode].append(args.records / (time.perf_counter() - t))
    core, fast = statistics.median(rates["core"]), statistics.median(rates["fast"])
    print(f"\nbulk insert phase — {args.records:,} records x (1 record + 10 values + 10 history rows) on "
          f"{eng.db.dialect}, median of {args.reps}")
    print(f"set-based insert_rows {fast:8,.0f} records/s   baseline Core executemany {core:8,.0f} records/s   "
          f"{fast / core:4.2f}x")
    eng.close()


if __name__ == "__main__":
    main()
