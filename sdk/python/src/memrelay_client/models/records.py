"""Records and properties: upsert/update answers, records, property history, search pages."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AliasChoices, Field, model_validator

from memrelay_client.models._base import ApiModel, RequestModel


class PropertyValue(ApiModel):
    """A property's current value with its provenance."""

    value: Any = None
    version: int | None = None
    source: str | None = None
    source_event_id: str | None = None
    source_timestamp: datetime | None = None
    actor: str | None = None
    confidence: float | None = None
    updated_at: datetime | None = None


class StoredMemory(ApiModel):
    """A memory as stored on a record (direct recall)."""

    memory_id: str | None = Field(None, validation_alias=AliasChoices("memoryId", "id", "memory_id"))
    text: str = ""
    timestamp: datetime | None = None
    tags: list[str] = Field(default_factory=list)
    superseded: bool | None = None


class Record(ApiModel):
    """A record: identity, keys and typed properties."""

    record_id: str
    type: str | None = None
    primary_key: str | None = None
    version: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    keys: dict[str, Any] = Field(default_factory=dict)
    properties: dict[str, PropertyValue] = Field(default_factory=dict)
    deleted_at: datetime | None = None
    purge_after: datetime | None = None

    def value(self, name: str, default: Any = None) -> Any:
        """The current value of property ``name`` (``default`` when it has none)."""
        prop = self.properties.get(name)
        return default if prop is None else prop.value


class StructuredProperty(ApiModel):
    """One structured property in a direct recall's ``memories`` (Personize's shape)."""

    property_name: str
    property_value: Any = None
    collection_id: str | None = None
    collection_name: str | None = None
    source: str | None = None
    confidence: float | None = None
    updated_at: datetime | None = None


class RecalledRecord(Record):
    """Direct recall (Personize's ``recall``): the record plus ``memories`` (its structured properties),
    ``freeform_memories`` (its memories), their counts and ``system_intro`` (a context string)."""

    memories: list[StructuredProperty] = Field(default_factory=list)
    memory_count: int = 0
    freeform_memories: list[StoredMemory] = Field(default_factory=list)
    freeform_memory_count: int = 0
    system_intro: str = ""


class WriteResult(ApiModel):
    """Answer of upsert / update / bulk update: which properties changed, were stale or unchanged."""

    record_id: str
    type: str | None = None
    primary_key: str | None = None
    version: int | None = None
    created: bool | None = None
    updated: list[str] = Field(default_factory=list)
    stale: list[str] = Field(default_factory=list)
    unchanged: list[str] = Field(default_factory=list)
    previous_value: Any = None
    new_value: Any = None


class HistoryEntry(ApiModel):
    """One write of a property, applied or not (a stale write is kept with its reason)."""

    property_name: str
    value: Any = Field(None, validation_alias=AliasChoices("propertyValue", "value"))
    previous_value: Any = Field(None, validation_alias=AliasChoices("previousValue", "previous"))
    applied: bool = True
    reason: str | None = None
    source: str | None = None
    source_event_id: str | None = None
    source_timestamp: datetime | None = None
    actor: str | None = Field(None, validation_alias=AliasChoices("updatedBy", "actor"))
    confidence: float | None = None
    record_version: int | None = None
    created_at: datetime | None = None


class PropertyHistory(ApiModel):
    """A page of property history, newest first (Personize's ``entries``)."""

    record_id: str | None = None
    entries: list[HistoryEntry] = Field(default_factory=list, validation_alias=AliasChoices("entries", "items"))
    page: int = 1
    page_size: int = 50
    total: int | None = None
    has_more: bool | None = None
    next_token: str | None = None


class SearchCondition(RequestModel):
    """``property`` (a property or a key such as ``email``) compared with ``operator`` to ``value``."""

    property: str
    operator: Literal["EQ", "NEQ", "GT", "GTE", "LT", "LTE", "CONTAINS", "IN", "IS_SET", "IS_NOT_SET"]
    value: Any = None


class SearchGroup(RequestModel):
    """Conditions joined by ``logic``."""

    conditions: list[SearchCondition]
    logic: Literal["AND", "OR"] = "AND"


class SearchPage(ApiModel):
    """One page of ``/search``. ``results``: the page's records in order; ``records``: Personize's map of
    record id to property values; ``total_matched`` / ``total_pages`` count every page."""

    results: list[Record] = Field(default_factory=list)
    records: dict[str, dict[str, Any]] = Field(default_factory=dict)
    record_ids: list[str] = Field(default_factory=list)
    total_matched: int = Field(0, validation_alias=AliasChoices("totalMatched", "total"))
    total_pages: int | None = None
    page: int = 1
    page_size: int = 50
    has_more: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _records_list(cls, data: Any) -> Any:
        """Gateways before the Personize answer shape sent ``records`` as the list of records."""
        if isinstance(data, dict) and isinstance(data.get("records"), list):
            data = {**data, "results": data["records"], "records": {}}
        return data

    def more(self) -> bool:
        """Whether a following page exists (``hasMore``, else computed from the totals)."""
        if self.has_more is not None:
            return self.has_more
        if self.total_pages is not None:
            return self.page < self.total_pages
        return self.page * self.page_size < self.total_matched


class FilterPage(ApiModel):
    """One page of ``/memory/filter-by-property`` (``next_token`` is ``None`` on the last page)."""

    records: list[Record] = Field(default_factory=list)
    total_matched: int = Field(0, validation_alias=AliasChoices("totalMatched", "total"))
    next_token: str | None = None


class DeletedRecord(ApiModel):
    """A soft-deleted (or restored) record; ``purge_after`` is when deletion becomes permanent."""

    record_id: str
    type: str | None = None
    deleted_at: datetime | None = None
    purge_after: datetime | None = None
    restored: int | None = None
    memory_ids: list[str] = Field(default_factory=list)


class Erasure(ApiModel):
    """GDPR erasure summary: counts of what was removed (no personal data)."""

    erased: bool
    subject: str | None = None
    records: int = 0
    properties: int = 0
    history: int = 0
    memories: int = 0
    keys: int = 0
