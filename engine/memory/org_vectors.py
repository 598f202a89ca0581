"""Exact org-wide vector search from a shared, memory-mapped snapshot per org.

Milvus Lite answers a top-10 over 100k vectors in ~60–190 ms on this class of machine, while a numpy dot
product over the same vectors takes ~10 ms. So below ``max_rows`` memories an org's embeddings are scored
exactly, in process; larger orgs use the Milvus index.

Where the vectors come from (issue 16 item 3): reading every embedding of an org from SQL took 1.4 s at 10k
memories and 15 s at 100k, in every process, and each process then held its own copy. Instead the matrix is a
**snapshot on disk** — ``<snapshot_dir>/<org>/<embedder>_<dim>/v<N>.{vectors,ids,types}.npy`` plus a
``CURRENT`` file naming the version, replaced with an atomic rename — built from SQL (the source of truth) by
the first process that needs it (under a file lock; the others wait for it and map the same file), and
**memory-mapped** by every process: the pages live once in the OS page cache, shared, and a new process
answers its first org-wide query by mapping the file and reading the few rows changed since the snapshot.

Freshness: each process keeps an in-memory *delta* of rows whose ``updated_at`` is after the snapshot's
high-water mark (minus an overlap window for transactions that commit late), refreshed before every query
(one indexed read of ids and stamps; ``refresh_s`` > 0 trades read-your-writes for fewer reads); a delta row hides the snapshot's row of the same id. When the delta passes
``rebuild_after`` rows (or the snapshot is older than ``max_age_s`` with changes since), the next refresh
writes a new snapshot. Deleted, superseded or moved memories are dropped by the caller's SQL re-check, so a
stale row can never surface another record's or org's data.

Without a ``snapshot_dir`` (tests that build a bare :class:`ExactOrgIndex`), the snapshot is built in
memory, per process — the old behaviour.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from memrelay.engine.adapters.vector_index import from_blobs
from memrelay.engine.core.access import current_access, unrestricted
from memrelay.engine.core.util import as_aware, utcnow
from memrelay.engine.stores.db.models import Memory

DEFAULT_MAX_ROWS = 200_000
LOOKBACK_S = 30
BUILD_BATCH = 5000
ID_DTYPE = "S48"


@dataclass
class Snapshot:
    """One version of an org's vectors: ``vectors`` (n × dim float32, usually a read-only memory map),
    ``ids`` (bytes), ``type_codes`` into ``types``, and the ``high_water`` updated_at it covers."""

    version: int
    vectors: np.ndarray
    ids: np.ndarray
    type_codes: np.ndarray
    types: list[str]
    high_water: datetime | None
    built_at: float
    path: Path | None = None
    void: np.ndarray | None = None  # rows of a file whose SQL row vanished during the build (never returned)


@dataclass
class _OrgState:
    dim: int
    snapshot: Snapshot | None = None
    # rows changed since the snapshot: id -> (vector, entity type, live)
    delta: dict[str, tuple[np.ndarray, str, bool]] = field(default_factory=dict)
    delta_stamps: dict[str, datetime] = field(default_factory=dict)
    hidden: np.ndarray | None = None  # snapshot rows a delta row replaces (bool mask)
    delta_matrix: np.ndarray | None = None
    delta_ids: list[str] = field(default_factory=list)
    delta_types: list[str] = field(default_factory=list)
    checked_at: float = 0.0
    too_big: bool = False

    def rebuild_views(self) -> None:
        live = [(mid, v, t) for mid, (v, t, ok) in self.delta.items() if ok]
        self.delta_ids = [m for m, _, _ in live]
        self.delta_types = [t for _, _, t in live]
        self.delta_matrix = np.vstack([v for _, v, _ in live]).astype(np.float32) if live else None
        snap = self.snapshot
        self.hidden = snap.void if snap is not None else None
        if snap is not None and len(snap.ids) and self.delta:
            replaced = np.isin(snap.ids, np.array([m.encode() for m in self.delta], dtype=ID_DTYPE))
            self.hidden = replaced if self.hidden is None else (replaced | self.hidden)

    def new_rows(self) -> int:
        """Delta rows stamped after the snapshot was built (the overlap window's rows do not count)."""
        snap = self.snapshot
        hw = snap.high_water if snap is not None else None
        if hw is None:
            return len(self.delta)
        return len([ts for ts in self.delta_stamps.values() if (as_aware(ts) or hw) > hw])


class ExactOrgIndex:
    """Exact top-k over each small org's memory embeddings, from a shared memory-mapped snapshot."""

    def __init__(self, *, max_rows: int = DEFAULT_MAX_ROWS, refresh_s: float = 0.0,
                 snapshot_dir: Path | None = None, rebuild_after: int | None = None, max_age_s: float = 600.0):
        self.max_rows = max_rows
        self.refresh_s = refresh_s
        self.snapshot_dir = snapshot_dir
        self.rebuild_after = rebuild_after
        self.max_age_s = max_age_s
        self._orgs: dict[tuple[str, str, int], _OrgState] = {}
        self._lock = threading.Lock()

    # --- queries ---------------------------------------------------------------------------------
    def search(self, s: Session, org_id: str, qvec: np.ndarray, *, limit: int, embedder: str, dim: int,
               entity_types: list[str] | None = None) -> list[str] | None:
        """Ids of the ``limit`` most similar memories, or None when the org is too big (use Milvus)."""
        access = current_access()
        if access.entity_types is not None:  # a department key ranks only its own types (SQL re-checks anyway)
            entity_types = sorted(set(entity_types or access.entity_types) & access.entity_types)
            if not entity_types:
                return []
        with self._lock, unrestricted():  # the snapshot is shared by every key and process: built org-wide
            st = self._current(s, org_id, embedder, dim)
            if st is None:
                return None
            q = np.asarray(qvec, dtype=np.float32)
            scores: list[np.ndarray] = []
            ids: list[Any] = []
            snap = st.snapshot
            if snap is not None and len(snap.ids):
                sims = np.asarray(snap.vectors @ q, dtype=np.float32)
                if st.hidden is not None:
                    sims[st.hidden] = -np.inf
                if entity_types:
                    wanted = [i for i, t in enumerate(snap.types) if t in entity_types]
                    sims[~np.isin(snap.type_codes, wanted)] = -np.inf
                k = min(limit, len(sims))
                top = np.argpartition(-sims, k - 1)[:k]
                scores.append(sims[top])
                ids += [snap.ids[i].decode() for i in top]
            if st.delta_matrix is not None:
                dsims = st.delta_matrix @ q
                if entity_types:
                    dsims = np.where(np.isin(np.asarray(st.delta_types, dtype=object), entity_types), dsims, -np.inf)
                scores.append(dsims)
                ids += st.delta_ids
            if not ids:
                return []
            allsims = np.concatenate(scores)
            order = np.argsort(-allsims, kind="stable")[:limit]
            return [ids[i] for i in order if np.isfinite(allsims[i])]

    def warm(self, s: Session, org_id: str, *, embedder: str, dim: int) -> bool:
        """Map (or build) the org's snapshot now; False when the org is too big for exact search."""
        with self._lock, unrestricted():
            return self._current(s, org_id, embedder, dim) is not None

    # --- state -------------------------------------------------------------------------------------
    def _current(self, s: Session, org_id: str, embedder: str, dim: int) -> _OrgState | None:
        key = (org_id, embedder, dim)
        now = time.monotonic()
        st = self._orgs.get(key)
        if st is None:
            total = s.scalar(select(func.count()).select_from(Memory).where(Memory.org_id == org_id)) or 0
            st = self._orgs[key] = _OrgState(dim, too_big=total > self.max_rows)
        if st.too_big:
            return None
        if st.snapshot is not None and now - st.checked_at < self.refresh_s:
            return st
        store = self._store(org_id, embedder, dim)
        if st.snapshot is None or (store is not None and store.current_version() != st.snapshot.version):
            st.snapshot = store.load_or_build(s) if store is not None else _build(s, org_id, embedder, dim, None, 0)
            st.delta, st.delta_stamps = {}, {}
            st.rebuild_views()
        self._refresh_delta(s, st, org_id, embedder)
        snap = st.snapshot
        assert snap is not None
        if len(snap.ids) + len(st.delta_ids) > self.max_rows:  # grew past the limit: hand over to Milvus
            st.too_big = True
            return None
        limit = self.rebuild_after if self.rebuild_after is not None else max(2000, len(snap.ids) // 20)
        fresh = st.new_rows()
        if fresh > limit or (fresh and time.time() - snap.built_at > self.max_age_s):
            st.snapshot = store.rebuild(s, snap.version) if store is not None else _build(
                s, org_id, embedder, dim, None, snap.version + 1)
            st.delta, st.delta_stamps = {}, {}
            st.rebuild_views()
            self._refresh_delta(s, st, org_id, embedder)
        st.checked_at = now
        return st

    def _refresh_delta(self, s: Session, st: _OrgState, org_id: str, embedder: str) -> None:
        snap = st.snapshot
        assert snap is not None
        scope = [Memory.org_id == org_id, Memory.embedder == embedder]
        if snap.high_water is not None:
            scope.append(Memory.updated_at > snap.high_water - timedelta(seconds=LOOKBACK_S))
        # Only ids and stamps for the window; vectors only for rows new or changed since we last looked.
        recent = s.execute(select(Memory.id, Memory.updated_at).where(*scope)).all()
        changed = [mid for mid, ts in recent if st.delta_stamps.get(mid) != ts]
        if not changed:
            return
        for i in range(0, len(changed), 500):
            rows = s.execute(select(Memory.id, Memory.entity_type, Memory.embedding, Memory.updated_at,
                                    Memory.deleted_at).where(Memory.id.in_(changed[i:i + 500]))).all()
            vecs = from_blobs([r[2] for r in rows], st.dim) if rows else np.zeros((0, st.dim), dtype=np.float32)
            for r, v in zip(rows, vecs, strict=True):
                st.delta[r[0]] = (v, r[1], r[4] is None and r[2] is not None)
                st.delta_stamps[r[0]] = r[3]
        st.rebuild_views()

    def _store(self, org_id: str, embedder: str, dim: int) -> SnapshotStore | None:
        if self.snapshot_dir is None:
            return None
        return SnapshotStore(self.snapshot_dir, org_id, embedder, dim)


def _slug(text: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:60]
    return f"{safe}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


class SnapshotStore:
    """The files of one org's snapshots for one embedder, and the lock that serialises their builders."""

    def __init__(self, root: Path, org_id: str, embedder: str, dim: int):
        self.org_id, self.embedder, self.dim = org_id, embedder, dim
        self.dir = Path(root) / _slug(org_id) / f"{_slug(embedder)}_{dim}"

    def current_version(self) -> int | None:
        try:
            return int(json.loads((self.dir / "CURRENT").read_text())["version"])
        except (OSError, ValueError, KeyError):
            return None

    def load(self) -> Snapshot | None:
        """Map the current snapshot (None if there is none, or it cannot be read)."""
        try:
            meta = json.loads((self.dir / "CURRENT").read_text())
            v = int(meta["version"])
            # plain ndarray views over the maps (no copy): numpy's memmap subclass slows every operation
            vectors = np.asarray(np.load(self.dir / f"v{v}.vectors.npy", mmap_mode="r"))
            ids = np.asarray(np.load(self.dir / f"v{v}.ids.npy", mmap_mode="r"))
            codes = np.asarray(np.load(self.dir / f"v{v}.types.npy", mmap_mode="r"))
        except (OSError, ValueError, KeyError):
            return None
        hw = datetime.fromisoformat(meta["high_water"]) if meta.get("high_water") else None
        void = ids == b""
        return Snapshot(v, vectors, ids, codes, list(meta["types"]), hw, float(meta["built_at"]), self.dir,
                        void if void.any() else None)

    def load_or_build(self, s: Session) -> Snapshot:
        snap = self.load()
        if snap is not None:
            return snap
        return self.rebuild(s, None)

    def rebuild(self, s: Session, seen_version: int | None) -> Snapshot:
        """Build a new version from SQL unless another process did since ``seen_version`` (file lock)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                current = self.current_version()
                if current is not None and current != seen_version:
                    snap = self.load()
                    if snap is not None:
                        return snap
                version = (current or 0) + 1
                snap = _build(s, self.org_id, self.embedder, self.dim, self.dir, version)
                self._publish(snap)
                self._collect(version)
                return self.load() or snap
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _publish(self, snap: Snapshot) -> None:
        meta = {"version": snap.version, "org": self.org_id, "embedder": self.embedder, "dim": self.dim,
                "rows": len(snap.ids), "types": snap.types, "built_at": snap.built_at,
                "high_water": snap.high_water.isoformat() if snap.high_water else None}
        tmp = self.dir / f"CURRENT.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, self.dir / "CURRENT")  # atomic: readers see the old version or the new one

    def _collect(self, keep: int) -> None:
        """Remove versions older than the previous one (a reader may still map the previous one; on POSIX
        an unlinked mapped file stays readable until unmapped)."""
        for path in self.dir.glob("v*.npy"):
            try:
                v = int(path.name[1:].split(".", 1)[0])
            except ValueError:
                continue
            if v < keep - 1:
                with contextlib.suppress(OSError):
                    path.unlink()


def _build(s: Session, org_id: str, embedder: str, dim: int, directory: Path | None, version: int) -> Snapshot:
    """Read the org's live vectors from SQL in one streamed scan, in batches, into (a file-backed) matrix."""
    scope = (Memory.org_id == org_id, Memory.embedder == embedder, Memory.deleted_at.is_(None),
             Memory.embedding.is_not(None))
    started = utcnow()
    n = int(s.scalar(select(func.count()).select_from(Memory).where(*scope)) or 0)
    if directory is not None:
        tmp = f".{os.getpid()}.tmp.npy"
        vectors: np.ndarray = np.lib.format.open_memmap(directory / f"v{version}.vectors{tmp}", mode="w+",
                                                        dtype=np.float32, shape=(n, dim))
    else:
        vectors = np.zeros((n, dim), dtype=np.float32)
    ids = np.zeros(n, dtype=ID_DTYPE)
    codes = np.zeros(n, dtype=np.uint16)
    types: dict[str, int] = {}
    filled = 0
    # one streamed scan (no ORDER BY: a keyset page per batch made SQLite sort the org once per page)
    result = s.execute(select(Memory.id, Memory.entity_type, Memory.embedding).where(*scope)
                       .execution_options(stream_results=True, yield_per=BUILD_BATCH))
    for part in result.partitions(BUILD_BATCH):
        rows = list(part)[: n - filled]  # rows inserted since the count are the delta's
        if not rows:
            break
        k = len(rows)
        vectors[filled:filled + k] = from_blobs([r[2] for r in rows], dim)
        ids[filled:filled + k] = [r[0].encode() for r in rows]
        codes[filled:filled + k] = [types.setdefault(r[1], len(types)) for r in rows]
        filled += k
    result.close()
    # The snapshot covers what was committed when the build started: the delta reads rows stamped after
    # that, minus the overlap window (a transaction stamped earlier may have committed after our read).
    high = started
    type_list = sorted(types, key=types.__getitem__)
    if directory is None:
        vectors, ids, codes = vectors[:filled], ids[:filled], codes[:filled]
        return Snapshot(version, vectors, ids, codes, type_list, high, time.time())
    if isinstance(vectors, np.memmap):
        vectors.flush()
    del vectors
    os.replace(directory / f"v{version}.vectors.{os.getpid()}.tmp.npy", directory / f"v{version}.vectors.npy")
    for name, arr in (("ids", ids), ("types", codes)):
        tmp_path = directory / f"v{version}.{name}.{os.getpid()}.tmp.npy"
        np.save(tmp_path, arr)
        os.replace(tmp_path, directory / f"v{version}.{name}.npy")
    void = ids == b""  # rows deleted while we read leave empty slots in the file
    return Snapshot(version, np.asarray(np.load(directory / f"v{version}.vectors.npy", mmap_mode="r")), ids, codes,
                    type_list, high, time.time(), directory, void if void.any() else None)
