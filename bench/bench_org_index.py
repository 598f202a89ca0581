"""Org-wide recall index (issue 16 item 3): the shared memory-mapped snapshot vs the baselines, in one run.

Loads N memories (random unit vectors, 256-d, the WordLlama embedder's name, 500 records) straight into SQL,
then prints:
  - snapshot build (once per org, by the first process)
  - first org-wide query in a FRESH process: mapped snapshot (new)  vs  reading every embedding from SQL (old)
  - warm p50 of the index's top-50: mapped snapshot  vs  numpy brute force over an in-RAM matrix (baseline)
  - exactness: top-50 equal to brute force (fraction of queries)
  - memory: the fresh process's RSS and its private (not shared) RSS

Goals (issue 16): first query in a fresh process ≤ 1 s; warm p50 ≤ 2× numpy brute force.

Usage: .venv/bin/python bench/bench_org_index.py [--memories 100000] [--database-url postgresql://...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import cast

import numpy as np
from sqlalchemy import Table, select

from memrelay.composition import Services
from memrelay.engine.adapters.vector_index import to_blob
from memrelay.engine.core.settings import Settings
from memrelay.engine.core.util import new_sortable_id, utcnow
from memrelay.engine.memory.org_vectors import ExactOrgIndex
from memrelay.engine.stores.db.models import Memory, Record
from memrelay.engine.stores.fast_insert import insert_rows

EMBEDDER, DIM, K = "wordllama:l2_supercat_256", 256, 50

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
    vecs = rng.standard_normal((args.memories, DIM)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
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
    queries = rng.standard_normal((args.queries, DIM)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    snap_dir = tmp / "org_vectors"

    # build once (what the first process of the deployment does)
    shared = ExactOrgIndex(snapshot_dir=snap_dir, max_rows=10**7)
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
    old_first = fresh("-")

    # warm p50: the shared index vs brute force over the same vectors in RAM
    with eng.db.read() as s:
        rows = s.execute(select(Memory.id).where(Memory.org_id == org).order_by(Memory.id)).all()
    id_list = [r[0] for r in rows]
    matrix = vecs[[int(i[4:]) for i in id_list]]
    t_idx, t_bf, exact = [], [], 0
    with eng.db.read() as s:
        for q in queries:
            t = time.perf_counter()
            got = shared.search(s, org, q, limit=K, embedder=EMBEDDER, dim=DIM)
            t_idx.append(time.perf_counter() - t)
            t = time.perf_counter()
            sims = matrix @ q
            top = np.argpartition(-sims, K - 1)[:K]
            want = [id_list[i] for i in top[np.argsort(-sims[top], kind="stable")]]
            t_bf.append(time.perf_counter() - t)
            exact += got == want
    p50_idx, p50_bf = statistics.median(t_idx) * 1000, statistics.median(t_bf) * 1000
    first_ok = new_first["ids"] == old_first["ids"]
    print(f"\norg-wide index — {args.memories:,} memories x {DIM}-d on {eng.db.dialect} (SQL load {load_s:.1f} s)")
    print(f"snapshot build (once per org, first process)   {build_s * 1000:9.1f} ms")
    print(f"first query, fresh process: mapped snapshot     {cast(float, new_first['first_query_s']) * 1000:9.1f} ms"
          f"   baseline (read all from SQL) {cast(float, old_first['first_query_s']) * 1000:9.1f} ms"
          f"   goal ≤ 1000 ms: {'met' if cast(float, new_first['first_query_s']) <= 1 else 'MISSED'}"
          f"   same top-{K}: {first_ok}")
    print(f"fresh process RSS / private:  mapped {new_first['rss_mb']:.0f} / {new_first['private_mb']:.0f} MB"
          f"   baseline {old_first['rss_mb']:.0f} / {old_first['private_mb']:.0f} MB")
    print(f"warm top-{K} p50: shared index {p50_idx:7.2f} ms   baseline numpy brute force {p50_bf:7.2f} ms"
          f"   ratio {p50_idx / p50_bf:5.2f}×  goal ≤ 2×: {'met' if p50_idx <= 2 * p50_bf else 'MISSED'}"
          f"   exact top-{K}: {exact}/{len(queries)}")
    eng.close()


if __name__ == "__main__":
    main()
