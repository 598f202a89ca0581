"""Keeping the Milvus index in step with SQL, the source of truth.

Memory rows are committed with ``index_state="pending"``; after the commit their vectors are upserted to
Milvus and the rows marked ``"indexed"``. Deletions leave :class:`IndexTombstone` rows in the deleting
transaction; they are removed once Milvus has deleted the vectors. A crash between the SQL commit and the
Milvus write therefore loses nothing: :meth:`MemoryIndex.reconcile` (run at gateway/worker start, periodically by
the workers' maintenance loop, and by ``memrelay check-index --repair``) indexes what is pending and applies what is tombstoned.

Services that write memories see only :class:`IndexWriter`; those that search see only :class:`IndexSearch`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np
from sqlalchemy import Table, bindparam, case, delete, func, select, update
from sqlalchemy.orm import Session

from memrelay.engine.adapters.vector_index import (
    Hit,
    VectorIndex,
    VectorRow,
    collection_name,
    from_blobs,
    to_blob,
)
from memrelay.engine.core.errors import ServiceUnavailable
from memrelay.engine.core.util import utcnow
from memrelay.engine.stores.db.database import Database
from memrelay.engine.stores.db.models import IndexMeta, IndexTombstone, Memory

if TYPE_CHECKING:
    from memrelay.engine.core.embedder import Embedder

log = logging.getLogger("memrelay.index")

BATCH = 2000
MEMORIES = cast(Table, Memory.__table__)  # Core statements over the memories table (executemany updates)


_META_TTL_S = 5.0
_meta_ok: dict[tuple[str, str, int], float] = {}


def check_embedder(s: Session, org_id: str, embedder: Embedder, *, claim: bool = True) -> None:
    """Raise unless ``embedder`` is the one that built this org's vectors (first use records it).

    Reads (``claim=False``) trust a positive answer for a few seconds per process: the hot recall path
    saves a query, and a reindex by another process is noticed within the TTL."""
    key = (org_id, embedder.name, embedder.dim)
    if not claim and _meta_ok.get(key, 0.0) > time.monotonic():
        return
    meta = s.get(IndexMeta, org_id)
    if meta is None:
        if claim:
            s.add(IndexMeta(org_id=org_id, embedder=embedder.name, dim=embedder.dim, updated_at=utcnow()))
            s.flush()
        return
    if meta.embedder == embedder.name and meta.dim == embedder.dim:
        _meta_ok[key] = time.monotonic() + _META_TTL_S
    else:
        raise ServiceUnavailable(
            f"this organisation's memories were embedded with {meta.embedder} ({meta.dim}-d) but the configured "
            f"embedder is {embedder.name} ({embedder.dim}-d); run `memrelay reindex` to re-embed them",
            code="reindex_required",
            details={"indexedWith": meta.embedder, "indexedDim": meta.dim, "configured": embedder.name,
                     "configuredDim": embedder.dim},
        )


class IndexWriter(Protocol):
    """What memory writers need: push a committed change to the index (never raises for index trouble)."""

    def sync_after_commit(self, *, index: Sequence[str] = (), tombstones_of: str | None = None,
                          flush_now: bool = True) -> bool: ...


class IndexSearch(Protocol):
    """What org-wide recall and similarity need: ANN candidates from the current embedder's collection."""

    def search(self, vector: np.ndarray, org_id: str, *, limit: int,
               entity_types: list[str] | None = None) -> list[Hit]: ...


