"""CRM backfill, engine side: each page → the source's mapping → ``Records.upsert_many`` (one transaction)
→ optional memories. Driven by ``memrelay sync`` and the ``memrelay.worker.jobs.sync.sync_source`` job.

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

from memrelay.composition import Services
from memrelay.connectors.mapping import EVENT_FIELD, MappedRecord, MappingSpec, apply_mapping
from memrelay.connectors.sync import Pager, PageResult, SyncPage, SyncSummary, build_pager, run_sync
from memrelay.engine.core.errors import MemrelayError
from memrelay.engine.ingest.pipeline import identifiers_for, mapping_for, source_config
from memrelay.engine.stores.db.models import Source
from memrelay.engine.stores.identity import Identifiers
from memrelay.engine.stores.properties import Provenance

log = logging.getLogger(__name__)


def sync_source(eng: Services, source_id: str, *, since: datetime | None = None, full: bool = False,
                memories: bool = True, object_types: list[str] | None = None,
                progress: Callable[[SyncPage], None] | None = None,
                sleep: Callable[[float], None] = time.sleep) -> SyncSummary:
    """Backfill one active source (hubspot or salesforce) from its CRM; resumable (see memrelay.connectors.sync)."""
    owner = eng.sources.lookup(source_id)  # active sources only (cached: used for the org id alone)
    src = eng.sources.get(owner.org_id, source_id)  # fresh row: config and the stored cursor
    mapping = mapping_for(src)
    pager = build_pager(src.connector, source_config(src).options, mapping, object_types, sleep=sleep)
    writer = PageWriter(eng, src, mapping, pager, memories=memories)
    summary = run_sync(pager, source_id=src.id, cursor=dict(src.sync_cursor or {}),
                       save_cursor=lambda cursor: eng.sources.save_cursor(src.id, cursor),
                       write_page=writer.write, since=since, full=full, progress=progress)
    log.info("sync of %s finished: %s", src.id, summary.to_dict())
    return summary


class PageWriter:
    """Maps and writes pages for one source."""

    def __init__(self, eng: Services, src: Source, mapping: MappingSpec, pager: Pager, *, memories: bool):
        self.eng, self.src, self.mapping, self.pager, self.memories = eng, src, mapping, pager, memories

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
        results = self.eng.records.upsert_many(self.src.org_id, items) if items else []
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
            if self.memories:
                self._memorize(rid, ids, result["recordId"], mapped, prov, out)
        return out

    def _memorize(self, rid: str, ids: Identifiers, record_id: str, mapped: MappedRecord, prov: Provenance,
                  out: PageResult) -> None:
        texts = list(mapped.memories) + [str(mapped.properties[n]) for n in mapped.extract_memories]
        if not texts:
            return
        from memrelay.engine.memory.memories import MemorizeRequest

        req = MemorizeRequest(content="\n".join(texts), identifiers={"type": ids.type, "record_id": record_id},
                              tags=mapped.tags or [prov.source], timestamp=prov.source_ts, source=prov.source,
                              sourceEventId=prov.source_event_id, enhanced=bool(mapped.extract_memories))
        try:
            out.memories += int(self.eng.memories.memorize(self.src.org_id, req).get("memoriesCreated", 0))
        except MemrelayError as exc:
            out.errors.append(f"{rid}: memory not written: {exc.message}")
