"""Keeping the Milvus index in step with SQL, the source of truth.

Memory rows are committed with ``index_state="pending"``; after the commit their vectors are upserted to
Milvus and the rows marked ``"indexed"``. Deletions leave :class:`IndexTombstone` rows in the deleting
transaction; they are removed once Milvus has deleted the vectors. A crash between the SQL commit and the
Milvus write therefore loses nothing: :func:`reconcile` (run at gateway/worker start and by
``memrelay check-index --repair``) indexes what is pending and applies what is tombstoned.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.orm import Session

from memrelay.engine.adapters.vector_index import VectorRow, collection_name, from_blobs, to_blob
from memrelay.engine.core.errors import ServiceUnavailable
from memrelay.engine.core.util import utcnow
from memrelay.engine.stores.db.models import IndexMeta, IndexTombstone, Memory

if TYPE_CHECKING:
    from memrelay.composition import Services
    from memrelay.engine.adapters.embedding import Embedder

log = logging.getLogger("memrelay.index")

BATCH = 2000


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


def current_collection(engine: Services) -> str:
    return collection_name(engine.embedder.name, engine.embedder.dim)


def index_memories(engine: Services, memory_ids: Sequence[str], *, flush: bool = True) -> int:
    """Upsert the vectors of these pending memories to Milvus and mark them indexed.

    ``flush`` seals them at once; bulk callers pass False and flush once at the end (fewer segments)."""
    indexed = 0
    for i in range(0, len(memory_ids), BATCH):
        with engine.db.read() as s:
            rows = s.execute(select(Memory.id, Memory.org_id, Memory.record_id, Memory.entity_type, Memory.embedding,
                                    Memory.embedder, Memory.updated_at)
                             .where(Memory.id.in_(list(memory_ids[i:i + BATCH])),
                                    Memory.index_state == "pending")).all()
        indexed += _index_rows(engine, rows, flush=flush)
    return indexed


def sync_after_commit(engine: Services, *, index: Sequence[str] = (), tombstones_of: str | None = None,
                      flush_now: bool = True) -> bool:
    """Push a committed change to Milvus: index these memories and/or apply an org's tombstones.

    The SQL commit already succeeded and is the truth, so an index failure must not fail the write: the
    rows stay pending (and the tombstones stay) until :func:`reconcile` runs. ``flush_now=False`` (request
    paths) leaves sealing to a background flush a moment later."""
    try:
        if tombstones_of:
            apply_tombstones(engine, org_id=tombstones_of)
        if index:
            index_memories(engine, index, flush=flush_now)
            if not flush_now:
                engine.vector_index.flush_soon(current_collection(engine))
        return True
    except Exception:
        log.warning("index sync after commit failed; left for reconcile", exc_info=True)
        return False


def _index_rows(engine: Services, rows: Sequence[Any], *, flush: bool) -> int:
    emb = engine.embedder
    rows = [r for r in rows if r.embedder == emb.name and r.embedding is not None]
    if not rows:
        return 0
    vectors = from_blobs([r.embedding for r in rows], emb.dim)
    engine.vector_index.upsert(current_collection(engine), emb.dim, [
        VectorRow(r.id, r.org_id, r.record_id, r.entity_type, v) for r, v in zip(rows, vectors, strict=True)],
        flush=flush)
    # Only rows unchanged since they were read are marked: an edit in between stays pending.
    with engine.db.session() as s:
        s.connection().execute(
            update(Memory.__table__).where(Memory.__table__.c.id == bindparam("mid"),
                                           Memory.__table__.c.updated_at == bindparam("seen"),
                                           Memory.__table__.c.index_state == "pending")
            .values(index_state="indexed"),
            [{"mid": r.id, "seen": r.updated_at} for r in rows])
    return len(rows)


def apply_tombstones(engine: Services, *, org_id: str | None = None) -> int:
    """Delete tombstoned vectors from every memory collection, then drop the tombstones."""
    done = 0
    while True:
        with engine.db.read() as s:
            q = select(IndexTombstone.id, IndexTombstone.memory_id).order_by(IndexTombstone.id).limit(BATCH)
            if org_id:
                q = q.where(IndexTombstone.org_id == org_id)
            stones = s.execute(q).all()
        if not stones:
            return done
        ids = [t.memory_id for t in stones]
        for name in engine.vector_index.list_collections():
            engine.vector_index.delete(name, ids)
        with engine.db.session() as s:
            s.execute(delete(IndexTombstone).where(IndexTombstone.id.in_([t.id for t in stones])))
        done += len(stones)


def pending_ids(engine: Services, *, org_id: str | None = None, after: str = "", limit: int = BATCH) -> list[str]:
    """Ids of memories waiting for the index (embedded with the current embedder), in id order."""
    with engine.db.read() as s:
        q = select(Memory.id).where(Memory.index_state == "pending", Memory.embedder == engine.embedder.name,
                                    Memory.id > after)
        if org_id:
            q = q.where(Memory.org_id == org_id)
        return list(s.scalars(q.order_by(Memory.id).limit(limit)))


def reconcile(engine: Services, *, org_id: str | None = None) -> dict[str, int]:
    """Index every pending memory and apply every tombstone (idempotent; safe to run any time)."""
    with engine.db.read() as s:
        q_pending = select(Memory.id).where(Memory.index_state == "pending").limit(1)
        q_stones = select(IndexTombstone.id).limit(1)
        if org_id:
            q_pending = q_pending.where(Memory.org_id == org_id)
            q_stones = q_stones.where(IndexTombstone.org_id == org_id)
        if s.scalar(q_pending) is None and s.scalar(q_stones) is None:
            return {"indexed": 0, "tombstones": 0}  # the common start-up case: touch nothing
    removed = apply_tombstones(engine, org_id=org_id)
    indexed = 0
    last = ""
    while ids := pending_ids(engine, org_id=org_id, after=last):
        indexed += index_memories(engine, ids, flush=False)
        last = ids[-1]
    if indexed:
        engine.vector_index.flush(current_collection(engine))
    return {"indexed": indexed, "tombstones": removed}


def start_background_reconcile(engine: Services) -> threading.Thread:
    """Run :func:`reconcile` in a daemon thread so process start-up does not wait for Milvus."""

    def run() -> None:
        try:
            result = reconcile(engine)
            if any(result.values()):
                log.info("index reconciled", extra=result)
        except Exception:  # a background repair must never take the process down; check-index reports
            log.exception("index reconciliation failed")

    thread = threading.Thread(target=run, name="memrelay-index-reconcile", daemon=True)
    thread.start()
    return thread


def org_ids(engine: Services) -> list[str]:
    """Every org that has memories or an index record."""
    with engine.db.read() as s:
        return sorted(set(s.scalars(select(Memory.org_id).distinct())) | set(s.scalars(select(IndexMeta.org_id))))


def count_memories(engine: Services, org_id: str) -> int:
    with engine.db.read() as s:
        return int(s.scalar(select(func.count(Memory.id)).where(Memory.org_id == org_id)) or 0)


def reindex_org(engine: Services, org_id: str, *, batch_size: int = 1000,
                progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Re-embed every memory of an org from its SQL text with the current embedder and rebuild its vectors.

    The org's vectors are removed from every memory collection, re-inserted (flushed) into the current
    embedder's collection, and ``IndexMeta`` records the new embedder."""
    emb = engine.embedder
    apply_tombstones(engine, org_id=org_id)
    last, total = "", 0
    table = Memory.__table__
    stmt = (update(table).where(table.c.id == bindparam("mid"))
            .values(embedding=bindparam("vec"), embedder=emb.name, index_state="pending"))
    while True:
        with engine.db.read() as s:
            rows = s.execute(select(Memory.id, Memory.text).where(Memory.org_id == org_id, Memory.id > last)
                             .order_by(Memory.id).limit(batch_size)).all()
        if not rows:
            break
        vectors = emb.embed([r.text for r in rows])
        with engine.db.session() as s:
            s.connection().execute(stmt, [{"mid": r.id, "vec": to_blob(v)} for r, v in zip(rows, vectors, strict=True)])
        last, total = rows[-1].id, total + len(rows)
        if progress:
            progress(len(rows) / 2)
    for name in engine.vector_index.list_collections():
        engine.vector_index.delete_org(name, org_id)
    indexed, last = 0, ""
    while ids := pending_ids(engine, org_id=org_id, after=last, limit=batch_size):
        n = index_memories(engine, ids, flush=False)
        indexed, last = indexed + n, ids[-1]
        if progress:
            progress(len(ids) / 2)
    engine.vector_index.flush(current_collection(engine))
    with engine.db.session() as s:
        meta = s.get(IndexMeta, org_id)
        if meta is None:
            s.add(IndexMeta(org_id=org_id, embedder=emb.name, dim=emb.dim, updated_at=utcnow()))
        else:
            meta.embedder, meta.dim, meta.updated_at = emb.name, emb.dim, utcnow()
    return {"org": org_id, "reembedded": total, "indexed": indexed, "embedder": emb.name, "dim": emb.dim}


