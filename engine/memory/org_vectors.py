"""Org-wide vector search from a shared, memory-mapped snapshot per org: exact for small orgs, an IVF
(inverted-file) index over the same mapped matrix for large ones.

Milvus Lite answers a top-10 over 100k vectors in ~60–190 ms on this class of machine, while a numpy dot
product over the same vectors takes ~10 ms. So an org's embeddings are scored in process; only orgs past
``max_rows`` memories use the Milvus index.

Below ``ann_min_rows`` live memories every query scans the whole snapshot (exact). From ``ann_min_rows`` on, a
full scan costs ~1 GB of memory traffic per query at 1M × 256-d, so the snapshot is written **in inverted-file
order**: the builder clusters the vectors (spherical k-means on a sample, ``nlist`` ≈ √n centroids), assigns
every row to its nearest centroid and writes the rows grouped by centroid (``v<N>.centroids.npy`` and the
list boundaries ``v<N>.offsets.npy`` next to the matrix). A query scores the centroids, then exactly scores
the rows of the ``nprobe`` best lists — contiguous slices of the mapped matrix, no second copy of the vectors —
and keeps probing further lists while fewer than ``limit`` probed rows pass the type filter and the delta's
hiding. The delta (below) is always scored exactly, so memories written since the snapshot, deletions,
supersessions and org isolation are as exact as below the threshold; only the ranking inside the snapshot is
approximate (top-10 overlap with exact search is printed by ``bench/bench_org_index.py``).

Where the vectors come from (issue 16 item 3): reading every embedding of an org from SQL took 1.4 s at 10k
memories and 15 s at 100k, in every process, and each process then held its own copy. Instead the matrix is a
**snapshot on disk** — ``<snapshot_dir>/<org>/<embedder>_<dim>/v<N>.{vectors,ids,types}.npy`` plus a
``CURRENT`` file naming the version, replaced with an atomic rename — built from SQL (the source of truth) by
the first process that needs it (under a file lock; the others wait for it and map the same file), and
**memory-mapped** by every process: the pages live once in the OS page cache, shared, and a new process
answers its first org-wide query by mapping the file and reading the few rows changed since the snapshot.

Freshness: each process keeps an in-memory *delta* of rows whose ``updated_at`` is after the snapshot's
high-water mark (minus an overlap window for transactions that commit late), refreshed before every query
(one index-only aggregate of the look-back window's stamps, checked against what was read of it, and one indexed
read of the ids and stamps after it: :class:`_Window`; ``refresh_s`` > 0 trades read-your-writes for fewer reads); a delta row
hides the snapshot's row of the same id. When the delta passes ``rebuild_after`` rows (or the snapshot is older
than ``max_age_s`` with changes since), the snapshot is *due*: the workers' ``org-snapshots`` round
(:meth:`ExactOrgIndex.rebuild_due`) writes the new version off the request path — a rebuild takes ~20 s at 1M
rows — and every process maps it at its next query. Queries keep answering from the old version and the exact
delta meanwhile; only a delta ``INLINE_REBUILD_FACTOR`` times past due (no worker running, or one far behind)
is rebuilt inside the query, as are snapshots without a directory (in-memory, per process). Deleted, superseded
or moved memories are dropped by the caller's SQL re-check, so a stale row can never surface another record's or
org's data (a search for current facts also leaves out the rows superseded when last read).

Without a ``snapshot_dir`` (tests that build a bare :class:`ExactOrgIndex`), the snapshot is built in
memory, per process — the old behaviour.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import mmap
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, overload

import numpy as np
from sqlalchemy import BigInteger, ColumnElement, Integer, cast, func, select
from sqlalchemy.orm import Session

from memrelay.engine.adapters.vector_index import from_blobs
from memrelay.engine.core.access import current_access, unrestricted
from memrelay.engine.core.util import as_aware, utcnow
from memrelay.engine.stores.db.database import streaming_connection
from memrelay.engine.stores.db.models import Memory

DEFAULT_MAX_ROWS = 5_000_000  # past this many memories an org uses Milvus (the snapshot would be > 5 GB)
ANN_MIN_ROWS = 200_000  # from this many live memories the snapshot is built in inverted-file order (IVF)
# Share of the lists scanned per query (at least MIN_NPROBE): 128 of 1024 lists at 1M rows. On clustered
# 256-d vectors that finds ~0.97 of the exact top-10 at 1M rows (bench/bench_org_index.py prints the sweep).
PROBE_SHARE = 1 / 8
MIN_NPROBE = 16
KMEANS_SAMPLE_PER_LIST = 40
KMEANS_ITERS = 10
ASSIGN_BATCH = 8192
MADV_POPULATE_READ = 22  # Linux >= 5.14: fill the mapping's page tables now (older kernels: EINVAL)
LOOKBACK_S = 30
WINDOW_STRETCH_S = LOOKBACK_S
"""How much older than needed a window's lower bound may grow before the window is read afresh (see :class:`_Window`):
a bound held still lets each look read only the rows stamped after the window's newest, for up to this long."""
# A due snapshot is rebuilt by the workers' round; a query rebuilds it itself only this many times past due.
INLINE_REBUILD_FACTOR = 4
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
    # IVF layout (None: a flat snapshot, scanned exactly): unit centroids (nlist × dim) and the list boundaries
    # (nlist + 1 row offsets; list j is rows offsets[j]:offsets[j + 1] of ``vectors``)
    centroids: np.ndarray | None = None
    offsets: np.ndarray | None = None
    id_order: np.ndarray | None = None  # argsort of ``ids`` (written with the snapshot): id -> row lookups
    vectors_map: mmap.mmap | None = None  # the mapping under ``vectors`` (file snapshots)
    stamps: np.ndarray | None = None  # each row's updated_at (µs since the epoch, int64) when it was read
    superseded: np.ndarray | None = None  # bool: the row was superseded when read (None: not recorded, none hidden)

    def prefault(self) -> None:
        """Map every page of the vectors into this process now (``warm`` before ready, after a rebuild): the
        first touch of each page costs a fault, ~2x a warm IVF query at 1M rows until the probed lists have
        all been touched once. Pages come from the shared page cache; nothing is copied."""
        if self.vectors_map is None:
            return
        try:
            self.vectors_map.madvise(MADV_POPULATE_READ)
        except (OSError, ValueError):
            with contextlib.suppress(OSError, ValueError):
                self.vectors_map.madvise(mmap.MADV_WILLNEED)  # at least read ahead into the page cache

    def row_index(self, keys: list[str]) -> np.ndarray:
        """The row holding each of ``keys`` (-1 where none does)."""
        if not keys or not len(self.ids):
            return np.full(len(keys), -1, dtype=np.int64)
        wanted = np.array([k.encode() for k in keys], dtype=ID_DTYPE)
        order = self.id_order if self.id_order is not None else np.argsort(self.ids, kind="stable")
        at = np.searchsorted(self.ids, wanted, sorter=order)
        rows = order[np.minimum(at, len(self.ids) - 1)].astype(np.int64)
        return np.where(self.ids[rows] == wanted, rows, -1)

    def rows_of(self, keys: list[str]) -> np.ndarray:
        """Rows holding any of ``keys`` (bool mask over the snapshot)."""
        mask = np.zeros(len(self.ids), dtype=bool)
        if not keys or not len(self.ids):
            return mask
        wanted = np.array([k.encode() for k in keys], dtype=ID_DTYPE)
        if self.id_order is None:
            return np.isin(self.ids, wanted)
        at = np.searchsorted(self.ids, wanted, sorter=self.id_order)
        rows = self.id_order[np.minimum(at, len(self.ids) - 1)]
        mask[rows[self.ids[rows] == wanted]] = True
        return mask


