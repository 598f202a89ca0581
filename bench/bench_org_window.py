"""Org-wide recall of an org that stopped writing: its look-back window settled vs read back at every query.

The org-wide index reads back, at each query, the rows stamped within ``LOOKBACK_S`` (30 s) of the newest stamp it
knows (a transaction stamped earlier may still commit). Once every stamp it knows is older than that window
nothing can still commit below it, and the window starts at the newest stamp (``_OrgState.settled``): an org that
wrote a burst and went quiet no longer re-reads that burst at every query until the next snapshot rebuild.

Seeds ``--memories`` memories, waits out the window, builds the org's snapshot, writes a burst of ``--burst``
memories, waits out the window again, then times org-wide smart recalls — alternating, in the same run: as the
index runs (settled) and with the settled bound dropped before each query (every query reads the burst back, the
behaviour before), each question asked once each way. Takes ~70 s (two waits of 31 s).

Usage: .venv/bin/python bench/bench_org_window.py [--memories 20000] [--burst 1500] [--queries 40]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from memrelay.composition import Services  # noqa: E402
from memrelay.engine.core.settings import Settings  # noqa: E402
from memrelay.engine.memory import org_vectors  # noqa: E402
from memrelay.engine.memory.batch import memorize_many  # noqa: E402
from memrelay.engine.memory.memories import MemorizeRequest  # noqa: E402
from memrelay.engine.memory.recall import RecallRequest  # noqa: E402
from memrelay.engine.stores.identity import Identifiers  # noqa: E402

QUERIES = ["budget PostgreSQL", "which deal moved stage", "who decides the renewal", "data stack"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--memories", type=int, default=20_000)
    ap.add_argument("--burst", type=int, default=1_500)
    ap.add_argument("--queries", type=int, default=40)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="memrelay-bench-window-"))
    settings = Settings(data_dir=tmp, redis_url="redis://unused", log_json=False, milvus_uri="http://127.0.0.1:9",
                        milvus_wanted_file=str(tmp / "milvus.wanted"))  # org-wide recall from the exact index
    eng = Services(settings)
    try:
        eng.migrate()
        org = eng.tenancy.create_org("window").id
        memorize_many(eng.memories, org, [MemorizeRequest(
            content=f"Contact {i} uses PostgreSQL and has a budget of ${i}00.", verbatim=True,
            identifiers=Identifiers(type="contact", email=f"c{i % 500}@bench.io")) for i in range(args.memories)])
        wait = org_vectors.LOOKBACK_S + 1
        time.sleep(wait)
        eng.recall.smart_recall(org, RecallRequest(query="warm up"))  # the snapshot: every memory so far
        memorize_many(eng.memories, org, [MemorizeRequest(
            content=f"Deal {i} moved to stage {i % 5} with a budget of {i} k.", verbatim=True,
            identifiers=Identifiers(type="contact", email=f"d{i % 300}@bench.io")) for i in range(args.burst)])
        time.sleep(wait)  # the burst is over and older than the window
        states = list(eng.recall.exact._orgs.values())
        settled: list[float] = []
        read_back: list[float] = []
        for i in range(args.queries * 2):
            old = i % 2 == 1
            if old:
                for st in states:
                    st.settled = None
            t = time.perf_counter()
            eng.recall.smart_recall(org, RecallRequest(query=f"{QUERIES[i // 2 % len(QUERIES)]} {i // 2}"))
            (read_back if old else settled).append(time.perf_counter() - t)
        window = max((st.window_rows for st in states), default=0)
        print(f"org-wide recall, {args.memories:,} memories + a burst of {args.burst:,} ended {wait} s ago, "
              f"{args.queries} queries each (alternating)")
        print(f"  window settled (now)              p50 {statistics.median(settled[1:]) * 1000:7.2f} ms")
        print(f"  burst read back at every query    p50 {statistics.median(read_back) * 1000:7.2f} ms"
              f"   (the window it reads: {window:,} rows)")
    finally:
        eng.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
