"""memrelay's vector index against the real Milvus 2.3.5 standalone server (``make test-milvus``).

That server misroutes upserts into partition-key collections; these tests pin that memrelay's writes are
right on it: org filters, deletes, re-writes that move a memory to another org or record, and org-wide
answers that match exact search while the same ids are re-written again and again."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import numpy as np
import pytest

from memrelay.composition import Services
from memrelay.engine.adapters.vector_index import VectorIndex, VectorRow
from memrelay.engine.memory.memories import MemorizeRequest
from memrelay.engine.memory.org_vectors import ExactOrgIndex
from memrelay.engine.memory.recall import RecallRequest
from memrelay.engine.stores.db.database import Database
from tests.support.milvus_server import MilvusServer

pytestmark = pytest.mark.milvus_server

STRONG = "Strong"  # see every acknowledged write, for exact assertions (production reads use Bounded)
SESSION = "Session"  # see this client's own writes: as exact for one writer, and ~4 ms instead of ~200 ms
_names = itertools.count()
T = TypeVar("T")


def _unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _eventually(probe: Callable[[], T], ok: Callable[[T], bool], timeout_s: float = 30) -> T:
    """``probe()`` once it satisfies ``ok``: Bounded-staleness reads see a write a moment later."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if ok(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


@pytest.fixture
def vi(milvus_server: MilvusServer) -> Iterator[VectorIndex]:
    index = VectorIndex(milvus_server.uri)
    assert not index.is_lite
    yield index
    index.close()


@pytest.fixture
def name(vi: VectorIndex) -> Iterator[str]:
    collection = f"memories_server_test_{next(_names)}_d4"
    yield collection
    vi.drop_collection(collection)


def _ids(hits: list) -> list[str]:
    return [h.memory_id for h in hits]


def test_search_is_filtered_by_org_type_and_record_and_deletes(vi, name):
    rows = [VectorRow("m1", "org-a", "r1", "contact", np.array([1, 0, 0, 0], np.float32)),
            VectorRow("m2", "org-a", "r2", "company", np.array([0.9, 0.1, 0, 0], np.float32)),
            VectorRow("m3", "org-b", "r3", "contact", np.array([1, 0, 0, 0], np.float32))]
    vi.upsert(name, 4, rows)
    vi.upsert(name, 4, rows[:1])  # idempotent
    q = np.array([1, 0, 0, 0], np.float32)
    assert _ids(vi.search(name, q, "org-a", limit=10, consistency=STRONG)) == ["m1", "m2"]
    assert _ids(vi.search(name, q, "org-a", limit=10, entity_types=["company"], consistency=STRONG)) == ["m2"]
    assert _ids(vi.search(name, q, "org-a", limit=10, exclude_records=["r1"], consistency=STRONG)) == ["m2"]
    assert vi.count(name, "org-a", consistency=STRONG) == 2
    assert vi.ids(name, "org-b", consistency=STRONG) == {"m3"}
    vi.delete(name, ["m1", "never-written"])
    assert _ids(vi.search(name, q, "org-a", limit=10, consistency=STRONG)) == ["m2"]
    vi.delete_org(name, "org-a")
    assert vi.count(name, "org-a", consistency=STRONG) == 0 and vi.ids(name, "org-b", consistency=STRONG) == {"m3"}


def test_rewriting_a_memory_moves_it_between_orgs_and_records(vi, name):
    q = np.array([0, 1, 0, 0], np.float32)
    vi.upsert(name, 4, [VectorRow("m1", "org-a", "r1", "contact", q)])
    vi.upsert(name, 4, [VectorRow("m1", "org-b", "r9", "company", np.array([0, 0.8, 0.6, 0], np.float32))])
    assert vi.search(name, q, "org-a", limit=10, consistency=STRONG) == []
    [hit] = vi.search(name, q, "org-b", limit=10, consistency=STRONG)
    assert (hit.memory_id, hit.record_id, round(hit.score, 4)) == ("m1", "r9", 0.8)
    assert vi.count(name, "org-a", consistency=STRONG) == 0 and vi.count(name, "org-b", consistency=STRONG) == 1
    for org in ("org-c", "org-a", "org-c"):  # many moves of one id leave exactly one row, in the last org
        vi.upsert(name, 4, [VectorRow("m1", org, "r1", "contact", q)])
    assert {o: vi.count(name, o, consistency=STRONG) for o in ("org-a", "org-b", "org-c")} == \
        {"org-a": 0, "org-b": 0, "org-c": 1}
    # a batch that names one id twice keeps its last row
    vi.upsert(name, 4, [VectorRow("m1", "org-a", "r1", "contact", q), VectorRow("m1", "org-b", "r2", "contact", q)])
    assert vi.ids(name, "org-b", consistency=STRONG) == {"m1"} and vi.ids(name, "org-a", consistency=STRONG) == set()


