"""Org-wide recall index (issue 16 item 3): the shared memory-mapped snapshot vs the baselines, in one run.

Loads N memories (256-d unit vectors, the WordLlama embedder's name, 500 records) straight into SQL, then prints:
  - snapshot build (once per org, by the first process; from ``ANN_MIN_ROWS`` rows on it includes the IVF
    layout: k-means, assignment and the rewrite in list order)
  - first org-wide query in a FRESH process: mapped snapshot (new)  vs  reading every embedding from SQL (old;
    skipped past 200k memories, where it took minutes and ~1 KB per memory of private memory)
  - warm p50 of the index's top-50: mapped snapshot  vs  numpy brute force over an in-RAM matrix (baseline)
  - exactness: top-50 equal to brute force (flat snapshots) and the mean top-10 overlap with exact search
    (IVF snapshots; candidates are scored exactly, so re-scoring them as recall does changes nothing), with a
    sweep over ``nprobe``
  - IVF snapshots: after max(2000, n / 20) new memories, the warm p50 while the snapshot is due (old version +
    exact delta), the workers' rebuild (``rebuild_due``; it reuses the lists) and the overlap after it
  - memory: the fresh process's RSS and its private (not shared) RSS

Vectors (``--vectors``): ``clustered`` (default) draws them like sentence embeddings are distributed — topics
with a power-law spectrum (a few directions carry most of the variance), each memory its topic's centre plus
noise of a topic-specific scale, queries drawn the same way (new points, not stored ones); ``random`` draws iid
unit vectors: no neighbourhood structure at all, the worst case of any partitioning index (every list is as
likely to hold a neighbour), printed to show that limit, not as a model of embeddings; ``text`` embeds generated
CRM sentences (``bench/org_texts.py``: templates × slot vocabularies, ~10^9 distinct sentences) with the real
WordLlama embedder, and draws the queries as new sentences of the same generator — real embedding geometry.

Goals (issue 16): 100k: first query in a fresh process ≤ 1 s, warm p50 ≤ 2× numpy brute force;
1M: warm p50 ≤ 50 ms with top-10 overlap ≥ 0.95.

Usage: .venv/bin/python bench/bench_org_index.py [--memories 100000] [--vectors clustered|random]
       [--nprobe 16,32,48,64,96] [--database-url postgresql://...]
On 1M memories the run needs ~4 GB of disk (SQLite ~1.6 GB, the snapshot 1 GB, its unsorted copy during the
build 1 GB) and ~3 GB of RAM (the vectors, the brute-force baseline), and takes several minutes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import cast

import numpy as np
from sqlalchemy import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run by path: `bench.org_texts` from the repo root

from memrelay.composition import Services
from memrelay.engine.adapters.vector_index import to_blob
from memrelay.engine.core.settings import Settings
from memrelay.engine.core.util import new_sortable_id, utcnow
from memrelay.engine.memory.org_vectors import ANN_MIN_ROWS, ExactOrgIndex
from memrelay.engine.stores.db.models import Memory, Record
from memrelay.engine.stores.fast_insert import insert_rows

EMBEDDER, DIM, K, TOP = "wordllama:l2_supercat_256", 256, 50, 10
OLD_BASELINE_MAX = 200_000  # reading every embedding from SQL per process: only measured up to here


def draw(rng: np.random.Generator, n: int, kind: str, centres: np.ndarray | None, spectrum: np.ndarray,
         spread: np.ndarray | None) -> np.ndarray:
    """``n`` unit vectors: iid (``random``) or topic centre + noise with the given spectrum (``clustered``)."""
    if kind == "random" or centres is None or spread is None:
        x = rng.standard_normal((n, DIM), dtype=np.float32)
    else:
        topic = rng.integers(0, len(centres), n)
        x = centres[topic] + spread[topic, None] * rng.standard_normal((n, DIM), dtype=np.float32) * spectrum
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32, copy=False)


def embedded_texts(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` WordLlama embeddings (unit rows) of generated CRM sentences, embedded in batches."""
    from bench.org_texts import sentences
    from memrelay.engine.adapters.embedding.factory import build_embedder

    emb = build_embedder("wordllama")
    texts = sentences(rng, n)
    out = np.concatenate([emb.embed(texts[i:i + 20_000]) for i in range(0, n, 20_000)]).astype(np.float32)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def vectors(rng: np.random.Generator, n: int, kind: str, centres: np.ndarray | None, spectrum: np.ndarray,
            spread: np.ndarray | None) -> np.ndarray:
    """``n`` vectors of the chosen kind (generated or embedded text)."""
    if kind == "text":
        return embedded_texts(rng, n)
    return draw(rng, n, kind, centres, spectrum, spread)


