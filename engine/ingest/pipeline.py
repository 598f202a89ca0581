"""From a logged event to memory: fetch → map → write through the record store and memorize.

:class:`EventPipeline` is the one place where an inbound event becomes records, properties and memories. It
is called by the RQ job (``memrelay.worker.jobs.events.process_event``), never by a request handler; CRM
backfills (:mod:`memrelay.engine.ingest.backfill`) share its mapping helpers.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from memrelay.connectors.base import FetchingConnector, SourceConfig
from memrelay.connectors.base import InboundEvent as ConnectorEvent
from memrelay.connectors.mapping import (
    MappedRecord,
    MappingSpec,
    load_default_mapping,
    load_mapping_text,
    map_event,
)
from memrelay.connectors.registry import get_connector
from memrelay.engine.core.errors import NotFound
from memrelay.engine.memory.memories import Memorizer, MemorizeRequest
from memrelay.engine.stores.db.models import Source
from memrelay.engine.stores.identity import Identifiers
from memrelay.engine.stores.properties import Provenance
from memrelay.engine.stores.records import Records

log = logging.getLogger(__name__)
RESERVED = ("primary", "email", "website_url", "record_id")
NO_FETCH = ("deletion", "privacyDeletion", "merge")


def source_config(src: Source) -> SourceConfig:
    """The connector-facing view of a stored source."""
    cfg = dict(src.config or {})
    return SourceConfig(id=src.id, connector=src.connector, secret=src.secret,
                        previous_secrets=list(src.previous_secrets or []), public_url=cfg.pop("public_url", None),
                        token=src.token, allowed_org_ids=list(cfg.pop("allowed_org_ids", []) or []), options=cfg)


@lru_cache(maxsize=256)
def _mapping_for(source_id: str, updated_at: str, connector: str, yaml_text: str | None) -> MappingSpec:
    if yaml_text:
        return load_mapping_text(yaml_text, path=f"source {source_id} mapping")
    return load_default_mapping(connector)


def mapping_for(src: Source) -> MappingSpec:
    return _mapping_for(src.id, str(src.updated_at), src.connector, src.mapping_yaml)


def identifiers_for(mapped: MappedRecord) -> Identifiers:
    """Record identifiers from a mapping's keys (custom keys keep their names)."""
    custom = {k: v for k, v in mapped.keys.items() if k not in RESERVED}
    ids = Identifiers(type=mapped.entity_type, email=mapped.keys.get("email"),
                      website_url=mapped.keys.get("website_url"), customKeys=custom)
    if not ids.keys() and mapped.primary_key:
        ids = ids.model_copy(update={"customKeys": {"primary": mapped.primary_key}})
    return ids


