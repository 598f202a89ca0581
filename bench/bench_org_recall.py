"""Org-wide recall in two situations the org-wide index handles specially, each printed next to the behaviour
before, measured in the same run (the queries alternate between the two, each question asked once each way):

* ``window`` — an org that wrote a burst and stopped: each query re-reads (or probes) the rows stamped within
  ``LOOKBACK_S`` (30 s) of the newest stamp it knows, as a transaction stamped earlier may still commit. Once every
  stamp it knows is older than that, nothing can still commit below it and the window starts at the newest stamp
  (``_OrgState.settled``); before, the burst was read back at every query until the next snapshot rebuild (here:
  the settled bound dropped before each query). Takes ~70 s (it waits the window out twice).
* ``writing`` — an org that keeps writing: a burst of ``--burst`` memories just written (within the window), then a
  new memory before every query. Each query sums the window's stamps in SQL and reads only the rows stamped after
  the newest it read (:class:`~memrelay.engine.memory.org_vectors._Window`); before, any change in the window made
  every query read all of its ids and stamps again (here: the window forgotten before each query).
* ``current`` — an org where most memories were superseded (each record's budget restated ``--changes`` times, the
  newer statement superseding the older): a recall of current facts drops superseded memories, and the index now
  leaves them out of its candidates; before, it returned them and recall's SQL re-check dropped them, fetching 4x
  and 16x as many candidates when too few survived (here: the index asked for every memory).

Usage: .venv/bin/python bench/bench_org_recall.py [--scenario all|window|writing|current] [--memories 20000]
       [--burst 1500] [--records 500] [--changes 40] [--queries 40]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from sqlalchemy import func, select  # noqa: E402

from memrelay.composition import Services  # noqa: E402
from memrelay.engine.core.settings import Settings  # noqa: E402
from memrelay.engine.memory import org_vectors  # noqa: E402
from memrelay.engine.memory.batch import memorize_many  # noqa: E402
from memrelay.engine.memory.memories import MemorizeRequest  # noqa: E402
from memrelay.engine.memory.org_vectors import ExactOrgIndex  # noqa: E402
from memrelay.engine.memory.recall import RecallRequest  # noqa: E402
from memrelay.engine.stores.db.models import Memory  # noqa: E402
from memrelay.engine.stores.identity import Identifiers  # noqa: E402

QUERIES = ["What budget does the account have?", "Which database do they run?", "who decides the renewal",
           "which deal moved stage"]


@contextmanager
def exact_index_services() -> Iterator[Services]:
    """Services on a fresh SQLite data dir whose org-wide recall runs on the exact index (Milvus on demand, not
    started), removed afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix="memrelay-bench-org-"))
    eng = Services(Settings(data_dir=tmp, redis_url="redis://unused", log_json=False,
                            milvus_uri="http://127.0.0.1:9", milvus_wanted_file=str(tmp / "milvus.wanted")))
    eng.migrate()
    try:
        yield eng
    finally:
        eng.close()
        shutil.rmtree(tmp, ignore_errors=True)


def alternating(eng: Services, org: str, queries: int, before: Callable[[], Any],
                after: Callable[[], Any] = lambda: None, before_now: Callable[[], Any] = lambda: None
                ) -> tuple[float, float]:
    """p50 seconds of org-wide recalls as they run now (``before_now()`` called first) and with ``before()`` called
    first (``after()`` then undoes it), alternating; each question asked once each way."""
    now: list[float] = []
    old: list[float] = []
    for i in range(queries * 2):
        req = RecallRequest(query=f"{QUERIES[i // 2 % len(QUERIES)]} {i // 2}")
        (before if i % 2 else before_now)()
        t = time.perf_counter()
        eng.recall.smart_recall(org, req)
        (old if i % 2 else now).append(time.perf_counter() - t)
        if i % 2:
            after()
    return statistics.median(now), statistics.median(old)


def _contacts(eng: Services, org: str, n: int) -> None:
    memorize_many(eng.memories, org, [MemorizeRequest(
        content=f"Contact {i} uses PostgreSQL and has a budget of ${i}00.", verbatim=True,
        identifiers=Identifiers(type="contact", email=f"c{i % 500}@bench.io")) for i in range(n)])


def _burst(eng: Services, org: str, n: int) -> None:
    memorize_many(eng.memories, org, [MemorizeRequest(
        content=f"Deal {i} moved to stage {i % 5} with a budget of {i} k.", verbatim=True,
        identifiers=Identifiers(type="contact", email=f"d{i % 300}@bench.io")) for i in range(n)])


