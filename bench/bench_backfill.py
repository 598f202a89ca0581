"""Backfill with memory templates: the batch path next to one memorize per record, in the same run.

A fake HubSpot (local HTTP server, real hubspot-api-client) serves N contacts; each is synced with the default
mapping, whose memory template renders one text per contact. Printed side by side:
  - per-record: ``Backfill(batch=False)``: one ``Memories.memorize`` per record (the path before issue 16 #7)
  - batch:      ``Backfill(batch=True)``: per page, :func:`memrelay.engine.memory.batch.memorize_many`
                (offline extraction of every row, one embedder call, one ``store_memories`` in one transaction)
  - no memories: the same sync writing properties only (the ceiling for a memory path)
Goal (issue 16): batch ≥ 500 records/s.

On a shared, loaded machine single runs swing widely: ``--repeat N`` runs the batch and the no-memories sync N
times, interleaved, and prints their medians and the median of the per-round ratio (the figure to compare).

Usage: .venv/bin/python bench/bench_backfill.py [--contacts 2000] [--per-record-contacts 500] [--repeat 3]
       [--database-url ...]
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
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "connectors")]

from fake_hubspot import FakeHubSpot, make_contacts  # noqa: E402

from memrelay.composition import Services  # noqa: E402
from memrelay.engine.adapters.vector_index import FLUSH_DELAY_S  # noqa: E402
from memrelay.engine.core.settings import Settings  # noqa: E402
from memrelay.engine.ingest.backfill import Backfill  # noqa: E402


def settle(eng: Services) -> None:
    """Untimed: let the background Milvus flush a run scheduled finish (and seal now) before the next run starts,
    so no run pays for the previous one's index work."""
    time.sleep(FLUSH_DELAY_S + 0.5)
    eng.index.vector_index.flush(eng.index.current_collection())


def run(eng: Services, n: int, *, batch: bool, memories: bool = True) -> tuple[int, float, int]:
    fake = FakeHubSpot(contacts=make_contacts(n)).start()
    try:
        org = eng.tenancy.create_org(f"bench-backfill-{time.time_ns()}")
        src = eng.sources.create(org.id, connector="hubspot", config={"api_base": fake.url,
                                                                      "access_token": fake.token,
                                                                      "sync_objects": ["contact"]})
        backfill = Backfill(eng.sources, eng.records, eng.memories, batch=batch)
        t0 = time.perf_counter()
        summary = backfill.sync_source(src["id"], memories=memories)
        secs = time.perf_counter() - t0
    finally:
        fake.stop()
    settle(eng)
    assert summary.errors == 0, summary.error_samples
    return summary.records, secs, summary.memories


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--contacts", type=int, default=2000)
    ap.add_argument("--per-record-contacts", type=int, default=500)
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--embedder", default=None, help="wordllama (default) | minilm")
    ap.add_argument("--repeat", type=int, default=1, help="interleaved rounds of batch and no-memories (medians)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="memrelay-bench-backfill-"))
    extra = {"embedder": args.embedder} if args.embedder else {}
    eng = Services(Settings(data_dir=tmp, database_url=args.database_url, redis_url="redis://unused",
                            log_json=False, milvus_uri=str(tmp / "milvus.db"), crm_test_hosts="127.0.0.1,localhost",
                            log_level="WARNING", **extra))
    eng.migrate()
    try:
        eng.embedder.embed(["warm up"])  # load the embedder outside the timings
        run(eng, 50, batch=True)  # warm SQL, mapping, schema vectors and the index
        plan = [("per-record memorize (baseline)", args.per_record_contacts, False, True)]
        plan += [("batch memorize_many", args.contacts, True, True),
                 ("no memories (ceiling)", args.contacts, True, False)] * max(1, args.repeat)
        rates: dict[str, list[float]] = {}
        for label, n, batch, mem in plan:
            done, secs, memories = run(eng, n, batch=batch, memories=mem)
            rates.setdefault(label, []).append(done / secs)
            print(f"{label:34} {done:7d} records {memories:7d} memories {secs:7.2f}s {done / secs:9.0f} records/s",
                  flush=True)
        base = rates["per-record memorize (baseline)"][0]
        batches, ceilings = rates["batch memorize_many"], rates["no memories (ceiling)"]
        new, ceiling = statistics.median(batches), statistics.median(ceilings)
        if len(batches) > 1:
            ratios = [b / c for b, c in zip(batches, ceilings, strict=True)]
            print(f"medians of {len(batches)} rounds: batch {new:.0f} records/s, no memories {ceiling:.0f} records/s,"
                  f" batch / no-memories per round {statistics.median(ratios):.0%}"
                  f" ({', '.join(f'{r:.0%}' for r in ratios)})")
        print(f"batch / per-record: {new / base:.1f}x   goal ≥ 500 records/s: {'met' if new >= 500 else 'NOT met'}")
        # the memory path can at best reach the properties-only rate: below 500 records/s the goal is out of
        # its reach whatever the memory path does
        print(f"batch / no-memories ceiling: {new / ceiling:.0%}   memory path {1000 / new - 1000 / ceiling:.2f} ms"
              f"/record on top of {1000 / ceiling:.2f} ms/record without memories")
    finally:
        eng.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