class MemoryIndex:
    """The Milvus side of memories for one embedder: writes after SQL commits, repair, reindex, checks.

    Implements :class:`IndexWriter` and :class:`IndexSearch`; nothing here touches Milvus or the embedder
    before a method needs them (``embedder`` may be a :class:`~memrelay.engine.adapters.embedding.LazyEmbedder`)."""

    def __init__(self, db: Database, embedder: Embedder, vector_index: VectorIndex):
        self.db = db
        self.embedder = embedder
        self.vector_index = vector_index

    def search(self, vector: np.ndarray, org_id: str, *, limit: int,
               entity_types: list[str] | None = None) -> list[Hit]:
        """Nearest memory vectors of one org in the current collection (an on-demand Milvus is asked for and
        waited for: see :meth:`VectorIndex.request`)."""
        self.vector_index.request()
        return self.vector_index.search(self.current_collection(), vector, org_id, limit=limit,
                                        entity_types=entity_types)

    def current_collection(self) -> str:
        return collection_name(self.embedder.name, self.embedder.dim)

    def index_memories(self, memory_ids: Sequence[str], *, flush: bool = True) -> int:
        """Upsert the vectors of these pending memories to Milvus and mark them indexed.

        ``flush`` asks for a background seal (Milvus Lite; nothing waits for it); bulk callers pass False and
        flush once at the end (fewer segments)."""
        indexed = 0
        for i in range(0, len(memory_ids), BATCH):
            with self.db.read() as s:
                rows = s.execute(select(Memory.id, Memory.org_id, Memory.record_id, Memory.entity_type, Memory.embedding,
                                        Memory.embedder, Memory.updated_at)
                                 .where(Memory.id.in_(list(memory_ids[i:i + BATCH])),
                                        Memory.index_state == "pending")).all()
            indexed += self._index_rows(rows, flush=flush)
        return indexed

    def sync_after_commit(self, *, index: Sequence[str] = (), tombstones_of: str | None = None,
                          flush_now: bool = True) -> bool:
        """Push a committed change to Milvus: index these memories and/or apply an org's tombstones.

        The SQL commit already succeeded and is the truth, so an index failure must not fail the write: the
        rows stay pending (and the tombstones stay) until :meth:`reconcile` runs. ``flush_now=False`` (request
        paths) leaves sealing to a background flush a moment later. Inside a
        :meth:`~memrelay.engine.stores.db.database.Database.unit_of_work` the push waits for its commit
        (and returns False: the rows are still pending when the caller returns)."""
        pushed: list[bool] = []
        deferred = self.db.after_commit(lambda: pushed.append(self._push(index, tombstones_of, flush_now)))
        return not deferred and pushed[0]

    def _push(self, index: Sequence[str], tombstones_of: str | None, flush_now: bool) -> bool:
        if not self.vector_index.available():
            return False  # an on-demand Milvus not started yet: pending until it runs and reconcile indexes them
        try:
            if tombstones_of:
                self.apply_tombstones(org_id=tombstones_of)
            if index:
                self.index_memories(index, flush=flush_now)
                if not flush_now:
                    self.vector_index.flush_soon(self.current_collection())
            return True
        except Exception:
            log.warning("index sync after commit failed; left for reconcile", exc_info=True)
            return False

    def _index_rows(self, rows: Sequence[Any], *, flush: bool) -> int:
        emb = self.embedder
        rows = [r for r in rows if r.embedder == emb.name and r.embedding is not None]
        if not rows:
            return 0
        vectors = from_blobs([r.embedding for r in rows], emb.dim)
        self.vector_index.upsert(self.current_collection(), emb.dim, [
            VectorRow(r.id, r.org_id, r.record_id, r.entity_type, v) for r, v in zip(rows, vectors, strict=True)],
            flush=flush)
        # Only rows unchanged since they were read are marked: an edit in between stays pending.
        with self.db.session() as s:
            s.connection().execute(
                update(MEMORIES).where(MEMORIES.c.id == bindparam("mid"), MEMORIES.c.updated_at == bindparam("seen"),
                                       MEMORIES.c.index_state == "pending")
                .values(index_state="indexed"),
                [{"mid": r.id, "seen": r.updated_at} for r in rows])
        return len(rows)

    def apply_tombstones(self, *, org_id: str | None = None) -> int:
        """Delete tombstoned vectors from every memory collection, then drop the tombstones."""
        done = 0
        while True:
            with self.db.read() as s:
                q = select(IndexTombstone.id, IndexTombstone.memory_id).order_by(IndexTombstone.id).limit(BATCH)
                if org_id:
                    q = q.where(IndexTombstone.org_id == org_id)
                stones = s.execute(q).all()
            if not stones:
                return done
            ids = [t.memory_id for t in stones]
            for name in self.vector_index.list_collections():
                self.vector_index.delete(name, ids)
            with self.db.session() as s:
                s.execute(delete(IndexTombstone).where(IndexTombstone.id.in_([t.id for t in stones])))
            done += len(stones)

    def pending_ids(self, *, org_id: str | None = None, after: str = "", limit: int = BATCH) -> list[str]:
        """Ids of memories waiting for the index (embedded with the current embedder), in id order."""
        with self.db.read() as s:
            q = select(Memory.id).where(Memory.index_state == "pending", Memory.embedder == self.embedder.name,
                                        Memory.id > after)
            if org_id:
                q = q.where(Memory.org_id == org_id)
            return list(s.scalars(q.order_by(Memory.id).limit(limit)))

    def reconcile(self, *, org_id: str | None = None, between: Callable[[], None] | None = None) -> dict[str, int]:
        """Index every pending memory and apply every tombstone (idempotent; safe to run any time).

        ``between`` runs before each batch written (a maintenance round's lease and deadline check; it
        raises to stop the round). Nothing to do while an on-demand Milvus is not running."""
        if not self.vector_index.available():
            return {"indexed": 0, "tombstones": 0}
        with self.db.read() as s:
            q_pending = select(Memory.id).where(Memory.index_state == "pending").limit(1)
            q_stones = select(IndexTombstone.id).limit(1)
            if org_id:
                q_pending = q_pending.where(Memory.org_id == org_id)
                q_stones = q_stones.where(IndexTombstone.org_id == org_id)
            if s.scalar(q_pending) is None and s.scalar(q_stones) is None:
                return {"indexed": 0, "tombstones": 0}  # the common start-up case: touch nothing
        if between is not None:
            between()
        removed = self.apply_tombstones(org_id=org_id)
        indexed = 0
        last = ""
        try:
            while ids := self.pending_ids(org_id=org_id, after=last):
                if between is not None:
                    between()
                indexed += self.index_memories(ids, flush=False)
                last = ids[-1]
        finally:
            if indexed:  # in the background: reconcile also runs on request paths (erase-record)
                self.vector_index.flush_soon(self.current_collection())
        return {"indexed": indexed, "tombstones": removed}

    def start_background_reconcile(self) -> threading.Thread:
        """Run :meth:`reconcile` in a daemon thread so process start-up does not wait for Milvus."""

        def run() -> None:
            try:
                result = self.reconcile()
                if any(result.values()):
                    log.info("index reconciled", extra=result)
            except Exception:  # a background repair must never take the process down; check-index reports
                log.exception("index reconciliation failed")

        thread = threading.Thread(target=run, name="memrelay-index-reconcile", daemon=True)
        thread.start()
        return thread

    def org_ids(self) -> list[str]:
        """Every org that has memories or an index record."""
        with self.db.read() as s:
            return sorted(set(s.scalars(select(Memory.org_id).distinct())) | set(s.scalars(select(IndexMeta.org_id))))

    def count_memories(self, org_id: str) -> int:
        with self.db.read() as s:
            return int(s.scalar(select(func.count(Memory.id)).where(Memory.org_id == org_id)) or 0)

    def reindex_org(self, org_id: str, *, batch_size: int = 1000,
                    progress: Callable[[float], None] | None = None) -> dict[str, Any]:
        """Re-embed every memory of an org from its SQL text with the current embedder and rebuild its vectors.

        The org's vectors are removed from every memory collection, re-inserted (flushed) into the current
        embedder's collection, and ``IndexMeta`` records the new embedder."""
        emb = self.embedder
        self.apply_tombstones(org_id=org_id)
        last, total = "", 0
        table = MEMORIES
        stmt = (update(table).where(table.c.id == bindparam("mid"))
                .values(embedding=bindparam("vec"), embedder=emb.name,  # soft-deleted ones stay out of the index
                        index_state=case((table.c.deleted_at.is_(None), "pending"), else_="deleted")))
        while True:
            with self.db.read() as s:
                rows = s.execute(select(Memory.id, Memory.text).where(Memory.org_id == org_id, Memory.id > last)
                                 .order_by(Memory.id).limit(batch_size)).all()
            if not rows:
                break
            vectors = emb.embed([r.text for r in rows])
            with self.db.session() as s:
                s.connection().execute(stmt, [{"mid": r.id, "vec": to_blob(v)} for r, v in zip(rows, vectors, strict=True)])
            last, total = rows[-1].id, total + len(rows)
            if progress:
                progress(len(rows) / 2)
        for name in self.vector_index.list_collections():
            self.vector_index.delete_org(name, org_id)
        indexed, last = 0, ""
        while ids := self.pending_ids(org_id=org_id, after=last, limit=batch_size):
            n = self.index_memories(ids, flush=False)
            indexed, last = indexed + n, ids[-1]
            if progress:
                progress(len(ids) / 2)
        self.vector_index.flush(self.current_collection())
        with self.db.session() as s:
            meta = s.get(IndexMeta, org_id)
            if meta is None:
                s.add(IndexMeta(org_id=org_id, embedder=emb.name, dim=emb.dim, updated_at=utcnow()))
            else:
                meta.embedder, meta.dim, meta.updated_at = emb.name, emb.dim, utcnow()
        return {"org": org_id, "reembedded": total, "indexed": indexed, "embedder": emb.name, "dim": emb.dim}

    def check_org(self, org_id: str, *, repair: bool = False) -> dict[str, Any]:
        """Compare an org's SQL memories with its Milvus vectors; ``repair`` re-indexes what is missing and
        removes what should not be there."""
        emb = self.embedder
        name = self.current_collection()
        with self.db.read() as s:
            meta = s.get(IndexMeta, org_id)
            rows = s.execute(select(Memory.id, Memory.index_state, Memory.embedder).where(
                Memory.org_id == org_id, Memory.deleted_at.is_(None))).all()  # soft-deleted memories have no vector
            stones = int(s.scalar(select(func.count(IndexTombstone.id)).where(IndexTombstone.org_id == org_id)) or 0)
        sql_ids = {r.id for r in rows if r.embedder == emb.name}
        in_milvus = self.vector_index.ids(name, org_id)
        report: dict[str, Any] = {
            "org": org_id, "embedder": emb.name, "indexedWith": meta.embedder if meta else None,
            "memories": len(rows), "pending": sum(r.index_state == "pending" for r in rows), "tombstones": stones,
            "staleEmbedder": sum(r.embedder != emb.name for r in rows), "vectors": len(in_milvus),
            "missing": len(sql_ids - in_milvus), "extra": len(in_milvus - sql_ids)}
        report["ok"] = not (report["pending"] or stones or report["staleEmbedder"] or report["missing"] or report["extra"]
                            or (meta is not None and meta.embedder != emb.name))
        if repair and not report["ok"]:
            if report["staleEmbedder"] or (meta is not None and meta.embedder != emb.name):
                report["repair"] = self.reindex_org(org_id)
            else:
                self.vector_index.delete(name, sorted(in_milvus - sql_ids))
                missing = sorted(sql_ids - in_milvus)
                with self.db.session() as s:
                    for i in range(0, len(missing), BATCH):
                        s.execute(update(Memory).where(Memory.id.in_(missing[i:i + BATCH])).values(index_state="pending"))
                report["repair"] = self.reconcile(org_id=org_id)
        return report
