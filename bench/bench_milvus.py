"""memrelay's vector index on the real Milvus 2.3.5 standalone server (the pinned, cached ``milvus`` package).

Measured in one run, on a fresh server with a temporary data directory:
  * server start to healthy, and the cached install's size,
  * bulk write rows/s and re-write rows/s through ``VectorIndex.upsert`` (delete-then-insert on a server),
    next to the server's own ``upsert`` on a second collection (the misrouting that memrelay avoids),
  * per org: vectors visible under the org filter vs expected, top-10 overlap with numpy's exact top-10,
  * search p50/p95 with Bounded (production) and Strong consistency, and how long a write takes to be
    visible to a Bounded search.

    .venv/bin/python bench/bench_milvus.py --orgs 4 --per-org 25000 --dim 256
    .venv/bin/python bench/bench_milvus.py --orgs 3 --per-org 3000 --dim 64       # quick

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

from memrelay.engine.adapters.vector_index import VectorIndex, VectorRow  # noqa: E402
from tests.support.milvus_server import MilvusServer, install  # noqa: E402


def _unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)) * 1000, 1)


def _write(vi: VectorIndex, name: str, dim: int, rows: list[VectorRow], *, raw_upsert: bool) -> float:
    began = time.monotonic()
    for i in range(0, len(rows), 2000):
        part = rows[i:i + 2000]
        if raw_upsert:  # what memrelay used to send: the server's upsert into a partition-key collection
            vi.ensure_collection(name, dim)
            vi.client.upsert(name, [{"id": r.memory_id, "org_id": r.org_id, "record_id": r.record_id,
                                     "entity_type": r.entity_type, "vector": r.vector.tolist()} for r in part])
        else:
            vi.upsert(name, dim, part)
    return time.monotonic() - began


def run(orgs: int, per_org: int, dim: int, rounds: int, queries: int) -> dict[str, Any]:
    rng = np.random.default_rng(7)
    began = time.monotonic()
    home = install()
    out: dict[str, Any] = {"install_s": round(time.monotonic() - began, 1),
                           "install_mb": round(sum(f.stat().st_size for f in home.rglob("*") if f.is_file()) / 1e6)}
    with tempfile.TemporaryDirectory(prefix="bench-milvus-") as tmp, MilvusServer(Path(tmp)) as server:
        out["server_start_s"] = round(server.start_seconds, 1)
        vi = VectorIndex(server.uri)
        org_ids = [f"org-{i}" for i in range(orgs)]
        truth: dict[str, VectorRow] = {}
        first = [VectorRow(f"{o}-m{j}", o, f"{o}-r{j % 500}", "contact", v)
                 for o in org_ids for j, v in enumerate(_unit(rng, per_org, dim))]
        for strategy, raw in (("memrelay", False), ("server_upsert", True)):
            name = f"memories_bench_{strategy}_d{dim}"
            vi.drop_collection(name)
            t = _write(vi, name, dim, first, raw_upsert=raw)
            res: dict[str, Any] = {"bulk_rows_per_s": round(len(first) / t)}
            truth = {r.memory_id: r for r in first}
            ids = sorted(truth)
            sub = np.random.default_rng(11)
            rewrite_s = 0.0
            for _ in range(rounds):
                picked = sub.choice(len(ids), size=len(ids) // 3, replace=False)
                vecs = _unit(sub, len(picked), dim)
                rows = [VectorRow(truth[ids[i]].memory_id,
                                  org_ids[sub.integers(orgs)] if sub.random() < 0.25 else truth[ids[i]].org_id,
                                  truth[ids[i]].record_id, "contact", vecs[k]) for k, i in enumerate(picked)]
                rewrite_s += _write(vi, name, dim, rows, raw_upsert=raw)
                truth.update((r.memory_id, r) for r in rows)
            res["rewrite_rows_per_s"] = round(rounds * (len(ids) // 3) / rewrite_s)
            res["orgs"] = {}
            for o in org_ids:
                own = [r for r in truth.values() if r.org_id == o]
                own_ids = {r.memory_id for r in own}
                matrix = np.stack([r.vector for r in own])
                overlaps, leaked = [], 0
                for q in _unit(rng, queries, dim):
                    exact = {own[i].memory_id for i in np.argsort(-(matrix @ q))[:10]}
                    hits = vi.search(name, q, o, limit=10, consistency="Strong")
                    leaked += sum(h.memory_id not in own_ids for h in hits)
                    overlaps.append(len(exact & {h.memory_id for h in hits}) / 10)
                res["orgs"][o] = {"expected": len(own_ids), "visible": vi.count(name, o, consistency="Strong"),
                                  "other_org_hits": leaked, "top10_overlap": round(float(np.mean(overlaps)), 3)}
            if not raw:
                qs = _unit(rng, 50, dim)
                for level in ("Bounded", "Strong"):
                    lat = []
                    for q in qs:
                        t0 = time.monotonic()
                        vi.search(name, q, org_ids[0], limit=10, consistency=level)
                        lat.append(time.monotonic() - t0)
                    res[f"search_{level.lower()}_ms"] = {"p50": _pct(lat, 50), "p95": _pct(lat, 95)}
                lag = []
                for k, q in enumerate(_unit(rng, 5, dim)):
                    vi.upsert(name, dim, [VectorRow(f"lag-{k}", org_ids[0], "r", "contact", q)])
                    t0 = time.monotonic()
                    while f"lag-{k}" not in {h.memory_id for h in vi.search(name, q, org_ids[0], limit=5)}:
                        time.sleep(0.02)
                    lag.append(time.monotonic() - t0)
                res["bounded_visibility_ms"] = {"p50": _pct(lag, 50), "max": _pct(lag, 100)}
                t0 = time.monotonic()
                vi.flush(name)
                res["explicit_flush_s"] = round(time.monotonic() - t0, 2)
            out[strategy] = res
            vi.drop_collection(name)
        vi.close()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--orgs", type=int, default=4)
    p.add_argument("--per-org", type=int, default=25000)
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--queries", type=int, default=20)
    a = p.parse_args()
    print(json.dumps(run(a.orgs, a.per_org, a.dim, a.rounds, a.queries), indent=2))


if __name__ == "__main__":
    main()