@dataclass
class _OrgState:
    dim: int
    snapshot: Snapshot | None = None
    # rows changed since the snapshot: id -> (vector, entity type, live, superseded)
    delta: dict[str, tuple[np.ndarray, str, bool, bool]] = field(default_factory=dict)
    delta_stamps: dict[str, datetime] = field(default_factory=dict)
    seen_until: datetime | None = None  # the newest updated_at read into the delta
    fresh: int = 0  # delta rows stamped after the snapshot's high-water mark (set by rebuild_views)
    hidden: np.ndarray | None = None  # snapshot rows a delta row replaces (bool mask)
    hidden_current: np.ndarray | None = None  # those and the superseded ones: what a recall of current facts skips
    delta_matrix: np.ndarray | None = None
    delta_ids: list[str] = field(default_factory=list)
    delta_types: list[str] = field(default_factory=list)
    delta_superseded: np.ndarray | None = None  # bool per delta row
    checked_at: float = 0.0
    too_big: bool = False
    window: _Window | None = None  # what is known of the look-back window (None: read it afresh)
    rows_read: int = 0  # ids and stamps the last look at the window read
    settled: datetime | None = None
    """Every row stamped at or before this is known (snapshot or delta). A read that started at wall time W saw every
    row stamped up to W - LOOKBACK_S (committed by then); once that covers the newest stamp known, the window starts at
    that stamp instead of LOOKBACK_S before it: an org that stopped writing is not read back the last 30 s of its
    writes at every query. (While stamps within LOOKBACK_S keep arriving the window is as before, so a large one stays
    probed rather than read: its lower bound does not move.)"""

    def reset_delta(self) -> None:
        """Forget the delta (a new snapshot holds its rows)."""
        self.delta, self.delta_stamps, self.seen_until = {}, {}, None
        self.window, self.settled = None, None

    def rebuild_views(self, added: list[str] | None = None) -> None:
        """Derive what a query reads (the live delta rows' matrix, ids, types and flags; the snapshot rows they hide;
        the count of rows new since the snapshot) from the delta. ``added``: ids that were not in the delta before
        and are the only change since the views were last derived — appended to them rather than all rebuilt (a
        write per query otherwise cost O(delta): ~5 ms at 1,500 delta rows)."""
        snap = self.snapshot
        if added is not None and self.delta_superseded is not None:
            self._append_views(added)
            return
        live = [(mid, v, t, sup) for mid, (v, t, ok, sup) in self.delta.items() if ok]
        self.delta_ids = [m for m, _, _, _ in live]
        self.delta_types = [t for _, _, t, _ in live]
        self.delta_matrix = np.vstack([v for _, v, _, _ in live]).astype(np.float32) if live else None
        self.delta_superseded = np.array([sup for _, _, _, sup in live], dtype=bool)
        self.hidden = snap.void if snap is not None else None
        self._hide(list(self.delta))
        self.fresh = self._count_fresh(list(self.delta))

    def _append_views(self, added: list[str]) -> None:
        live = [(mid, *self.delta[mid]) for mid in added if self.delta[mid][2]]
        if live:
            self.delta_ids = self.delta_ids + [m for m, _, _, _, _ in live]
            self.delta_types = self.delta_types + [t for _, _, t, _, _ in live]
            more = np.vstack([v for _, v, _, _, _ in live]).astype(np.float32)
            self.delta_matrix = more if self.delta_matrix is None else np.vstack([self.delta_matrix, more])
            assert self.delta_superseded is not None
            self.delta_superseded = np.concatenate(
                [self.delta_superseded, np.array([sup for _, _, _, _, sup in live], dtype=bool)])
        self._hide(added)
        self.fresh += self._count_fresh(added)

    def _hide(self, ids: list[str]) -> None:
        """Hide the snapshot's rows of ``ids`` (new arrays: ``void`` and the previous masks are never changed)."""
        snap = self.snapshot
        if snap is not None and len(snap.ids) and ids:
            replaced = snap.rows_of(ids)
            if replaced.any() or self.hidden is None:
                self.hidden = replaced if self.hidden is None else (replaced | self.hidden)
        self.hidden_current = self.hidden
        if snap is not None and snap.superseded is not None and snap.superseded.any():
            self.hidden_current = snap.superseded if self.hidden is None else (snap.superseded | self.hidden)

    def _count_fresh(self, ids: list[str]) -> int:
        """How many of ``ids`` are stamped after the snapshot's high-water mark."""
        snap = self.snapshot
        hw = as_aware(snap.high_water) if snap is not None and snap.high_water is not None else None
        if hw is None or not ids:
            return len(ids)
        stamps = [self.delta_stamps[m] for m in ids]
        bound = hw if stamps[0].tzinfo is not None else hw.replace(tzinfo=None)  # one kind per dialect
        return sum(1 for t in stamps if t > bound)

    def new_rows(self) -> int:
        """Delta rows stamped after the snapshot was built (the overlap window's rows do not count)."""
        return self.fresh

    @property
    def window_rows(self) -> int:
        """Rows of the look-back window, as last read."""
        return self.window.sums[0] if self.window is not None else 0