def topics(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Topic centres (one per ~64 memories), their noise scales and the power-law spectrum shared by both."""
    spectrum = (1.0 / np.sqrt(np.arange(1, DIM + 1))).astype(np.float32)
    spectrum *= np.sqrt(DIM) / np.linalg.norm(spectrum)
    centres = (rng.standard_normal((max(1, n // 64), DIM), dtype=np.float32) * spectrum)
    spread = rng.uniform(0.5, 1.0, len(centres)).astype(np.float32)
    return centres, spread, spectrum

FRESH = """
import json, sys, time
t0 = time.perf_counter()
import numpy as np
from pathlib import Path
from memrelay.engine.core.settings import Settings
from memrelay.engine.stores.db.database import Database
from memrelay.engine.memory.org_vectors import ExactOrgIndex
settings = Settings.model_validate_json(sys.argv[1])
db = Database.from_settings(settings)
q = np.load(sys.argv[3])
idx = ExactOrgIndex(snapshot_dir=Path(sys.argv[4]) if sys.argv[4] != "-" else None, max_rows=10**7)
t1 = time.perf_counter()
with db.read() as s:
    ids = idx.search(s, sys.argv[2], q, limit=50, embedder="@EMBEDDER@", dim=@DIM@)
t2 = time.perf_counter()
status = dict(l.split(":", 1) for l in open("/proc/self/status").read().splitlines() if ":" in l)
smaps = open("/proc/self/smaps_rollup").read().splitlines()
private = sum(int(l.split()[1]) for l in smaps if l.startswith(("Private_Clean", "Private_Dirty")))
print(json.dumps({"first_query_s": t2 - t1, "since_start_s": t2 - t0, "ids": ids,
                  "rss_mb": int(status["VmRSS"].split()[0]) / 1024, "private_mb": private / 1024}))
""".replace("@EMBEDDER@", EMBEDDER).replace("@DIM@", str(DIM))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--memories", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--vectors", choices=["clustered", "random", "text"], default="clustered")
    ap.add_argument("--nprobe", default="32,64,96,128,192,256", help="lists probed per query, swept on IVF snapshots")
    ap.add_argument("--ann-min-rows", type=int, default=ANN_MIN_ROWS)
    ap.add_argument("--keep", action="store_true", help="keep the data directory (SQLite file, snapshot)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="memrelay-orgidx-"))
    settings = Settings(data_dir=tmp, database_url=args.database_url, redis_url="redis://unused", log_json=False)
    eng = Services(settings)
    if eng.db.dialect == "postgresql":
        with eng.db.engine.begin() as c:
            c.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    eng.migrate()
    org = eng.tenancy.create_org(f"orgidx-{int(time.time())}").id
    rng = np.random.default_rng(7)
    centres, spread, spectrum = topics(rng, args.memories)
    vecs = embedded_texts(rng, args.memories) if args.vectors == "text" else np.concatenate(
        [draw(rng, min(100_000, args.memories - i), args.vectors, centres, spectrum, spread)
         for i in range(0, args.memories, 100_000)])
    now = utcnow() - timedelta(hours=1)  # written a while ago: the fresh process starts long after the load
    recs = [{"id": new_sortable_id("rec"), "org_id": org, "entity_type": "contact", "primary_key": f"email:r{i}@b.io",
             "version": 1, "created_at": now, "updated_at": now} for i in range(500)]
    t = time.perf_counter()
    with eng.db.session() as s:
        insert_rows(s, cast(Table, Record.__table__), recs)
        for start in range(0, args.memories, 10_000):
            insert_rows(s, cast(Table, Memory.__table__), [
                {"id": f"mem_{i:012d}", "org_id": org, "record_id": recs[i % 500]["id"], "entity_type": "contact",
                 "text": f"memory {i}", "tags": [], "ts": now, "created_at": now, "updated_at": now,
                 "embedding": to_blob(vecs[i]), "embedder": EMBEDDER, "index_state": "indexed", "seen_count": 1,
                 "provenance": []} for i in range(start, min(args.memories, start + 10_000))])
    load_s = time.perf_counter() - t
    if eng.db.dialect == "postgresql":
        with eng.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("VACUUM ANALYZE memories")
    queries = vectors(rng, args.queries, args.vectors, centres, spectrum, spread)
    snap_dir = tmp / "org_vectors"

    # build once (what the first process of the deployment does)
    shared = ExactOrgIndex(snapshot_dir=snap_dir, max_rows=10**7, ann_min_rows=args.ann_min_rows)
    t = time.perf_counter()
    with eng.db.read() as s:
        shared.warm(s, org, embedder=EMBEDDER, dim=DIM)
    build_s = time.perf_counter() - t

    np.save(tmp / "q.npy", queries[0])

    def fresh(snapshot: str) -> dict[str, object]:
        out = subprocess.run([sys.executable, "-c", FRESH, settings.model_dump_json(), org, str(tmp / "q.npy"),
                              snapshot], capture_output=True, text=True, check=True, timeout=600)
        return cast(dict[str, object], json.loads(out.stdout.strip().splitlines()[-1]))

    new_first = fresh(str(snap_dir))
    old_first = fresh("-") if args.memories <= OLD_BASELINE_MAX else None

    # warm p50: the shared index vs brute force over the same vectors in RAM (ids are mem_<row>, so row i of
    # ``vecs`` is memory i)
    matrix = vecs

    def exact_top(q: np.ndarray, k: int) -> list[str]:
        sims = matrix @ q
        top = np.argpartition(-sims, k - 1)[:k]
        return [f"mem_{i:012d}" for i in top[np.argsort(-sims[top], kind="stable")]]

    def overlap(got: list[str], want: list[str]) -> float:
        return len(set(got[:TOP]) & set(want[:TOP])) / TOP

    t_idx, t_bf, exact, ov10 = [], [], 0, []
    with eng.db.read() as s:
        for q in queries:
            t = time.perf_counter()
            got = cast(list[str], shared.search(s, org, q, limit=K, embedder=EMBEDDER, dim=DIM))
            t_idx.append(time.perf_counter() - t)
            t = time.perf_counter()
            want = exact_top(q, K)
            t_bf.append(time.perf_counter() - t)
            exact += got == want
            top10 = cast(list[str], shared.search(s, org, q, limit=TOP, embedder=EMBEDDER, dim=DIM))
            ov10.append(overlap(top10, want))
    p50_idx, p50_bf = statistics.median(t_idx) * 1000, statistics.median(t_bf) * 1000
    snap = shared._orgs[(org, EMBEDDER, DIM)].snapshot
    ivf = snap is not None and snap.centroids is not None
    sweep: list[tuple[int, float, float]] = []
    if ivf:
        with eng.db.read() as s:
            for nprobe in [int(x) for x in args.nprobe.split(",") if x]:
                probe = ExactOrgIndex(snapshot_dir=snap_dir, max_rows=10**7, nprobe=nprobe)
                probe.warm(s, org, embedder=EMBEDDER, dim=DIM)  # map it (and its pages), as warm-up does
                times, o10 = [], []
                for q in queries:
                    t = time.perf_counter()
                    probe.search(s, org, q, limit=K, embedder=EMBEDDER, dim=DIM)
                    times.append(time.perf_counter() - t)
                    o10.append(overlap(cast(list[str], probe.search(s, org, q, limit=TOP, embedder=EMBEDDER,
                                                                    dim=DIM)), exact_top(q, K)))
                sweep.append((nprobe, statistics.median(times) * 1000, float(np.mean(o10))))
    # a rebuild (what the process that sees more than max(2000, n / 20) new memories does): the new version reuses
    # the lists (no k-means), then the top-10 overlap on the grown org
    rebuilt: tuple[int, float, float, float] | None = None
    if ivf:
        extra = vectors(rng, max(2000, args.memories // 20) + 1, args.vectors, centres, spectrum, spread)
        stamp = utcnow()
        with eng.db.session() as s:
            for start in range(0, len(extra), 10_000):
                insert_rows(s, cast(Table, Memory.__table__), [
                    {"id": f"mem_{args.memories + i:012d}", "org_id": org, "record_id": recs[i % 500]["id"],
                     "entity_type": "contact", "text": f"memory {args.memories + i}", "tags": [], "ts": stamp,
                     "created_at": stamp, "updated_at": stamp, "embedding": to_blob(extra[i]), "embedder": EMBEDDER,
                     "index_state": "indexed", "seen_count": 1, "provenance": []}
                    for i in range(start, min(len(extra), start + 10_000))])
        matrix = np.concatenate([vecs, extra])
        with eng.db.read() as s:
            # due: queries answer from the old version + the exact delta until the workers' round rebuilds
            shared.search(s, org, queries[0], limit=K, embedder=EMBEDDER, dim=DIM)  # reads the delta
            t_due = []
            for q in queries:
                t = time.perf_counter()
                shared.search(s, org, q, limit=K, embedder=EMBEDDER, dim=DIM)
                t_due.append(time.perf_counter() - t)
            t = time.perf_counter()
            assert shared.rebuild_due(s) == [org]  # what the workers' org-snapshots round runs
            rebuild_s = time.perf_counter() - t
            after = [overlap(cast(list[str], shared.search(s, org, q, limit=TOP, embedder=EMBEDDER, dim=DIM)),
                             exact_top(q, K)) for q in queries]
        rebuilt = (len(extra), rebuild_s, float(np.mean(after)), statistics.median(t_due) * 1000)
    first_ok = old_first is None or new_first["ids"] == old_first["ids"]
    layout = f"IVF, {len(snap.centroids)} lists, nprobe {shared.probes(len(snap.centroids))}" \
        if ivf and snap and snap.centroids is not None else "flat (exact)"
    print(f"\norg-wide index — {args.memories:,} memories x {DIM}-d ({args.vectors}) on {eng.db.dialect}"
          f" (SQL load {load_s:.1f} s); snapshot: {layout}")
    print(f"snapshot build (once per org, first process)   {build_s * 1000:9.1f} ms")
    old_s = f"{cast(float, old_first['first_query_s']) * 1000:9.1f} ms" if old_first else "  skipped"
    print(f"first query, fresh process: mapped snapshot     {cast(float, new_first['first_query_s']) * 1000:9.1f} ms"
          f"   baseline (read all from SQL) {old_s}"
          f"   goal ≤ 1000 ms: {'met' if cast(float, new_first['first_query_s']) <= 1 else 'MISSED'}"
          f"   same top-{K}: {first_ok}")
    old_mem = f"{old_first['rss_mb']:.0f} / {old_first['private_mb']:.0f} MB" if old_first else "skipped"
    print(f"fresh process RSS / private:  mapped {new_first['rss_mb']:.0f} / {new_first['private_mb']:.0f} MB"
          f"   baseline {old_mem}")
    print(f"warm top-{K} p50: shared index {p50_idx:7.2f} ms   baseline numpy brute force {p50_bf:7.2f} ms"
          f"   ratio {p50_idx / p50_bf:5.2f}×  goal ≤ 2×: {'met' if p50_idx <= 2 * p50_bf else 'MISSED'}"
          f"   exact top-{K}: {exact}/{len(queries)}")
    mean10 = float(np.mean(ov10))
    goal = "met" if p50_idx <= 50 and mean10 >= 0.95 else "MISSED"
    print(f"top-{TOP} overlap with exact (mean over the queries): {mean10:.3f}   goal (1M) p50 ≤ 50 ms and overlap ≥ 0.95: {goal}")
    for nprobe, p50, a in sweep:
        print(f"  nprobe {nprobe:4d}: warm top-{K} p50 {p50:7.2f} ms ({p50 / p50_bf:5.2f}× brute force)"
              f"   top-{TOP} overlap {a:.3f}")
    if rebuilt is not None:
        print(f"{rebuilt[0]:,} new memories: warm top-{K} p50 while due (old snapshot + exact delta) {rebuilt[3]:7.2f} ms;"
              f" the workers' rebuild (reuses the lists, no k-means, off the request path) {rebuilt[1] * 1000:9.1f} ms"
              f"   top-{TOP} overlap afterwards {rebuilt[2]:.3f}")
    eng.close()
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
