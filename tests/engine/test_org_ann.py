"""Org-wide recall past ``ann_min_rows`` (issue 16 item 3): the shared snapshot written in inverted-file order
(IVF) and probed list by list. The snapshot's layout is checked against SQL, probing every list equals exact
search, the default probe finds the exact neighbours on clustered vectors, and what the delta carries —
new memories, deletions, type filters, other orgs — stays exact on the IVF path as on the flat one."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import cast

import numpy as np
from sqlalchemy import Table, select

from memrelay.composition import Services
from memrelay.engine.adapters.vector_index import from_blobs, to_blob
from memrelay.engine.core.util import new_sortable_id, utcnow
from memrelay.engine.memory.memories import MemorizeRequest
from memrelay.engine.memory.org_vectors import ExactOrgIndex, Snapshot, SnapshotStore, ivf_lists, map_npy
from memrelay.engine.memory.recall import RecallRequest
from memrelay.engine.stores.db.models import Memory, Record
from memrelay.engine.stores.fast_insert import insert_rows

DIM = 32
EMBEDDER = "test-vectors"


def _clustered(rng: np.random.Generator, n: int, centres: np.ndarray) -> np.ndarray:
    x = centres[rng.integers(0, len(centres), n)] + 0.35 * rng.standard_normal((n, DIM)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _load(
    engine: Services,
    org: str,
    vecs: np.ndarray,
    *,
    types: tuple[str, ...] = ("contact",),
    start: int = 0,
    ago: timedelta = timedelta(minutes=1),
) -> list[str]:
    """Memories with the given vectors written straight to SQL (one record each), stamped ``ago``."""
    now = utcnow() - ago
    recs = [
        {
            "id": new_sortable_id("rec"),
            "org_id": org,
            "entity_type": types[i % len(types)],
            "primary_key": f"email:{org}-{start + i}@ann.io",
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
        for i in range(len(vecs))
    ]
    ids = [f"mem_{org[-6:]}_{start + i:06d}" for i in range(len(vecs))]
    with engine.db.session() as s:
        insert_rows(s, cast(Table, Record.__table__), recs)
        insert_rows(
            s,
            cast(Table, Memory.__table__),
            [
                {
                    "id": ids[i],
                    "org_id": org,
                    "record_id": recs[i]["id"],
                    "entity_type": recs[i]["entity_type"],
                    "text": f"memory {i}",
                    "tags": [],
                    "ts": now,
                    "created_at": now,
                    "updated_at": now,
                    "embedding": to_blob(v),
                    "embedder": EMBEDDER,
                    "index_state": "indexed",
                    "seen_count": 1,
                    "provenance": [],
                }
                for i, v in enumerate(vecs)
            ],
        )
    return ids


def _exact(engine: Services, org: str, q: np.ndarray, k: int, types: list[str] | None = None) -> list[str]:
    with engine.db.read() as s:
        rows = s.execute(
            select(Memory.id, Memory.embedding, Memory.entity_type).where(
                Memory.org_id == org, Memory.deleted_at.is_(None), Memory.embedder == EMBEDDER
            )
        ).all()
    rows = [r for r in rows if types is None or r.entity_type in types]
    sims = from_blobs([r.embedding for r in rows], DIM) @ q
    return [rows[i].id for i in np.argsort(-sims, kind="stable")[:k]]


def test_ivf_snapshot_layout_matches_sql_and_full_probe_is_exact(
    backend: str, engine: Services, tmp_path: Path
) -> None:
    rng = np.random.default_rng(3)
    org = engine.tenancy.create_org("ann-layout").id
    centres = rng.standard_normal((40, DIM)).astype(np.float32)
    vecs = _clustered(rng, 1500, centres)
    _load(engine, org, vecs, types=("contact", "company"))
    idx = ExactOrgIndex(snapshot_dir=tmp_path, ann_min_rows=1000, nprobe=10**6)  # every list: exact
    queries = _clustered(rng, 10, centres)
    with engine.db.read() as s:
        for q in queries:
            assert idx.search(s, org, q, limit=10, embedder=EMBEDDER, dim=DIM) == _exact(engine, org, q, 10)
            assert idx.search(
                s, org, q, limit=10, embedder=EMBEDDER, dim=DIM, entity_types=["company"]
            ) == _exact(engine, org, q, 10, ["company"])

    snap = SnapshotStore(tmp_path, org, EMBEDDER, DIM).load()
    assert snap is not None and snap.centroids is not None and snap.offsets is not None
    assert len(snap.centroids) == ivf_lists(1500) and len(snap.offsets) == len(snap.centroids) + 1
    assert snap.offsets[0] == 0 and snap.offsets[-1] == len(snap.ids) == 1500
    assert np.all(np.diff(snap.offsets) >= 0)
    # each row sits in the list of its most similar centroid, and row i's vector is memory ids[i]'s embedding
    best = np.argmax(np.asarray(snap.vectors) @ snap.centroids.T, axis=1)
    lists = np.searchsorted(snap.offsets, np.arange(len(snap.ids)), side="right") - 1
    assert np.array_equal(best, lists)
    by_id = {f"mem_{org[-6:]}_{i:06d}": v for i, v in enumerate(vecs)}
    assert np.allclose(np.asarray(snap.vectors), np.stack([by_id[m.decode()] for m in snap.ids]))
    assert sorted(m.decode() for m in snap.ids) == sorted(by_id)


def test_default_probe_finds_the_exact_neighbours_and_small_orgs_stay_flat(
    engine: Services, tmp_path: Path
) -> None:
    rng = np.random.default_rng(5)
    org = engine.tenancy.create_org("ann-probe").id
    small = engine.tenancy.create_org("ann-small").id
    centres = rng.standard_normal((60, DIM)).astype(np.float32)
    _load(engine, org, _clustered(rng, 3000, centres))
    _load(engine, small, _clustered(rng, 300, centres))
    idx = ExactOrgIndex(snapshot_dir=tmp_path, ann_min_rows=1000, nprobe=8)
    overlaps = []
    with engine.db.read() as s:
        for q in _clustered(rng, 20, centres):
            got = idx.search(s, org, q, limit=10, embedder=EMBEDDER, dim=DIM)
            assert got is not None and len(got) == 10
            overlaps.append(len(set(got) & set(_exact(engine, org, q, 10))) / 10)
            assert idx.search(s, small, q, limit=10, embedder=EMBEDDER, dim=DIM) == _exact(
                engine, small, q, 10
            )
    assert np.mean(overlaps) >= 0.9, overlaps
    assert SnapshotStore(tmp_path, small, EMBEDDER, DIM).load().centroids is None  # type: ignore[union-attr]
    assert SnapshotStore(tmp_path, org, EMBEDDER, DIM).load().centroids is not None  # type: ignore[union-attr]


def test_the_delta_stays_exact_over_an_ivf_snapshot(backend: str, engine: Services, tmp_path: Path) -> None:
    """New memories are found at once, deleted ones never come back, a type filter still returns ``limit``
    eligible memories (more lists are probed), another org's memories never appear, and a second index maps
    the same IVF files without rebuilding them."""
    rng = np.random.default_rng(11)
    org = engine.tenancy.create_org("ann-delta").id
    other = engine.tenancy.create_org("ann-other").id
    centres = rng.standard_normal((30, DIM)).astype(np.float32)
    ids = _load(engine, org, _clustered(rng, 1200, centres), types=("contact",) * 39 + ("deal",))
    idx = ExactOrgIndex(snapshot_dir=tmp_path, ann_min_rows=1000, nprobe=2, rebuild_after=10**6)
    q = _clustered(rng, 1, centres)[0]
    with engine.db.read() as s:
        before = idx.search(s, org, q, limit=10, embedder=EMBEDDER, dim=DIM)
    assert before is not None and len(before) == 10
    store = SnapshotStore(tmp_path, org, EMBEDDER, DIM)
    assert store.current_version() == 1

    # the exact query vector, written later and in another org too: the new one ranks first in its org only
    other_ids = _load(engine, other, np.stack([q]), ago=timedelta(0))
    new = _load(engine, org, np.stack([q]), start=5000, ago=timedelta(0))
    with engine.db.session() as s:
        victim = s.get(Memory, before[0])
        assert victim is not None
        victim.deleted_at = victim.updated_at = utcnow()
    with engine.db.read() as s:
        got = idx.search(s, org, q, limit=10, embedder=EMBEDDER, dim=DIM)
        # deals are rare (1 row in 40, 30 in all): the 2 probed lists hold too few, so more lists are probed
        deals = idx.search(s, org, q, limit=25, embedder=EMBEDDER, dim=DIM, entity_types=["deal"])
    assert got is not None and got[0] == new[0]
    assert before[0] not in got and other_ids[0] not in got
    deal_ids = set(ids[39::40])
    assert deals is not None and len(deals) == 25 and set(deals) <= deal_ids
    assert store.current_version() == 1  # answered from the mapped IVF snapshot plus the delta

    fresh = ExactOrgIndex(snapshot_dir=tmp_path, ann_min_rows=1000, nprobe=2, rebuild_after=10**6)
    with engine.db.read() as s:
        assert fresh.search(s, org, q, limit=10, embedder=EMBEDDER, dim=DIM) == got
    assert store.current_version() == 1


def test_recall_over_an_ivf_snapshot_follows_deletes_and_supersession(engine: Services) -> None:
    org = engine.tenancy.create_org("ann-recall").id
    engine.recall.exact.ann_min_rows = 20  # this org's snapshot is IVF from its 20th memory
    for i in range(30):
        engine.memories.memorize(
            org,
            MemorizeRequest(
                content=f"Account {i} renewed the support plan in week {i}.", email=f"p{i}@ann.io"
            ),
        )
    first = engine.memories.memorize(
        org, MemorizeRequest(content="They run their database on PostgreSQL.", email="db@ann.io")
    )["memoryIds"][0]
    req = RecallRequest(query="which database do they run", limit=3)
    assert engine.recall.smart_recall(org, req)["results"][0]["memoryId"] == first
    emb = engine.embedder
    snap = SnapshotStore(engine.settings.data_dir / "org_vectors", org, emb.name, emb.dim).load()
    assert snap is not None and snap.centroids is not None

    newer = engine.memories.memorize(
        org, MemorizeRequest(content="They moved their database to MySQL.", email="db@ann.io")
    )["memoryIds"][0]
    top = engine.recall.smart_recall(org, req)["results"]
    assert top[0]["memoryId"] == newer
    engine.memories.delete(org, [newer])
    after = [r["memoryId"] for r in engine.recall.smart_recall(org, req)["results"]]
    assert newer not in after and len(after) == 3


def test_a_rebuild_keeps_the_lists_and_places_new_rows_in_their_best_list(
    engine: Services, tmp_path: Path
) -> None:
    rng = np.random.default_rng(17)
    org = engine.tenancy.create_org("ann-rebuild").id
    centres = rng.standard_normal((25, DIM)).astype(np.float32)
    _load(engine, org, _clustered(rng, 1100, centres))
    idx = ExactOrgIndex(snapshot_dir=tmp_path, ann_min_rows=1000, nprobe=10**6, rebuild_after=50)
    q = _clustered(rng, 1, centres)[0]
    with engine.db.read() as s:
        idx.warm(s, org, embedder=EMBEDDER, dim=DIM)
    store = SnapshotStore(tmp_path, org, EMBEDDER, DIM)
    v1 = store.load()
    assert v1 is not None and v1.centroids is not None and v1.offsets is not None
    list_of = {
        m.decode(): int(np.searchsorted(v1.offsets, i, side="right") - 1) for i, m in enumerate(v1.ids)
    }

    new = _load(engine, org, _clustered(rng, 60, centres), start=9000, ago=timedelta(0))  # past rebuild_after
    with engine.db.read() as s:
        assert idx.search(s, org, q, limit=10, embedder=EMBEDDER, dim=DIM) == _exact(engine, org, q, 10)
        assert store.current_version() == 1  # due: rebuilt by the workers' round, not inside the query
        assert idx.rebuild_due(s) == [org]
        assert idx.search(s, org, q, limit=10, embedder=EMBEDDER, dim=DIM) == _exact(engine, org, q, 10)
    assert store.current_version() == 2
    v2 = store.load()
    assert v2 is not None and v2.centroids is not None and v2.offsets is not None
    assert np.array_equal(v2.centroids, v1.centroids) and len(v2.ids) == 1160
    lists = np.searchsorted(v2.offsets, np.arange(len(v2.ids)), side="right") - 1
    best = np.argmax(np.asarray(v2.vectors) @ v2.centroids.T, axis=1)
    for i, m in enumerate(v2.ids):
        mid = m.decode()
        assert lists[i] == (list_of[mid] if mid in list_of else best[i])
    assert set(new) <= {m.decode() for m in v2.ids}


def test_mapped_npy_files_read_as_saved_and_stay_read_only(tmp_path: Path) -> None:
    arr = np.random.default_rng(2).standard_normal((37, DIM)).astype(np.float32)
    np.save(tmp_path / "v.npy", arr)
    mapped, mapping = map_npy(tmp_path / "v.npy")
    assert mapped.dtype == np.float32 and mapped.shape == arr.shape and np.array_equal(mapped, arr)
    assert not mapped.flags.writeable
    snap = Snapshot(
        1,
        mapped,
        np.zeros(37, dtype="S48"),
        np.zeros(37, np.uint16),
        ["contact"],
        None,
        0.0,
        vectors_map=mapping,
    )
    snap.prefault()  # maps every page now (or reads ahead where the kernel cannot): same values
    assert np.array_equal(mapped, arr)
    np.save(tmp_path / "empty.npy", np.zeros((0, DIM), dtype=np.float32))
    assert map_npy(tmp_path / "empty.npy")[0].shape == (0, DIM)
