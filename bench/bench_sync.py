"""CRM backfill throughput against the local fake HubSpot server (real hubspot-api-client, real SQL).

Prints, side by side in one run:
  - baseline: rows/s of just paging through the fake API with the SDK (list API, 100 per page, no writes)
  - sync:     rows/s of ``memrelay.engine.ingest.backfill.Backfill.sync_source`` (page → mapping → upsert_many, one transaction
              per page, cursor saved per page), without memories
  - sync+mem: rows/s with memories (one memorize call per record: embed + store + index), on a subset

Usage: .venv/bin/python bench/bench_sync.py [--contacts 5000] [--memory-contacts 500] [--database-url ...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "connectors")]

from fake_hubspot import FakeHubSpot, make_contacts  # noqa: E402

from memrelay.composition import Services  # noqa: E402
from memrelay.connectors.hubspot.api import HubSpotApi  # noqa: E402
from memrelay.connectors.mapping import load_default_mapping  # noqa: E402
from memrelay.connectors.sync import HubSpotPager  # noqa: E402
from memrelay.engine.core.settings import Settings  # noqa: E402


def baseline(fake: FakeHubSpot) -> tuple[int, float]:
    """Page through every contact with the SDK, writing nothing."""
    pager = HubSpotPager(HubSpotApi({"api_base": fake.url, "access_token": fake.token}),
                         load_default_mapping("hubspot"), ["contact"])
    t0 = time.perf_counter()
    n = sum(len(page.records) for page in pager.pages("contact", {}, None))
    return n, time.perf_counter() - t0


def run_sync(eng: Services, fake: FakeHubSpot, *, memories: bool) -> tuple[int, float, int]:
    org = eng.tenancy.create_org(f"bench-sync-{time.time_ns()}")
    src = eng.sources.create(org.id, connector="hubspot", config={"api_base": fake.url, "access_token": fake.token,
                                                                  "sync_objects": ["contact"]})
    summary = eng.backfill.sync_source(src["id"], memories=memories)
    assert summary.errors == 0, summary.error_samples
    return summary.records, summary.seconds, summary.pages


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--contacts", type=int, default=5000)
    ap.add_argument("--memory-contacts", type=int, default=500)
    ap.add_argument("--database-url", default=None)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="memrelay-bench-sync-"))
    eng = Services(Settings(data_dir=tmp, database_url=args.database_url, redis_url="redis://unused", log_json=False,
                          milvus_uri=str(tmp / "milvus.db")))
    eng.migrate()
    fake = FakeHubSpot(contacts=make_contacts(args.contacts)).start()
    try:
        n, secs = baseline(fake)
        print(f"{'baseline (SDK paging only)':34} {n:7d} rows  {secs:7.2f}s  {n / secs:9.0f} rows/s")
        n, secs, pages = run_sync(eng, fake, memories=False)
        print(f"{'sync, no memories':34} {n:7d} rows  {secs:7.2f}s  {n / secs:9.0f} rows/s  ({pages} pages)")
        small = FakeHubSpot(contacts=make_contacts(args.memory_contacts)).start()
        try:
            eng.embedder.embed(["warm up"])  # load the embedder outside the timing
            n, secs, _ = run_sync(eng, small, memories=True)
        finally:
            small.stop()
        print(f"{'sync with memories':34} {n:7d} rows  {secs:7.2f}s  {n / secs:9.0f} rows/s")
    finally:
        fake.stop()
        eng.close()


if __name__ == "__main__":
    main()
