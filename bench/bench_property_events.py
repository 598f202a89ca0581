"""Cost of the per-property events: a bulk load (``Records.upsert_many``, 500 rows per transaction) of N new
records x 10 properties, with today's events (``record.created`` + one ``memory.property.updated`` per property +
one ``memory.properties.bulk_updated`` per record) next to a baseline in the same run that emits what memrelay
emitted before (one ``bulk_updated`` per record, no ``record.created``), each on its own fresh database.

Usage: .venv/bin/python bench/bench_property_events.py [--records 20000] [--database-url postgresql://...]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from memrelay.composition import Services
from memrelay.engine.core.settings import Settings
from memrelay.engine.stores import properties
from memrelay.engine.stores.db.models import OutboxEvent
from memrelay.engine.stores.identity import Identifiers
from memrelay.engine.stores.properties import Provenance

TITLES = ["Engineer", "VP Engineering", "CTO", "Head of Sales", "Account Executive", "Designer", "CFO"]


def row(i: int, rnd: random.Random) -> dict[str, object]:
    return {"first_name": f"First{i}", "last_name": f"Last{i % 9973}", "job_title": rnd.choice(TITLES),
            "company_name": f"Company {i % 5000}", "lifecycle_stage": "lead", "lead_source": "ads",
            "city": f"City{i % 300}", "country": "Germany", "phone": f"+49 30 {i:07d}", "newsletter_opt_in": i % 3 == 0}


def _old_event(row: Any) -> bool:
    """Whether memrelay emitted this queued outbox row before issue #13: no ``record.created``, and a
    ``memory.property.updated`` only for a write that changed one property (else one ``bulk_updated``)."""
    kind, payload = (row[2], row[3]) if isinstance(row, tuple) else (row["event_type"], row["payload"])
    if kind == "record.created":
        return False
    return kind != "memory.property.updated" or len(payload.get("changedProperties") or [None]) == 1


def load(records: int, database_url: str | None) -> tuple[float, int]:
    tmp = Path(tempfile.mkdtemp(prefix="memrelay-bench-events-"))
    eng = Services(Settings(data_dir=tmp, database_url=database_url, redis_url="redis://unused", log_json=False))
    if eng.db.dialect == "postgresql":
        with eng.db.engine.begin() as c:
            c.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    eng.migrate()
    org = eng.tenancy.create_org(f"bench-{time.time_ns()}")
    rnd = random.Random(7)
    prov = Provenance(source="bench")
    t0 = time.perf_counter()
    for start in range(0, records, 500):
        eng.records.upsert_many(org.id, [(Identifiers(type="contact", email=f"u{i}@bench.example"), row(i, rnd), prov)
                                         for i in range(start, min(records, start + 500))])
    elapsed = time.perf_counter() - t0
    with eng.db.read() as s:
        events = s.scalar(select(func.count()).select_from(OutboxEvent)) or 0
    eng.close()
    return records / elapsed, events


def baseline(records: int, database_url: str | None) -> tuple[float, int]:
    """The same load emitting the old events: the rows the old code did not write are dropped at flush."""
    real_flush = properties.PendingWrites.flush

    def flush(self: properties.PendingWrites, s: Any) -> None:
        self.outbox = [r for r in self.outbox if _old_event(r)]
        real_flush(self, s)

    properties.PendingWrites.flush = flush  # type: ignore[method-assign]
    try:
        return load(records, database_url)
    finally:
        properties.PendingWrites.flush = real_flush  # type: ignore[method-assign]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=20_000)
    ap.add_argument("--database-url", default=None)
    args = ap.parse_args()
    old_rate, old_events = baseline(args.records, args.database_url)
    new_rate, new_events = load(args.records, args.database_url)
    print(f"new records x 10 properties: {args.records} ({'PostgreSQL' if args.database_url else 'SQLite'}), "
          "Records.upsert_many, 500 per transaction")
    print(f"{'':36}{'records/s':>10}{'outbox rows':>13}")
    print(f"{'per-property events + record.created':36}{new_rate:>10.0f}{new_events:>13}")
    print(f"{'baseline: one event per write':36}{old_rate:>10.0f}{old_events:>13}")
    print(f"change: {100 * (new_rate - old_rate) / old_rate:+.1f}% records/s")


if __name__ == "__main__":
    main()