def window(args: argparse.Namespace) -> None:
    with exact_index_services() as eng:
        org = eng.tenancy.create_org("window").id
        _contacts(eng, org, args.memories)
        wait = org_vectors.LOOKBACK_S + 1
        time.sleep(wait)
        eng.recall.smart_recall(org, RecallRequest(query="warm up"))  # the snapshot: every memory so far
        _burst(eng, org, args.burst)
        time.sleep(wait)  # the burst is over and older than the window
        states = list(eng.recall.exact._orgs.values())

        def unsettle() -> None:
            for st in states:
                st.settled = None

        now, old = alternating(eng, org, args.queries, unsettle)
        rows = max((st.window_rows for st in states), default=0)
        print(f"org-wide recall, {args.memories:,} memories + a burst of {args.burst:,} that ended {wait} s ago")
        print(f"  window settled (now)                     p50 {now * 1000:7.2f} ms")
        print(f"  burst read back at every query (before)  p50 {old * 1000:7.2f} ms   (its window: {rows:,} rows)")


def writing(args: argparse.Namespace) -> None:
    with exact_index_services() as eng:
        org = eng.tenancy.create_org("writing").id
        _contacts(eng, org, args.memories)
        eng.recall.smart_recall(org, RecallRequest(query="warm up"))  # the snapshot: every memory so far
        _burst(eng, org, args.burst)
        for q in QUERIES:  # the burst read once; compiled statements, caches
            eng.recall.smart_recall(org, RecallRequest(query=q))
        states = list(eng.recall.exact._orgs.values())
        written = iter(range(10 ** 9))

        def write() -> None:  # untimed: a new memory before every query, as an org that keeps writing
            i = next(written)
            eng.memories.memorize(org, MemorizeRequest(content=f"Ticket {i} asks about SSO for {i} seats.",
                                                       verbatim=True, email=f"t{i}@bench.io", type="contact"))

        def forget() -> None:
            write()
            for st in states:
                st.window = None

        now, old = alternating(eng, org, args.queries, forget, before_now=write)
        rows = max((st.window_rows for st in states), default=0)
        print(f"org-wide recall, {args.memories:,} memories + {args.burst:,} just written, a new memory before each query")
        print(f"  window summed, new rows read (now)       p50 {now * 1000:7.2f} ms")
        print(f"  window read back in full (before)        p50 {old * 1000:7.2f} ms   (its window: {rows:,} rows)")


def current(args: argparse.Namespace) -> None:
    with exact_index_services() as eng:
        org = eng.tenancy.create_org("current").id
        start = datetime(2025, 1, 1, tzinfo=UTC)
        for k in range(args.changes):  # each round restates every record's budget, a day later
            memorize_many(eng.memories, org, [MemorizeRequest(
                content=f"Account {i} has a budget of ${(k + 1) * 1000 + i} for the data platform.",
                identifiers=Identifiers(type="contact", email=f"a{i}@bench.io"), timestamp=start + timedelta(days=k))
                for i in range(args.records)])
        with eng.db.read() as s:
            total = s.scalar(select(func.count()).select_from(Memory).where(Memory.org_id == org)) or 0
            live = s.scalar(select(func.count()).select_from(Memory).where(
                Memory.org_id == org, Memory.superseded_by.is_(None))) or 0
        index, plain = eng.recall.exact, ExactOrgIndex.search

        def every_memory(*a: Any, **kw: Any) -> list[str] | None:
            return plain(index, *a, **{**kw, "include_superseded": True})

        def ask_for_every_memory() -> None:
            index.search = every_memory  # type: ignore[method-assign]

        def restore() -> None:
            del index.search

        for q in QUERIES:  # the snapshot, compiled statements, caches
            eng.recall.smart_recall(org, RecallRequest(query=q))
        now, old = alternating(eng, org, args.queries, ask_for_every_memory, restore)
        print(f"org-wide recall of current facts, {total:,} memories on {args.records:,} records, {live:,} of them"
              " not superseded")
        print(f"  superseded left out by the index (now)   p50 {now * 1000:7.2f} ms")
        print(f"  every memory a candidate (before)        p50 {old * 1000:7.2f} ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", choices=["all", "window", "writing", "current"], default="all")
    ap.add_argument("--memories", type=int, default=20_000)
    ap.add_argument("--burst", type=int, default=1_500)
    ap.add_argument("--records", type=int, default=500)
    ap.add_argument("--changes", type=int, default=40)
    ap.add_argument("--queries", type=int, default=40)
    args = ap.parse_args()
    if args.scenario in ("all", "writing"):
        writing(args)
    if args.scenario in ("all", "current"):
        current(args)
    if args.scenario in ("all", "window"):
        window(args)


if __name__ == "__main__":
    main()
