"""Semantic memory: memorize, batch memorize, smart recall, digest, similar and segment."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AliasChoices, Field, field_validator

from memrelay_client.models._base import ApiModel, RequestModel


class MemorizeResult(ApiModel):
    """What memorize stored: memories (new, duplicate, superseding) and extracted property values."""

    record_id: str
    type: str | None = None
    memories_created: int = 0
    duplicates_skipped: int = 0
    memory_ids: list[str] = Field(default_factory=list)
    duplicate_of: list[Any] = Field(default_factory=list)
    superseded: list[Any] = Field(default_factory=list)
    properties_extracted: list[Any] = Field(default_factory=list)
    extraction: str | None = None
    index_state: str | None = None


class PropertyMapping(RequestModel):
    """Where a row field goes: a property (``extract_memories``: also memorize its text)."""

    source_field: str
    collection_id: str | None = None
    collection_name: str | None = None
    extract_memories: bool = False


class BatchMapping(RequestModel):
    """How rows map to records: which row fields hold the identifiers, and each property's source field."""

    entity_type: str = "contact"
    email: str | None = None
    website: str | None = None
    record_id: str | None = None
    custom_key_name: str | None = None
    custom_key: str | None = None
    timestamp: str | None = None
    run_name: str | None = None
    properties: dict[str, PropertyMapping] = Field(default_factory=dict)


class BatchRun(ApiModel):
    """Answer of batch memorize: a queued run (``run_id``) or, for ``dry_run``, what it would write."""

    run_id: str | None = None
    status: str | None = None
    total_rows: int = 0
    chunks: int | None = None
    dry_run: bool = False
    valid_rows: int | None = None
    error_count: int | None = None
    errors: list[Any] = Field(default_factory=list)
    would_write: dict[str, int] | None = None


class BatchStatus(ApiModel):
    """Progress, per-row errors and totals of a batch run."""

    run_id: str
    status: str
    progress: dict[str, Any] = Field(default_factory=dict)
    error_count: int = 0
    errors: list[Any] = Field(default_factory=list)
    totals: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.status in ("completed", "failed", "completed_with_errors", "partial")


class RecalledMemory(ApiModel):
    """One smart-recall hit."""

    memory_id: str | None = None
    record_id: str | None = None
    type: str | None = None
    text: str = ""
    score: float = 0.0
    similarity: float | None = None
    timestamp: datetime | None = None
    tags: list[str] = Field(default_factory=list)
    speaker: str | None = None
    topic: str | None = None


class RecallResult(ApiModel):
    """Smart recall: ranked memories (``answer`` when deep mode generated one)."""

    results: list[RecalledMemory] = Field(default_factory=list)
    count: int = 0
    query: str | None = None
    scope: str | None = None
    mode: Literal["fast", "deep"] | str | None = None
    answer: Any = None
    property_values: Any = None
    took_ms: float | None = None


class DigestResult(ApiModel):
    """A record compiled into token-budgeted markdown, ready for an LLM prompt."""

    record_id: str | None = None
    type: str | None = None
    compiled_context: str = Field("", validation_alias=AliasChoices("compiledContext", "markdown"))
    token_estimate: int | None = None
    token_budget: int | None = None
    truncated: bool = False
    counts: dict[str, int] = Field(default_factory=dict)
    properties: Any = None
    memories: Any = None


class SimilarRecord(ApiModel):
    """A record similar to the seed, with its score and tier."""

    record_id: str
    type: str | None = None
    keys: dict[str, Any] = Field(default_factory=dict)
    score: float = 0.0
    tier: str | None = None
    scores: dict[str, float] = Field(default_factory=dict)


class SimilarResult(ApiModel):
    """Records most similar to a seed record (``tiers``: per tier name, its records or their count)."""

    seed: dict[str, Any] = Field(default_factory=dict)
    dimensions: str | None = None
    results: list[SimilarRecord] = Field(default_factory=list)
    tiers: dict[str, Any] = Field(default_factory=dict)


class SegmentTier(ApiModel):
    """One similarity tier of a segment: its floor, count and this page's records."""

    tier: str | None = None
    min_score: float | None = None
    count: int = 0
    record_ids: list[str] = Field(default_factory=list)
    items: list[SimilarRecord] = Field(default_factory=list)
    has_more: bool = False


class SegmentResult(ApiModel):
    """Records grouped into similarity tiers (by tier name) around a seed record or text."""

    seed: dict[str, Any] = Field(default_factory=dict)
    dimensions: str | None = None
    total: int = 0
    page: int = 1
    page_size: int = 50
    tiers: dict[str, SegmentTier] = Field(default_factory=dict)

    @field_validator("tiers", mode="before")
    @classmethod
    def _tiers_by_name(cls, value: Any) -> Any:
        """Gateways before the Personize answer shape sent the tiers as a list."""
        if isinstance(value, list):
            return {t.get("tier", str(i)): t for i, t in enumerate(value)}
        return value


class DeletedMemories(ApiModel):
    """Memories deleted (by id or all of a record); ``purge_after`` when they are recoverable until then."""

    deleted: int = 0
    memory_ids: list[str] = Field(default_factory=list)
    recoverable: bool | None = None
    purge_after: datetime | None = None
