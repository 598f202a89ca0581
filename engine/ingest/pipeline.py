"""From a logged event to memory: fetch → map → write through the engine.

This is the one place where an inbound event becomes records, properties and memories. It is called by
the RQ job (``memrelay.worker.jobs.events.process_event``) and by CRM backfills, never by a request handler.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from memrelay.composition import Services
from memrelay.connectors.base import InboundEvent as ConnectorEvent
from memrelay.connectors.base import SourceConfig, get_connector
from memrelay.connectors.mapping import (
    MappedRecord,
    MappingSpec,
    load_default_mapping,
    load_mapping_text,
    map_event,
)
from memrelay.engine.core.errors import NotFound
from memrelay.engine.stores.db.models import Source
from memrelay.engine.stores.identity import Identifiers
from memrelay.engine.stores.properties import Provenance

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


def handle_event(eng: Services, org_id: str, src: Source, event: ConnectorEvent) -> dict[str, Any]:
    """Apply one verified, logged event to memory. Raises on failure (the caller records retries)."""
    action = event.event_type.rsplit(".", 1)[-1]
    if action == "associationChange":
        return {"skipped": "associations are not mapped"}
    fetch = getattr(get_connector(src.connector), "fetch", None)
    if fetch is not None and action not in NO_FETCH and event.object_id and src.config.get("fetch", True):
        fetched = fetch(source_config(src), [event]).get(event.object_id)
        if fetched:
            event = event.model_copy(update={"record": {**event.record, **fetched}})
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
        return _tolerate_missing(lambda: eng.records.soft_delete(org_id, ids, actor=prov.actor))
    if action == "privacyDeletion":
        return _tolerate_missing(lambda: eng.records.erase(org_id, ids, actor=prov.actor))
    if action == "merge":
        return merge(eng, org_id, src, event, mapped, prov)
    if action == "restore":
        _tolerate_missing(lambda: eng.records.cancel_deletion(org_id, ids))
    return write_mapped(eng, org_id, ids, mapped, prov)


def write_mapped(eng: Services, org_id: str, ids: Identifiers, mapped: MappedRecord, prov: Provenance) -> dict[str, Any]:
    """Properties through the structured store; memory templates through memorize."""
    result: dict[str, Any] = eng.records.upsert(org_id, ids, mapped.properties, prov)
    texts = list(mapped.memories) + [str(mapped.properties[n]) for n in mapped.extract_memories
                                     if n in mapped.properties]
    if texts:
        from memrelay.engine.memory.memories import MemorizeRequest

        req = MemorizeRequest(content="\n".join(texts), identifiers={"type": ids.type, "record_id": result["recordId"]},
                              tags=mapped.tags or [prov.source], timestamp=prov.source_ts, source=prov.source,
                              sourceEventId=prov.source_event_id, enhanced=bool(mapped.extract_memories))
        mem = eng.memories.memorize(org_id, req)
        result["memoriesCreated"] = mem.get("memoriesCreated", 0)
        result["duplicatesSkipped"] = mem.get("duplicatesSkipped", 0)
    return {"recordId": result["recordId"], "updated": result.get("updated", []), "stale": result.get("stale", []),
            **{k: result[k] for k in ("memoriesCreated", "duplicatesSkipped") if k in result}}


def merge(eng: Services, org_id: str, src: Source, event: ConnectorEvent, mapped: MappedRecord,
          prov: Provenance) -> dict[str, Any]:
    """Provider merge: the merged records' keys, properties and memories move to the survivor."""
    key_name = next((k for k in mapped.keys if k not in RESERVED), None)
    merged_ids = [str(x) for x in event.attributes.get("merged_object_ids", []) if str(x) != event.object_id]
    if key_name is None or not merged_ids:
        return {"skipped": "merge without a custom key or merged ids"}
    survivor = Identifiers(type=mapped.entity_type, customKeys={key_name: str(event.object_id)})
    losers = [Identifiers(type=mapped.entity_type, customKeys={key_name: m}) for m in merged_ids]
    return eng.records.merge(org_id, survivor, losers, prov)


def _tolerate_missing(fn: Any) -> dict[str, Any]:
    try:
        return fn()
    except NotFound as exc:
        return {"skipped": exc.message}
