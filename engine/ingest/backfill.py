"""CRM backfill, engine side: each page → the source's mapping → ``Records.upsert_many`` (one transaction)
→ optional memories. :class:`Backfill` is driven by ``memrelay sync`` and the
``memrelay.worker.jobs.sync.sync_source`` job.

Every property carries ``Provenance(source=<connector>, source_ts=<record's last-modified time>)``, so a
backfill never overwrites newer webhook data. A record the mapping or the store rejects is counted and
reported; it never aborts its page.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from memrelay.connectors.mapping import EVENT_FIELD, MappedRecord, MappingSpec, apply_mapping
from memrelay.connectors.pager import Pager, SyncPage
from memrelay.connectors.sync import PageResult, SyncSummary, build_pager, run_sync
from memrelay.engine.core.errors import MemrelayError
from memrelay.engine.ingest.pipeline import identifiers_for, mapping_for, memorize_request, source_config
from memrelay.engine.memory.batch import memorize_many
from memrelay.engine.memory.memories import Memories, Memorizer, MemorizeRequest
from memrelay.engine.stores.db.models import Source
from memrelay.engine.stores.identity import Identifiers
from memrelay.engine.stores.properties import Provenance
from memrelay.engine.stores.records import Records
from memrelay.engine.stores.sources import Sources

log = logging.getLogger(__name__)

PUSH_EVERY = 10_000
"""Memories of the batch path pushed to the vector index together once this many are waiting (and at the end of a
sync): a CRM page holds ~100 records, and one upsert per page costs Milvus Lite most of its time in per-call
overhead."""


class Backfill:
    """Backfills active CRM sources (hubspot, salesforce) through their mappings."""

    def __init__(self, sources: Sources, records: Records, memories: Memorizer, *, batch: bool = True):
        self.sources, self.records, self.memories = sources, records, memories
        self.batch = batch  # memory templates of a page memorized as one batch (False: one memorize per record)

    def sync_source(self, source_id: str, *, since: datetime | None = None, full: bool = False,
                    memories: bool = True, object_types: list[str] | None = None,
                    progress: Callable[[SyncPage], None] | None = None,
                    sleep: Callable[[float], None] = time.sleep) -> SyncSummary:
        """Backfill one active source from its CRM; resumable (see memrelay.connectors.sync)."""
        owner = self.sources.lookup(source_id)  # active sources only (cached: used for the org id alone)
        src = self.sources.get(owner.org_id, source_id)  # fresh row: config and the stored cursor
        mapping = mapping_for(src)
        pager = build_pager(src.connector, source_config(src).options, mapping, object_types, sleep=sleep)
        writer = PageWriter(self.records, self.memories if memories else None, src, mapping, pager,
                            batch=self.batch)
        try:
            summary = run_sync(pager, source_id=src.id, cursor=dict(src.sync_cursor or {}),
                               save_cursor=lambda cursor: self.sources.save_cursor(src.id, cursor),
                               write_page=writer.write, since=since, full=full, progress=progress)
        finally:
            writer.push_index()
        log.info("sync of %s finished: %s", src.id, summary.to_dict())
        return summary


class PageWriter:
    """Maps and writes pages for one source (``memories`` None: properties only)."""

    def __init__(self, records: Records, memories: Memorizer | None, src: Source, mapping: MappingSpec,
                 pager: Pager, *, batch: bool = True):
        self.records, self.memories, self.src, self.mapping, self.pager = records, memories, src, mapping, pager
        self.batch = batch  # False: one memorize per record (the pre-batch path, kept for comparison)
        self.pending: list[str] = []  # memories written by the batch path, not pushed to the vector index yet

    def push_index(self) -> None:
        """Push the memories of the pages written since the last push to the vector index at once (one upsert
        per 2,000, one flush) instead of once per page. The rows are committed as pending, so a crash before this loses
        nothing: the workers' reconcile indexes what is pending. Org-wide recall below the ANN switch-over reads
        the SQL snapshot and sees them at once."""
        memories, ids = self.memories, self.pending
        self.pending = []
        if ids and isinstance(memories, Memories):
            memories.index.sync_after_commit(index=ids, flush_now=False)

    def _map(self, page: SyncPage, record: dict[str, Any]) -> MappedRecord:
        ts = self.pager.record_time(record)
        meta = {"type": f"{page.object_type}.sync", "connector": self.src.connector,
                "object_type": page.object_type, "object_id": record.get("id") or record.get("Id"),
                "occurred_at": ts.isoformat() if ts else None}
        return apply_mapping(self.mapping, page.object_type, {**record, EVENT_FIELD: meta}, occurred_at=ts)

    def write(self, page: SyncPage) -> PageResult:
        out = PageResult()
        items: list[tuple[Identifiers, dict[str, Any], Provenance]] = []
        mapped_items: list[tuple[str, MappedRecord]] = []
        to_memorize: list[tuple[str, MemorizeRequest]] = []
        for record in page.records:
            rid = str(record.get("id") or record.get("Id") or "?")
            try:
                mapped = self._map(page, record)
            except MemrelayError as exc:
                out.errors.append(f"{rid}: {exc.message}")
                continue
            ids = identifiers_for(mapped)
            if not ids.keys():
                out.skipped += 1
                continue
            prov = Provenance(source=self.src.connector, source_event_id=f"sync:{page.object_type}:{rid}",
                              source_ts=mapped.source_timestamp, actor=f"sync:{self.src.id}")
            items.append((ids, mapped.properties, prov))
            mapped_items.append((rid, mapped))
        results = self.records.upsert_many(self.src.org_id, items) if items else []
        for (rid, mapped), (ids, _, prov), result in zip(mapped_items, items, results, strict=True):
            if isinstance(result, Exception):
                out.errors.append(f"{rid}: {getattr(result, 'message', str(result))}")
                continue
            if result.get("created"):
                out.created += 1
            elif result.get("updated"):
                out.updated += 1
            else:
                out.unchanged += 1
            out.stale += bool(result.get("stale"))
            texts = list(mapped.memories) + [str(mapped.properties[n]) for n in mapped.extract_memories
                                             if n in mapped.properties]
            if texts:
                to_memorize.append((rid, memorize_request(texts, ids, result["recordId"], mapped, prov)))
        if self.memories is not None and to_memorize:
            self._memorize(to_memorize, out)
            if len(self.pending) >= PUSH_EVERY:
                self.push_index()
        return out

    def _memorize(self, reqs: list[tuple[str, MemorizeRequest]], out: PageResult) -> None:
        """The page's memory templates: as one batch (:func:`memorize_many`: one embedder call, one write
        transaction) with the engine's memorizer, else one memorize per record."""
        memories = self.memories
        if memories is None:
            return
        if isinstance(memories, Memories) and self.batch:
            many = memorize_many(memories, self.src.org_id, [req for _, req in reqs], push_index=False)
            out.memories += many.memories_created
            self.pending += many.pending
            for (rid, _), res in zip(reqs, many.results, strict=True):
                if isinstance(res, MemrelayError):
                    out.errors.append(f"{rid}: memory not written: {res.message}")
            return
        for rid, req in reqs:
            try:
                out.memories += int(memories.memorize(self.src.org_id, req).get("memoriesCreated", 0))
            except MemrelayError as exc:
                out.errors.append(f"{rid}: memory not written: {exc.message}")