@dataclass(frozen=True)
class _Window:
    """The look-back window as last read: every row of the org stamped in (``lower``, ``upper``] was read, and their
    count and stamp sums (:func:`stamp_sums`) were ``sums``.

    A look first takes the same sums of that range in SQL (one aggregate over ``ix_memories_org_updated``): equal,
    nothing in it changed — no late commit stamped inside it, no row stamped anew or removed — and only the rows
    stamped after ``upper`` are read (usually none or a few). Otherwise the window is read afresh from the lower bound
    needed now. The sums are taken before the read, so a row committed after them is seen at the next look. The lower
    bound stays put while it is at most ``WINDOW_STRETCH_S`` older than needed: an org writing steadily reads each new
    row once rather than its last 30 s at every query (a bulk import's: 50k rows re-read per query, ~270 ms at 1M
    memories)."""

    lower: datetime
    upper: datetime
    sums: tuple[int, int, int]

    def extended(self, stamps: list[datetime], dialect: str) -> _Window:
        """This window with rows stamped ``stamps`` (all after ``upper``) read too."""
        if not stamps:
            return self
        more = stamp_sums(stamps, dialect)
        return _Window(self.lower, max(self.upper, max(as_aware(t) for t in stamps)),
                       (self.sums[0] + more[0], self.sums[1] + more[1], self.sums[2] + more[2]))