def test_org_wide_answers_match_exact_search_under_repeated_rewrites(vi):
    """5 orgs × 3,000 vectors, then 4 rounds re-writing 40% of the ids (a quarter of them into another org):
    every org sees exactly its own vectors and the top 10 match numpy's exact top 10."""
    rng = np.random.default_rng(12)
    dim, per_org, orgs = 256, 3000, [f"org-{i}" for i in range(5)]  # 256: WordLlama's dimension
    name = f"memories_server_quality_{next(_names)}_d{dim}"
    truth: dict[str, VectorRow] = {}
    try:
        for org in orgs:
            vectors = _unit(rng, per_org, dim)
            rows = [VectorRow(f"{org}-m{j}", org, f"{org}-r{j % 300}", "contact", vectors[j]) for j in range(per_org)]
            vi.upsert(name, dim, rows)
            truth.update((r.memory_id, r) for r in rows)
        ids = sorted(truth)
        for _ in range(4):
            picked = rng.choice(len(ids), size=int(0.4 * len(ids)), replace=False)
            vectors = _unit(rng, len(picked), dim)
            rows = []
            for k, i in enumerate(picked):
                old = truth[ids[i]]
                org = orgs[rng.integers(len(orgs))] if rng.random() < 0.25 else old.org_id
                rows.append(VectorRow(old.memory_id, org, old.record_id, old.entity_type, vectors[k]))
            for start in range(0, len(rows), 500):  # batch-chunk sized writes, as index_sync sends them
                vi.upsert(name, dim, rows[start:start + 500])
            truth.update((r.memory_id, r) for r in rows)

        overlaps: list[float] = []
        for org in orgs:
            own = [r for r in truth.values() if r.org_id == org]
            own_ids = {r.memory_id for r in own}
            assert vi.ids(name, org, consistency=STRONG) == own_ids  # nothing missing, nothing of another org
            assert vi.count(name, org, consistency=STRONG) == len(own_ids)
            matrix = np.stack([r.vector for r in own])
            for q in _unit(rng, 20, dim):
                exact = {own[i].memory_id for i in np.argsort(-(matrix @ q))[:10]}
                hits = vi.search(name, q, org, limit=10, consistency=SESSION)
                assert {h.memory_id for h in hits} <= own_ids  # zero vectors of another org under the filter
                assert all(truth[h.memory_id].record_id == h.record_id for h in hits)
                overlaps.append(len(exact & set(_ids(hits))) / 10)
        per_org_overlap = np.asarray(overlaps).reshape(len(orgs), 20).mean(axis=1)
        assert per_org_overlap.min() >= 0.95, per_org_overlap
    finally:
        vi.drop_collection(name)


def test_memrelay_on_the_server_indexes_recalls_org_wide_and_reconciles(milvus_server, settings):
    """The engine wired to the server: memorize indexes without a flush, org-wide recall (Milvus path)
    finds the memory, another org never sees it, and check-index agrees with SQL."""
    services = Services(settings.model_copy(update={"milvus_uri": milvus_server.uri}), db=Database(settings.sql_url))
    try:
        assert not services.vector_index.is_lite
        org = services.tenancy.create_org(f"server-org-{time.time_ns()}").id
        other = services.tenancy.create_org(f"server-other-{time.time_ns()}").id
        out = services.memories.memorize(org, MemorizeRequest(content="Renewal is blocked on the SOC 2 report.",
                                                              email="sec@q.io", tags=["t"]))
        services.memories.memorize(other, MemorizeRequest(content="Renewal is blocked on the SOC 2 audit.",
                                                          email="sec@z.io", tags=["t"]))
        services.recall.exact = ExactOrgIndex(max_rows=0)  # force org-wide recall through Milvus
        found = _eventually(lambda: services.recall.smart_recall(org, RecallRequest(query="what blocks the renewal")),
                            lambda r: bool(r["results"]))
        assert [r["memoryId"] for r in found["results"]][:1] == out["memoryIds"]
        assert all(r["memoryId"] not in out["memoryIds"] for r in
                   services.recall.smart_recall(other, RecallRequest(query="what blocks the renewal"))["results"])
        report = _eventually(lambda: services.index.check_org(org), lambda r: r["ok"])
        assert report["ok"] and report["vectors"] == 1, report
    finally:
        services.close()
