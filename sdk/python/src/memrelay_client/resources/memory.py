"""Semantic memory: memorize (single and batch), smart recall, direct recall, digest, similar, segment, delete."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, Unpack

from memrelay_client._decode import one
from memrelay_client._protocol import Call
from memrelay_client._resource import ModeT, Resource, operation
from memrelay_client.models._base import RecordKeys, RecordRef, drop_none, identifiers
from memrelay_client.models.memory import (
    BatchMapping,
    BatchRun,
    BatchStatus,
    DeletedMemories,
    DigestResult,
    MemorizeResult,
    RecallResult,
    SegmentResult,
    SimilarResult,
)
from memrelay_client.models.records import RecalledRecord

Dimensions = Literal["properties", "memories", "hybrid"]


def recall_call(entity_type: str, include_superseded: bool, record: RecordKeys) -> Call[RecalledRecord]:
    """``POST /recall``: a record's properties and memories by any of its keys (no AI)."""
    body = {**identifiers(record), "type": entity_type, "include_superseded": include_superseded}
    return Call("POST", "/recall", one(RecalledRecord), json=body)


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.isoformat()


class Memory(Resource[ModeT]):
    """``client.memory``: Personize's memory calls (``memorize``, ``memorize_batch``, ``smart_recall``,
    ``smart_digest``) plus direct recall, similar, segment and deletion."""

    @operation
    def memorize(self, content: str, *, tags: Sequence[str], speaker: str | None = None,
                 timestamp: datetime | None = None, enhanced: bool | None = None,
                 max_properties: int | None = None, extraction_prompt: str | None = None,
                 collection_id: str | None = None, source: str | None = None, source_event_id: str | None = None,
                 **record: Unpack[RecordRef]) -> Call[MemorizeResult]:
        """Store free text about a record as memories and extracted property values (the record is created
        if new). ``tags`` (at least one) label the memories."""
        body = {"content": content, "tags": list(tags), **identifiers(record),
                **drop_none(speaker=speaker, timestamp=_iso(timestamp), enhanced=enhanced,
                            maxProperties=max_properties, extractionPrompt=extraction_prompt,
                            collectionId=collection_id, source=source, sourceEventId=source_event_id)}
        return Call("POST", "/memorize", one(MemorizeResult), json=body)

    @operation
    def memorize_batch(self, rows: Sequence[Mapping[str, Any]], mapping: BatchMapping, *,
                       source: str | None = None, dry_run: bool = False, chunk_size: int | None = None,
                       tags: Sequence[str] | None = None) -> Call[BatchRun]:
        """Import rows (mapped fields become properties; ``extract_memories`` fields also memories) as a
        background run; ``dry_run`` only validates and counts. Poll :meth:`batch_status` with ``run_id``."""
        body = {"rows": [dict(r) for r in rows], "mapping": mapping.body(), "dryRun": dry_run,
                **drop_none(source=source, chunkSize=chunk_size, tags=None if tags is None else list(tags))}
        return Call("POST", "/batch-memorize", one(BatchRun), json=body)

    @operation
    def batch_status(self, run_id: str) -> Call[BatchStatus]:
        """Status, progress, per-row errors and totals of a batch-memorize run."""
        return Call("GET", f"/batch-memorize/{run_id}", one(BatchStatus))

    @operation
    def smart_recall(self, query: str, *, limit: int | None = None, min_score: float | None = None,
                     mode: Literal["fast", "deep"] | None = None, include_property_values: bool | None = None,
                     include_superseded: bool | None = None, generate_answer: bool | None = None,
                     group_by_record: bool | None = None, collection_names: Sequence[str] | None = None,
                     tags: Sequence[str] | None = None, **record: Unpack[RecordRef]) -> Call[RecallResult]:
        """Semantic recall over one record's memories (give an identifier) or org-wide (``type`` filters)."""
        body = {"query": query, **identifiers(record),
                **drop_none(limit=limit, minScore=min_score, mode=mode, includePropertyValues=include_property_values,
                            includeSuperseded=include_superseded, generateAnswer=generate_answer,
                            groupByRecord=group_by_record,
                            collectionNames=None if collection_names is None else list(collection_names),
                            tags=None if tags is None else list(tags))}
        return Call("POST", "/smart-recall", one(RecallResult), json=body)

    @operation
    def recall(self, *, type: str, include_superseded: bool = False,  # noqa: A002 - the API's name
               **record: Unpack[RecordKeys]) -> Call[RecalledRecord]:
        """Direct lookup (no AI): the record's properties (``memories``) and memories (``freeform_memories``);
        ``type`` is required."""
        return recall_call(type, include_superseded, record)

    @operation
    def smart_digest(self, *, token_budget: int | None = None, include_properties: bool | None = None,
                     include_memories: bool | None = None, include_linked: bool | None = None,
                     max_memories: int | None = None, **record: Unpack[RecordRef]) -> Call[DigestResult]:
        """The record compiled into markdown within ``token_budget`` (``compiled_context``)."""
        body = {**identifiers(record),
                **drop_none(tokenBudget=token_budget, includeProperties=include_properties,
                            includeMemories=include_memories, includeLinked=include_linked,
                            maxMemories=max_memories)}
        return Call("POST", "/smart-memory-digest", one(DigestResult), json=body)

    @operation
    def similar(self, *, top_k: int | None = None, dimensions: Dimensions | None = None,
                min_score: float | None = None, **record: Unpack[RecordRef]) -> Call[SimilarResult]:
        """Records most similar to the seed record (``type``: the entity type to compare, default the seed's)."""
        body = {**identifiers(record), **drop_none(topK=top_k, dimensions=dimensions, minScore=min_score)}
        return Call("POST", "/similar", one(SimilarResult), json=body)

    @operation
    def segment(self, *, text: str | None = None, page: int | None = None, page_size: int | None = None,
                dimensions: Dimensions | None = None, min_score: float | None = None,
                **record: Unpack[RecordRef]) -> Call[SegmentResult]:
        """Records in similarity tiers around a seed record or a ``text``."""
        body = {**identifiers(record), **drop_none(text=text, page=page, pageSize=page_size,
                                                   dimensions=dimensions, minScore=min_score)}
        return Call("POST", "/segment", one(SegmentResult), json=body)

    @operation
    def update_memory(self, memory_id: str, text: str, **record: Unpack[RecordRef]) -> Call[dict[str, Any]]:
        """Replace a memory's text (it is re-embedded)."""
        body = {**identifiers(record), "memoryId": memory_id, "text": text}
        return Call("POST", "/memory/update", dict, json=body)

    @operation
    def delete(self, memory_ids: Sequence[str] | None = None, **record: Unpack[RecordRef]) -> Call[DeletedMemories]:
        """Delete memories by id, or every memory of the record the identifiers name."""
        body = {**identifiers(record), **drop_none(memoryIds=None if memory_ids is None else list(memory_ids))}
        return Call("POST", "/memory/delete", one(DeletedMemories), json=body)