class ExactOrgIndex:
    """Top-k over an org's memory embeddings from a shared memory-mapped snapshot: exact below
    ``ann_min_rows`` live memories, inverted lists probed above (the delta is exact either way); None past
    ``max_rows`` (Milvus). The class keeps its name: recall and the tests construct it as the org index."""

    def __init__(self, *, max_rows: int = DEFAULT_MAX_ROWS, refresh_s: float = 0.0,
                 snapshot_dir: Path | None = None, rebuild_after: int | None = None, max_age_s: float = 600.0,
                 ann_min_rows: int = ANN_MIN_ROWS, nprobe: int | None = None):
        self.max_rows = max_rows
        self.refresh_s = refresh_s
        self.snapshot_dir = snapshot_dir
        self.rebuild_after = rebuild_after
        self.max_age_s = max_age_s
        self.ann_min_rows = ann_min_rows  # snapshots built from now on with at least this many rows are IVF
        self.nprobe = nprobe  # lists probed per query; None: PROBE_SHARE of them (at least MIN_NPROBE)
        self._orgs: dict[tuple[str, str, int], _OrgState] = {}
        self._lock = threading.Lock()

    # --- queries ---------------------------------------------------------------------------------
    def search(self, s: Session, org_id: str, qvec: np.ndarray, *, limit: int, embedder: str, dim: int,
               entity_types: list[str] | None = None, refresh: bool = True,
               include_superseded: bool = True) -> list[str] | None:
        """Ids of the ``limit`` most similar memories, or None when the org is too big (use Milvus). ``refresh``
        False: a later search of the same request (a wider fetch), on the state its first search brought up to
        date — not probed and read again. ``include_superseded`` False: memories superseded when last read are
        left out (a recall of current facts would drop them after its SQL re-check anyway: an org where most
        memories were superseded otherwise fetched several times as many candidates)."""
        access = current_access()
        if access.entity_types is not None:  # a department key ranks only its own types (SQL re-checks anyway)
            entity_types = sorted(set(entity_types or access.entity_types) & access.entity_types)
            if not entity_types:
                return []
        with self._lock, unrestricted():  # the snapshot is shared by every key and process: built org-wide
            st = self._current(s, org_id, embedder, dim, refresh=refresh)
            if st is None:
                return None
            q = np.asarray(qvec, dtype=np.float32)
            scores: list[np.ndarray] = []
            ids: list[Any] = []
            snap = st.snapshot
            if snap is not None and len(snap.ids):
                wanted = None
                if entity_types:
                    wanted = np.zeros(max(len(snap.types), 1), dtype=bool)
                    wanted[[i for i, t in enumerate(snap.types) if t in entity_types]] = True
                hidden = st.hidden if include_superseded else st.hidden_current
                rows, sims = self._score(snap, hidden, wanted, q, limit)
                k = min(limit, len(sims))
                if k:
                    top = np.argpartition(-sims, k - 1)[:k]
                    scores.append(sims[top])
                    ids += [snap.ids[i].decode() for i in (top if rows is None else rows[top])]
            if st.delta_matrix is not None:
                dsims = st.delta_matrix @ q
                if entity_types:
                    dsims = np.where(np.isin(np.asarray(st.delta_types, dtype=object), entity_types), dsims, -np.inf)
                if not include_superseded and st.delta_superseded is not None:
                    dsims = np.where(st.delta_superseded, -np.inf, dsims)
                scores.append(dsims)
                ids += st.delta_ids
            if not ids:
                return []
            allsims = np.concatenate(scores)
            order = np.argsort(-allsims, kind="stable")[:limit]
            return [ids[i] for i in order if np.isfinite(allsims[i])]

    def probes(self, nlist: int) -> int:
        """Lists probed first, of ``nlist``: ``nprobe``, else PROBE_SHARE of them (at least MIN_NPROBE)."""
        if self.nprobe is not None:
            return max(1, self.nprobe)
        return max(MIN_NPROBE, int(np.ceil(nlist * PROBE_SHARE)))

    def _score(self, snap: Snapshot, hidden: np.ndarray | None, wanted: np.ndarray | None, q: np.ndarray,
               limit: int) -> tuple[np.ndarray | None, np.ndarray]:
        """Similarities of the snapshot rows considered (rows hidden by the delta or of unwanted types at -inf):
        every row of a flat snapshot (``rows`` None), else the rows of the best-matching inverted lists —
        at least ``nprobe`` lists, more until ``limit`` probed rows are eligible (or every list is probed)."""
        if snap.centroids is None or snap.offsets is None:
            sims = np.asarray(snap.vectors @ q, dtype=np.float32)
            if hidden is not None:
                sims[hidden] = -np.inf
            if wanted is not None:
                sims[~wanted[snap.type_codes]] = -np.inf
            return None, sims
        offsets = snap.offsets
        order = np.argsort(-(snap.centroids @ q), kind="stable")
        row_parts: list[np.ndarray] = []
        sim_parts: list[np.ndarray] = []
        eligible, pos, step = 0, 0, self.probes(len(order))
        while pos < len(order):
            lists = np.sort(order[pos:pos + step])  # ascending: neighbouring slices of the file in order
            pos += step
            spans = [(int(offsets[j]), int(offsets[j + 1])) for j in lists if offsets[j + 1] > offsets[j]]
            if not spans:
                continue
            rows = np.concatenate([np.arange(a, b) for a, b in spans])
            # einsum, not ``@``: one list is ~1k rows, and a multi-threaded BLAS call per list spent ~10x the
            # scan itself waking its threads on a loaded machine (bench: 48 lists 37-42 ms with BLAS, 4-7 ms)
            sims = np.concatenate([np.einsum("ij,j->i", snap.vectors[a:b], q) for a, b in spans])
            ok = np.ones(len(rows), dtype=bool)
            if hidden is not None:
                ok &= ~hidden[rows]
            if wanted is not None:
                ok &= wanted[snap.type_codes[rows]]
            sims[~ok] = -np.inf
            row_parts.append(rows)
            sim_parts.append(sims)
            eligible += int(ok.sum())
            if eligible >= limit:
                break
        if not row_parts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        return np.concatenate(row_parts), np.concatenate(sim_parts)

    def warm(self, s: Session, org_id: str, *, embedder: str, dim: int) -> bool:
        """Map (or build) the org's snapshot now; False when the org is too big for exact search."""
        with self._lock, unrestricted():
            st = self._current(s, org_id, embedder, dim)
            if st is None:
                return False
            if st.snapshot is not None:
                st.snapshot.prefault()
            return True

    # --- state -------------------------------------------------------------------------------------
    def _current(self, s: Session, org_id: str, embedder: str, dim: int, *, refresh: bool = True) -> _OrgState | None:
        key = (org_id, embedder, dim)
        now = time.monotonic()
        st = self._orgs.get(key)
        if st is None:
            total = s.scalar(select(func.count()).select_from(Memory).where(Memory.org_id == org_id)) or 0
            st = self._orgs[key] = _OrgState(dim, too_big=total > self.max_rows)
        if st.too_big:
            return None
        if st.snapshot is not None and (not refresh or now - st.checked_at < self.refresh_s):
            return st
        store = self._store(org_id, embedder, dim)
        if st.snapshot is None or (store is not None and store.current_version() != st.snapshot.version):
            st.snapshot = store.load_or_build(s) if store is not None else _build(
                s, org_id, embedder, dim, None, 0, self.ann_min_rows)
            st.reset_delta()
            st.rebuild_views()
        self._refresh_delta(s, st, org_id, embedder)
        snap = st.snapshot
        assert snap is not None
        if len(snap.ids) + len(st.delta_ids) > self.max_rows:  # grew past the limit: hand over to Milvus
            st.too_big = True
            return None
        limit = self.rebuild_limit(len(snap.ids))
        fresh = st.new_rows()
        due = fresh > limit or (fresh and time.time() - snap.built_at > self.max_age_s)
        if due and (store is None or fresh > limit * INLINE_REBUILD_FACTOR):
            rebuilt = store.rebuild(s, snap.version) if store is not None else _build(
                s, org_id, embedder, dim, None, snap.version + 1, self.ann_min_rows, snap)
            assert rebuilt is not None
            st.snapshot = rebuilt
            st.reset_delta()
            st.rebuild_views()
            self._refresh_delta(s, st, org_id, embedder)
        st.checked_at = now
        return st

    def rebuild_limit(self, rows: int) -> int:
        """New rows after which a snapshot of ``rows`` rows is due for a rebuild."""
        return self.rebuild_after if self.rebuild_after is not None else max(2000, rows // 20)

    def rebuild_due(self, s: Session, *, between: Callable[[], None] | None = None) -> list[str]:
        """Rebuild every snapshot under ``snapshot_dir`` that is due (the workers' maintenance round, off the
        request path); a snapshot another process is building is skipped. Returns the rebuilt orgs' ids.
        ``between`` runs before each rebuild (the round's lease and deadline check)."""
        rebuilt: list[str] = []
        if self.snapshot_dir is None:
            return rebuilt
        for current in sorted(Path(self.snapshot_dir).glob("*/*/CURRENT")):
            try:
                meta = json.loads(current.read_text())
                org_id, embedder, dim = str(meta["org"]), str(meta["embedder"]), int(meta["dim"])
                rows, built_at, version = int(meta["rows"]), float(meta["built_at"]), int(meta["version"])
                hw = datetime.fromisoformat(meta["high_water"]) if meta.get("high_water") else None
            except (OSError, ValueError, KeyError):
                continue
            scope = [Memory.org_id == org_id, Memory.embedder == embedder]
            if hw is not None:
                scope.append(Memory.updated_at > hw)
            fresh = s.scalar(select(func.count()).select_from(Memory).where(*scope)) or 0
            if not (fresh > self.rebuild_limit(rows) or (fresh and time.time() - built_at > self.max_age_s)):
                continue
            if between is not None:
                between()
            store = SnapshotStore(self.snapshot_dir, org_id, embedder, dim, ann_min_rows=self.ann_min_rows)
            if store.rebuild(s, version, wait=False) is not None:
                rebuilt.append(org_id)
        return rebuilt

    def _refresh_delta(self, s: Session, st: _OrgState, org_id: str, embedder: str) -> None:
        settled = st.settled
        self._read_window(s, st, org_id, embedder)
        if st.settled is not None and st.settled != settled:
            _forget_settled(st)

    def _read_window(self, s: Session, st: _OrgState, org_id: str, embedder: str) -> None:
        snap = st.snapshot
        assert snap is not None
        # Every change bumps updated_at, and a transaction commits at most LOOKBACK_S after its stamp: only rows
        # stamped after the newest stamp already read (or the snapshot's high-water mark), minus that overlap,
        # can be new — so a large delta (a snapshot due for its rebuild) is not re-read at every query.
        since = max((as_aware(t) for t in (snap.high_water, st.seen_until) if t is not None), default=None)
        started = utcnow()  # before the read: what it sees was committed by then
        stamp = Memory.updated_at
        # ids, stamps and embedders of every row in range (the sums cover every embedder's rows): Core, no ORM rows
        read = select(Memory.id, stamp, Memory.embedder).where(Memory.org_id == org_id)
        w, dialect = st.window, s.get_bind().dialect.name
        if since is None:
            st.window = None
            rows = s.connection().execute(read).all()
        else:
            lower = since - timedelta(seconds=LOOKBACK_S)
            if st.settled is not None:
                lower = max(lower, as_aware(st.settled))
            # (a window read from the bound needed now costs no more once that bound reaches the newest row read)
            if (w is not None and w.lower <= lower < w.upper and lower <= w.lower + timedelta(seconds=WINDOW_STRETCH_S)
                    and window_sums(s, org_id, w.lower, w.upper) == w.sums):  # nothing in the window changed
                rows = s.connection().execute(read.where(stamp > w.upper)).all()
                st.window = w.extended([r[1] for r in rows], dialect)
            else:
                rows = s.connection().execute(read.where(stamp > lower)).all()
                st.window = _Window(lower, lower, (0, 0, 0)).extended([r[1] for r in rows], dialect)
        st.rows_read = len(rows)
        recent = [(mid, ts) for mid, ts, emb in rows if emb == embedder]
        if recent:
            newest = as_aware(max(ts for _, ts in recent))  # one kind per dialect: naive (SQLite) or aware
            st.seen_until = newest if st.seen_until is None else max(as_aware(st.seen_until), newest)
        _settle(st, since, started)
        changed = [mid for mid, ts in recent if st.delta_stamps.get(mid) != ts]
        if changed and snap.stamps is not None:  # rows the snapshot holds as they are now need no vector
            stamp_of = dict(recent)
            first_seen = [m for m in changed if m not in st.delta]
            held_at = snap.row_index(first_seen)
            same = {m for m, r in zip(first_seen, held_at, strict=True)
                    if r >= 0 and int(snap.stamps[r]) == micros(stamp_of[m])}
            for m in same:
                st.delta_stamps[m] = stamp_of[m]  # known: not read again while its stamp stays
            changed = [m for m in changed if m not in same]
        if not changed:
            return
        added = [m for m in changed if m not in st.delta]
        for i in range(0, len(changed), 500):
            found = s.execute(select(Memory.id, Memory.entity_type, Memory.embedding, Memory.updated_at,
                                     Memory.deleted_at, Memory.superseded_by)
                              .where(Memory.id.in_(changed[i:i + 500]))).all()
            vecs = from_blobs([r[2] for r in found], st.dim) if found else np.zeros((0, st.dim), dtype=np.float32)
            for r, v in zip(found, vecs, strict=True):
                st.delta[r[0]] = (v, r[1], r[4] is None and r[2] is not None, r[5] is not None)
                st.delta_stamps[r[0]] = r[3]
        # only new rows (the usual look at an org that keeps writing): appended to the views
        st.rebuild_views([m for m in added if m in st.delta] if len(added) == len(changed) else None)

    def _store(self, org_id: str, embedder: str, dim: int) -> SnapshotStore | None:
        if self.snapshot_dir is None:
            return None
        return SnapshotStore(self.snapshot_dir, org_id, embedder, dim, ann_min_rows=self.ann_min_rows)


def _settle(st: _OrgState, since: datetime | None, started: datetime) -> None:
    """After a look at the window that started at ``started`` (a read, or a probe finding it unchanged): when every
    stamp known is older than the look-back window, nothing can still commit below it — the next window holds only
    rows stamped after it (see :attr:`_OrgState.settled`)."""
    known = max((as_aware(t) for t in (since, st.seen_until) if t is not None), default=None)
    if known is not None and known <= started - timedelta(seconds=LOOKBACK_S):
        st.settled = known


def _forget_settled(st: _OrgState) -> None:
    """Drop the stamps of rows the snapshot holds as they are and that are stamped at or before ``settled``: no
    window reads them again (a change stamps a row anew, after it). A bulk write stamped within the look-back window
    of the snapshot otherwise keeps one entry per row in every process (~7 MB at 50k rows)."""
    assert st.settled is not None
    bound = as_aware(st.settled)
    st.delta_stamps = {m: t for m, t in st.delta_stamps.items() if m in st.delta or as_aware(t) > bound}


def window_sums(s: Session, org_id: str, lower: datetime, upper: datetime) -> tuple[int, int, int]:
    """:func:`stamp_sums` of the org's memories (every embedder's) stamped in (``lower``, ``upper``], from
    ``ix_memories_org_updated`` alone. A row added, removed or stamped anew changes the count or a sum."""
    stamp = Memory.updated_at
    seconds: ColumnElement[int]
    fraction: ColumnElement[int]
    if s.get_bind().dialect.name == "sqlite":  # stored as text: 'YYYY-MM-DD HH:MM:SS.ffffff'
        # unixepoch() (SQLite 3.38+) takes half strftime's time: 3.6 against 7 ms over 21.5k stamps. Both round the
        # stamp to the millisecond first (SQLite's clock): :func:`stamp_sums` does the same.
        seconds = func.unixepoch(stamp) if sqlite3.sqlite_version_info >= (3, 38) else \
            cast(func.strftime("%s", stamp), Integer)
        fraction = cast(func.substr(stamp, 21), Integer)
    else:
        seconds = cast(func.floor(func.extract("epoch", stamp)), BigInteger)
        fraction = cast(func.extract("microseconds", stamp), BigInteger) % 1_000_000
    q = select(func.count(), func.coalesce(func.sum(seconds), 0), func.coalesce(func.sum(fraction), 0)).where(
        Memory.org_id == org_id, stamp > lower, stamp <= upper)
    n, secs, frac = s.connection().execute(q).one()
    return int(n), int(secs), int(frac)


def stamp_sums(stamps: list[datetime], dialect: str) -> tuple[int, int, int]:
    """(count, sum of whole seconds since the epoch, sum of microsecond parts) of ``stamps`` (naive: UTC), as
    :func:`window_sums` takes them in SQL on ``dialect``: SQLite's seconds are those of the stamp rounded to the
    millisecond (half up: its date functions keep milliseconds). Where floating point makes SQLite round a stamp
    ending in exactly .xxx500 µs the other way the sums differ and the window is only read afresh: every change
    still changes them."""
    micro = [micros(t) for t in stamps]
    if dialect == "sqlite":
        seconds = sum((m + 500) // 1000 // 1000 for m in micro)
    else:
        seconds = sum(m // 1_000_000 for m in micro)
    return len(micro), seconds, sum(m % 1_000_000 for m in micro)


def _slug(text: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:60]
    return f"{safe}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


class SnapshotStore:
    """The files of one org's snapshots for one embedder, and the lock that serialises their builders."""

    def __init__(self, root: Path, org_id: str, embedder: str, dim: int, *, ann_min_rows: int = ANN_MIN_ROWS):
        self.org_id, self.embedder, self.dim = org_id, embedder, dim
        self.ann_min_rows = ann_min_rows
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
            vectors, vectors_map = map_npy(self.dir / f"v{v}.vectors.npy")
            ids = np.asarray(np.load(self.dir / f"v{v}.ids.npy", mmap_mode="r"))
            codes = np.asarray(np.load(self.dir / f"v{v}.types.npy", mmap_mode="r"))
            centroids = offsets = None
            id_order = np.load(self.dir / f"v{v}.idorder.npy", mmap_mode="r") if meta.get("id_order") else None
            stamps = np.load(self.dir / f"v{v}.stamps.npy", mmap_mode="r") if meta.get("stamps") else None
            superseded = np.load(self.dir / f"v{v}.superseded.npy", mmap_mode="r") if meta.get("superseded") else None
            if meta.get("ivf"):
                centroids = np.load(self.dir / f"v{v}.centroids.npy")
                offsets = np.load(self.dir / f"v{v}.offsets.npy")
        except (OSError, ValueError, KeyError):
            return None
        hw = datetime.fromisoformat(meta["high_water"]) if meta.get("high_water") else None
        void = ids == b""
        return Snapshot(v, vectors, ids, codes, list(meta["types"]), hw, float(meta["built_at"]), self.dir,
                        void if void.any() else None, centroids, offsets,
                        None if id_order is None else np.asarray(id_order), vectors_map,
                        None if stamps is None else np.asarray(stamps),
                        None if superseded is None else np.asarray(superseded))

    def load_or_build(self, s: Session) -> Snapshot:
        snap = self.load()
        if snap is not None:
            return snap
        return self.rebuild(s, None)

    @overload
    def rebuild(self, s: Session, seen_version: int | None) -> Snapshot: ...

    @overload
    def rebuild(self, s: Session, seen_version: int | None, *, wait: bool) -> Snapshot | None: ...

    def rebuild(self, s: Session, seen_version: int | None, *, wait: bool = True) -> Snapshot | None:
        """Build a new version from SQL unless another process did since ``seen_version`` (file lock). With
        ``wait=False`` a build already running elsewhere is left to finish: None, nothing done."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "lock", "a+") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return None
            try:
                current = self.current_version()
                if current is not None and current != seen_version:
                    snap = self.load()
                    if snap is not None:
                        return snap
                version = (current or 0) + 1
                previous = self.load() if current is not None else None
                snap = _build(s, self.org_id, self.embedder, self.dim, self.dir, version, self.ann_min_rows,
                              previous)
                self._publish(snap)
                self._collect(version)
                out = self.load() or snap
                out.prefault()  # its pages are in the page cache (just written): map them while we are at it
                return out
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _publish(self, snap: Snapshot) -> None:
        meta = {"version": snap.version, "org": self.org_id, "embedder": self.embedder, "dim": self.dim,
                "rows": len(snap.ids), "types": snap.types, "built_at": snap.built_at,
                "ivf": None if snap.centroids is None else {"nlist": len(snap.centroids)},
                "id_order": snap.id_order is not None, "stamps": snap.stamps is not None,
                "superseded": snap.superseded is not None,
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


def _build(s: Session, org_id: str, embedder: str, dim: int, directory: Path | None, version: int,
           ann_min_rows: int = ANN_MIN_ROWS, previous: Snapshot | None = None) -> Snapshot:
    """Read the org's live vectors from SQL in one streamed scan, in batches, into (a file-backed) matrix;
    from ``ann_min_rows`` rows on, rewritten in inverted-file order (:func:`_ivf_layout`, or the lists of
    ``previous`` reused: see :func:`_reuse_layout`)."""
    scope = (Memory.org_id == org_id, Memory.embedder == embedder, Memory.deleted_at.is_(None),
             Memory.embedding.is_not(None))
    started = utcnow()
    n = int(s.scalar(select(func.count()).select_from(Memory).where(*scope)) or 0)
    raw = None if directory is None else directory / f"v{version}.vectors.{os.getpid()}.raw.npy"
    if raw is not None:
        vectors: np.ndarray = np.lib.format.open_memmap(raw, mode="w+", dtype=np.float32, shape=(n, dim))
    else:
        vectors = np.zeros((n, dim), dtype=np.float32)
    ids = np.zeros(n, dtype=ID_DTYPE)
    codes = np.zeros(n, dtype=np.uint16)
    stamps = np.zeros(n, dtype=np.int64)
    superseded = np.zeros(n, dtype=bool)
    types: dict[str, int] = {}
    filled = 0
    # one streamed scan (no ORDER BY: a keyset page per batch made SQLite sort the org once per page)
    with streaming_connection(s) as conn:
        result = conn.execute(select(Memory.id, Memory.entity_type, Memory.embedding, Memory.updated_at,
                                     Memory.superseded_by)
                              .where(*scope).execution_options(stream_results=True, yield_per=BUILD_BATCH))
        for part in result.partitions(BUILD_BATCH):
            rows = list(part)[: n - filled]  # rows inserted since the count are the delta's
            if not rows:
                break
            k = len(rows)
            vectors[filled:filled + k] = from_blobs([r[2] for r in rows], dim)
            ids[filled:filled + k] = [r[0].encode() for r in rows]
            codes[filled:filled + k] = [types.setdefault(r[1], len(types)) for r in rows]
            stamps[filled:filled + k] = [micros(r[3]) for r in rows]
            superseded[filled:filled + k] = [r[4] is not None for r in rows]
            filled += k
        result.close()
    # The snapshot covers what was committed when the build started: the delta reads rows stamped after
    # that, minus the overlap window (a transaction stamped earlier may have committed after our read).
    high = started
    type_list = sorted(types, key=types.__getitem__)
    centroids = offsets = None
    if filled >= max(ann_min_rows, 1):
        # rows deleted while we read (empty slots past ``filled``) are left out of the reordered file
        reused = _reuse_layout(previous, ids[:filled], vectors[:filled])
        centroids, assign = reused if reused is not None else _ivf_layout(vectors[:filled])
        order = np.argsort(assign, kind="stable")
        offsets = np.concatenate([[0], np.cumsum(np.bincount(assign, minlength=len(centroids)))]).astype(np.int64)
        ids, codes, stamps = ids[:filled][order], codes[:filled][order], stamps[:filled][order]
        superseded = superseded[:filled][order]
        if raw is None:
            vectors = vectors[:filled][order]
        else:
            assert directory is not None
            out = np.lib.format.open_memmap(directory / f"v{version}.vectors.{os.getpid()}.tmp.npy", mode="w+",
                                            dtype=np.float32, shape=(filled, dim))
            for i in range(0, filled, BUILD_BATCH * 4):
                out[i:i + BUILD_BATCH * 4] = vectors[order[i:i + BUILD_BATCH * 4]]
            out.flush()
            del out, vectors
            raw.unlink()
    elif raw is not None:
        if isinstance(vectors, np.memmap):
            vectors.flush()
        del vectors
        assert directory is not None
        os.replace(raw, directory / f"v{version}.vectors.{os.getpid()}.tmp.npy")
    if directory is None:
        if centroids is None:
            vectors, ids, codes, stamps = vectors[:filled], ids[:filled], codes[:filled], stamps[:filled]
            superseded = superseded[:filled]
        return Snapshot(version, vectors, ids, codes, type_list, high, time.time(), None, None, centroids, offsets,
                        np.argsort(ids, kind="stable"), stamps=stamps, superseded=superseded)
    os.replace(directory / f"v{version}.vectors.{os.getpid()}.tmp.npy", directory / f"v{version}.vectors.npy")
    id_order = np.argsort(ids, kind="stable")
    arrays: list[tuple[str, np.ndarray]] = [("ids", ids), ("types", codes), ("idorder", id_order),
                                            ("stamps", stamps), ("superseded", superseded)]
    if centroids is not None and offsets is not None:
        arrays += [("centroids", centroids), ("offsets", offsets)]
    for name, arr in arrays:
        tmp_path = directory / f"v{version}.{name}.{os.getpid()}.tmp.npy"
        np.save(tmp_path, arr)
        os.replace(tmp_path, directory / f"v{version}.{name}.npy")
    void = ids == b""  # rows deleted while we read leave empty slots in the file
    mapped, vectors_map = map_npy(directory / f"v{version}.vectors.npy")
    return Snapshot(version, mapped, ids, codes, type_list, high, time.time(), directory, void if void.any() else None,
                    centroids, offsets, id_order, vectors_map, stamps, superseded)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def micros(stamp: datetime) -> int:
    """``stamp`` (naive: UTC) as whole microseconds since the epoch — exact, unlike a float timestamp."""
    return (as_aware(stamp) - _EPOCH) // timedelta(microseconds=1)


def map_npy(path: Path) -> tuple[np.ndarray, mmap.mmap]:
    """A read-only ndarray over a memory-mapped ``.npy`` file (a plain view, no copy: numpy's memmap subclass
    slows every operation) and its mapping (for :meth:`Snapshot.prefault`)."""
    with open(path, "rb") as f:
        major, _ = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(f)
        offset = f.tell()
        mapping = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    if fortran:
        raise ValueError(f"{path}: Fortran-ordered arrays are not written here")
    count = int(np.prod(shape, dtype=np.int64))
    return np.frombuffer(mapping, dtype=dtype, count=count, offset=offset).reshape(shape), mapping


def ivf_lists(n: int) -> int:
    """Number of inverted lists for ``n`` rows: the power of two nearest √n (≥ 16; 1024 at 1M rows)."""
    return int(max(16, 2 ** round(np.log2(max(n, 1)) / 2)))


def _reuse_layout(previous: Snapshot | None, ids: np.ndarray,
                  x: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The previous version's centroids, its rows kept in their lists and only new rows assigned — a rebuild
    then costs the SQL read and the rewrite, not k-means over every row (at 1M rows ~30 s of assignment on
    2 cores). None (train afresh) without a previous IVF version, or when the org has more than doubled or
    shrunk below half since the centroids were trained (their lists would be too long or too short).
    A row whose vector changed in place keeps its old list: only its chance to be probed changes, never
    its score."""
    if previous is None or previous.centroids is None or previous.offsets is None or previous.id_order is None:
        return None
    before = len(previous.ids)
    if not before or not before // 2 <= len(ids) <= 2 * before:
        return None
    order = previous.id_order
    at = np.minimum(np.searchsorted(previous.ids, ids, sorter=order), before - 1)
    rows = order[at]
    known = previous.ids[rows] == ids
    assign = np.empty(len(ids), dtype=np.int64)
    assign[known] = np.searchsorted(previous.offsets, rows[known], side="right") - 1
    fresh = np.flatnonzero(~known)
    if len(fresh):
        assign[fresh] = _assign(np.asarray(x[fresh]), previous.centroids)
    return np.asarray(previous.centroids), assign


def _assign(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of each row's most similar centroid (inner product), in batches."""
    out = np.empty(len(x), dtype=np.int64)
    for i in range(0, len(x), ASSIGN_BATCH):
        out[i:i + ASSIGN_BATCH] = np.argmax(np.asarray(x[i:i + ASSIGN_BATCH]) @ centroids.T, axis=1)
    return out


def _ivf_layout(x: np.ndarray, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Spherical k-means centroids of ``x`` (trained on a sample of ``KMEANS_SAMPLE_PER_LIST`` rows per list)
    and every row's list."""
    n = len(x)
    nlist = min(ivf_lists(n), n)
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(n, size=min(n, nlist * KMEANS_SAMPLE_PER_LIST), replace=False))
    sample = np.asarray(x[pick], dtype=np.float32)
    centroids = sample[rng.choice(len(sample), size=nlist, replace=False)].copy()
    for _ in range(KMEANS_ITERS):
        assign = _assign(sample, centroids)
        sums = np.zeros_like(centroids)
        np.add.at(sums, assign, sample)
        counts = np.bincount(assign, minlength=nlist)
        empty = np.flatnonzero(counts == 0)
        if len(empty):  # re-seed an empty list with a random sample row
            sums[empty] = sample[rng.choice(len(sample), size=len(empty), replace=False)]
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        centroids = np.where(norms > 0, sums / np.maximum(norms, 1e-12), centroids).astype(np.float32)
    return centroids, _assign(x, centroids)