def check_org(engine: Services, org_id: str, *, repair: bool = False) -> dict[str, Any]:
    """Compare an org's SQL memories with its Milvus vectors; ``repair`` re-indexes what is missing and
    removes what should not be there."""
    emb = engine.embedder
    name = current_collection(engine)
    with engine.db.read() as s:
        meta = s.get(IndexMeta, org_id)
        rows = s.execute(select(Memory.id, Memory.index_state, Memory.embedder).where(Memory.org_id == org_id)).all()
        stones = int(s.scalar(select(func.count(IndexTombstone.id)).where(IndexTombstone.org_id == org_id)) or 0)
    sql_ids = {r.id for r in rows if r.embedder == emb.name}
    in_milvus = engine.vector_index.ids(name, org_id)
    report: dict[str, Any] = {
        "org": org_id, "embedder": emb.name, "indexedWith": meta.embedder if meta else None,
        "memories": len(rows), "pending": sum(r.index_state == "pending" for r in rows), "tombstones": stones,
        "staleEmbedder": sum(r.embedder != emb.name for r in rows), "vectors": len(in_milvus),
        "missing": len(sql_ids - in_milvus), "extra": len(in_milvus - sql_ids)}
    report["ok"] = not (report["pending"] or stones or report["staleEmbedder"] or report["missing"] or report["extra"]
                        or (meta is not None and meta.embedder != emb.name))
    if repair and not report["ok"]:
        if report["staleEmbedder"] or (meta is not None and meta.embedder != emb.name):
            report["repair"] = reindex_org(engine, org_id)
        else:
            engine.vector_index.delete(name, sorted(in_milvus - sql_ids))
            missing = sorted(sql_ids - in_milvus)
            with engine.db.session() as s:
                for i in range(0, len(missing), BATCH):
                    s.execute(update(Memory).where(Memory.id.in_(missing[i:i + BATCH])).values(index_state="pending"))
            report["repair"] = reconcile(engine, org_id=org_id)
    return report