class EventPipeline:
    """Applies verified, logged events to memory: properties via ``records``, memory text via ``memories``."""

    def __init__(self, records: Records, memories: Memorizer):
        self.records, self.memories = records, memories

    def handle(self, org_id: str, src: Source, event: ConnectorEvent) -> dict[str, Any]:
        """Fetch, then apply one event. Raises on failure (the caller records retries)."""
        return self.apply(org_id, src, self.fetch(src, event))

    @staticmethod
    def fetch(src: Source, event: ConnectorEvent) -> ConnectorEvent:
        """The event with the record the provider's API returns for it (fetching connectors; no SQL)."""
        action = event.event_type.rsplit(".", 1)[-1]
        connector = get_connector(src.connector)
        if (isinstance(connector, FetchingConnector) and action not in NO_FETCH and action != "associationChange"
                and event.object_id and src.config.get("fetch", True)):
            fetched = connector.fetch(source_config(src), [event]).get(event.object_id)
            if fetched:
                return event.model_copy(update={"record": {**event.record, **fetched}})
        return event

    def apply(self, org_id: str, src: Source, event: ConnectorEvent) -> dict[str, Any]:
        """Apply one (fetched) event to memory; the job runs this in one unit of work with its completion."""
        action = event.event_type.rsplit(".", 1)[-1]
        if action == "associationChange":
            return {"skipped": "associations are not mapped"}
        mapping = mapping_for(src)
        try:
            mapped = map_event(mapping, event)
        except NotFound:
            return {"skipped": f"mapping has no object {event.source_object_type!r}"}
        ids = identifiers_for(mapped)
        if not ids.keys():
            return {"skipped": "event carries no identifier the mapping can use", "warnings": mapped.warnings}
        prov = Provenance(source=src.connector, source_event_id=event.dedup_key,
                          source_ts=mapped.source_timestamp or event.occurred_at, actor=f"source:{src.id}")
        if action == "deletion":
            return _tolerate_missing(lambda: self.records.soft_delete(org_id, ids, actor=prov.actor))
        if action == "privacyDeletion":
            return _tolerate_missing(lambda: self.records.erase(org_id, ids, actor=prov.actor))
        if action == "merge":
            return self.merge(org_id, event, mapped, prov)
        if action == "restore":
            _tolerate_missing(lambda: self.records.cancel_deletion(org_id, ids))
        return self.write_mapped(org_id, ids, mapped, prov)

    def write_mapped(self, org_id: str, ids: Identifiers, mapped: MappedRecord, prov: Provenance) -> dict[str, Any]:
        """Properties through the structured store; memory templates through memorize."""
        result: dict[str, Any] = self.records.upsert(org_id, ids, mapped.properties, prov)
        texts = list(mapped.memories) + [str(mapped.properties[n]) for n in mapped.extract_memories
                                         if n in mapped.properties]
        if texts:
            mem = self.memories.memorize(org_id, memorize_request(texts, ids, result["recordId"], mapped, prov))
            result["memoriesCreated"] = mem.get("memoriesCreated", 0)
            result["duplicatesSkipped"] = mem.get("duplicatesSkipped", 0)
        return {"recordId": result["recordId"], "updated": result.get("updated", []),
                "stale": result.get("stale", []),
                **{k: result[k] for k in ("memoriesCreated", "duplicatesSkipped") if k in result}}

    def merge(self, org_id: str, event: ConnectorEvent, mapped: MappedRecord, prov: Provenance) -> dict[str, Any]:
        """Provider merge: the merged records' keys, properties and memories move to the survivor."""
        key_name = next((k for k in mapped.keys if k not in RESERVED), None)
        merged_ids = [str(x) for x in event.attributes.get("merged_object_ids", []) if str(x) != event.object_id]
        if key_name is None or not merged_ids:
            return {"skipped": "merge without a custom key or merged ids"}
        survivor = Identifiers(type=mapped.entity_type, customKeys={key_name: str(event.object_id)})
        losers = [Identifiers(type=mapped.entity_type, customKeys={key_name: m}) for m in merged_ids]
        return self.records.merge(org_id, survivor, losers, prov)


def memorize_request(texts: list[str], ids: Identifiers, record_id: str, mapped: MappedRecord,
                     prov: Provenance) -> MemorizeRequest:
    """The memorize call for a mapped record's memory texts (enhanced when the mapping extracts memories).

    Offline, no property is read back out of the texts: they are rendered from the mapped values, which the
    mapping wrote already with the source's own provenance (reading "works as Engineer 5" back would write a
    worse "Engineer" over it)."""
    enhanced = bool(mapped.extract_memories)
    return MemorizeRequest(content="\n".join(texts), identifiers={"type": ids.type, "record_id": record_id},
                           tags=mapped.tags or [prov.source], timestamp=prov.source_ts, source=prov.source,
                           sourceEventId=prov.source_event_id, enhanced=enhanced,
                           maxProperties=None if enhanced else 0)


def _tolerate_missing(fn: Any) -> dict[str, Any]:
    try:
        return fn()
    except NotFound as exc:
        return {"skipped": exc.message}
