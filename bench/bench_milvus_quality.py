"""Org-wide search quality on the real Milvus 2.3.5 server, per index configuration: top-10 overlap with exact
(numpy) search, per org, and search latency.

The server runs with ``queryNode.segcore.interimIndex.enableIndex: false`` (memrelay's recommended setting:
growing and not yet indexed segments are searched exactly) unless ``--interim-index`` keeps the default.
Writes ``--orgs`` × ``--per-org`` random unit vectors (the hardest case for an ANN index: no clusters)
through memrelay's own writer (``VectorIndex.upsert``: delete-then-insert) into one collection per index
type, then measures with Strong consistency:
  * ``growing``: right after the writes, before anything is sealed (the server's interim index),
  * ``sealed``: after a flush, once the index is built over every row,
for several search parameters of each index (``ef`` for HNSW, ``nprobe`` for IVF_FLAT) — memrelay's
defaults are ``engine.adapters.vector_index.SERVER_INDEX``.

    .venv/bin/python bench/bench_milvus_quality.py                      # 100,000 × 256 in 4 orgs
    .venv/bin/python bench/bench_milvus_quality.py --per-org 2000 --dim 64   # quick

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from memrelay.engine.adapters.vector_index import SERVER_INDEX, IndexSpec, VectorIndex, VectorRow  # noqa: E402
from tests.support.milvus_server import MilvusServer  # noqa: E402

CONFIGS: dict[str, tuple[IndexSpec, list[IndexSpec]]] = {
    # index type -> (how the collection is built, the search parameters compared on it)
    "AUTOINDEX": (IndexSpec("AUTOINDEX", {}), [IndexSpec("AUTOINDEX", {})]),
    "HNSW": (SERVER_INDEX, [IndexSpec("HNSW", SERVER_INDEX.build, ef=ef) for ef in (None, 64, 128, 200, 400)]),
    "IVF_FLAT": (IndexSpec("IVF_FLAT", {"nlist": 1024}),
                 [IndexSpec("IVF_FLAT", {"nlist": 1024}, nprobe=n) for n in (64, 256)]),
    "FLAT": (IndexSpec("FLAT", {}), [IndexSpec("FLAT", {})]),
}


def _unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _label(spec: IndexSpec) -> str:
    return "default" if spec.ef is None and spec.nprobe is None else (
        f"ef={spec.ef}" if spec.ef is not None else f"nprobe={spec.nprobe}")


def _measure(uri: str, name: str, spec: IndexSpec, rows: list[VectorRow], orgs: list[str],
             queries: np.ndarray) -> dict[str, Any]:
    vi = VectorIndex(uri, index=spec)
    overlaps: dict[str, float] = {}
    lat: list[float] = []
    for o in orgs:
        own = [r for r in rows if r.org_id == o]
        matrix = np.stack([r.vector for r in own])
        per_query = []
        for q in queries:
            exact = {own[i].memory_id for i in np.argsort(-(matrix @ q))[:10]}
            t0 = time.monotonic()
            hits = vi.search(name, q, o, limit=10, consistency="Strong")
            lat.append(time.monotonic() - t0)
            per_query.append(len(exact & {h.memory_id for h in hits}) / 10)
        overlaps[o] = round(float(np.mean(per_query)), 3)
    bounded = []  # what production searches use (Strong above waits ~200 ms for the newest writes)
    for q in queries:
        t0 = time.monotonic()
        vi.search(name, q, orgs[0], limit=10)
        bounded.append(time.monotonic() - t0)
    vi.close()
    return {"min_org_top10_overlap": min(overlaps.values()), "per_org": overlaps,
            "strong_search_ms_p50": round(float(np.percentile(lat, 50)) * 1000, 1),
            "bounded_search_ms_p50": round(float(np.percentile(bounded, 50)) * 1000, 1),
            "bounded_search_ms_p95": round(float(np.percentile(bounded, 95)) * 1000, 1)}


def _wait_indexed(vi: VectorIndex, name: str, total: int, timeout: float) -> float:
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        info = vi.client.describe_index(name, "vector")
        if int(info.get("indexed_rows", 0)) >= total and not int(info.get("pending_index_rows", 0) or 0):
            break
        time.sleep(1)
    return round(time.monotonic() - began, 1)


def run(orgs: int, per_org: int, dim: int, queries: int, only: list[str], interim_index: bool) -> dict[str, Any]:
    rng = np.random.default_rng(7)
    org_ids = [f"org-{i}" for i in range(orgs)]
    rows = [VectorRow(f"{o}-m{j}", o, f"{o}-r{j % 500}", "contact", v)
            for o in org_ids for j, v in enumerate(_unit(rng, per_org, dim))]
    qs = _unit(np.random.default_rng(99), queries, dim)
    out: dict[str, Any] = {"vectors": len(rows), "dim": dim, "orgs": orgs, "queries_per_org": queries,
                           "server_interim_index": interim_index}
    with tempfile.TemporaryDirectory(prefix="bench-mq-") as tmp, \
            MilvusServer(Path(tmp), interim_index=interim_index) as server:
        for index_type in only:
            build, searches = CONFIGS[index_type]
            name = f"memories_quality_{index_type.lower()}_d{dim}"
            vi = VectorIndex(server.uri, index=build)
            vi.drop_collection(name)
            t0 = time.monotonic()
            vi.upsert(name, dim, rows)
            res: dict[str, Any] = {"build": build.build, "write_rows_per_s": round(len(rows) / (time.monotonic() - t0))}
            res["growing"] = {_label(s): _measure(server.uri, name, s, rows, org_ids, qs) for s in searches}
            t0 = time.monotonic()
            vi.flush(name)
            res["flush_s"] = round(time.monotonic() - t0, 1)
            res["index_wait_s"] = _wait_indexed(vi, name, len(rows), 600)
            res["sealed"] = {_label(s): _measure(server.uri, name, s, rows, org_ids, qs) for s in searches}
            vi.drop_collection(name)
            vi.close()
            out[index_type] = res
            print(json.dumps({index_type: res}), flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--orgs", type=int, default=4)
    p.add_argument("--per-org", type=int, default=25000)
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--queries", type=int, default=20)
    p.add_argument("--index", action="append", choices=sorted(CONFIGS), help="only these (repeatable)")
    p.add_argument("--interim-index", action="store_true",
                   help="keep the server's default interim IVF index (nprobe 16) over growing/unindexed segments")
    a = p.parse_args()
    print(json.dumps(run(a.orgs, a.per_org, a.dim, a.queries, a.index or list(CONFIGS), a.interim_index), indent=2))


if __name__ == "__main__":
    main()
