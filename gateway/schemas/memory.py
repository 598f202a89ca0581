"""Answers of the structured memory API (gateway/blueprints/memory.py): collections, entity types, records,
properties, search and deletion."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, RootModel

from memrelay.gateway.schemas.common import OpenObject, VersionEntry


# --- collections and entity types ---------------------------------------------------------------------
class Collection(BaseModel):
    collectionId: str
    collectionName: str
    entityType: str
    description: str | None = None
    properties: list[dict[str, Any]] = Field(description="Property definitions (propertyName, type, ...).")
    tags: list[str]
    version: int
    archived: bool
    createdAt: str | None = None
    updatedAt: str | None = None


class CollectionAction(BaseModel):
    id: str
    type: str = Field(description="Always 'collection'.")
    payload: Collection


class CollectionList(BaseModel):
    collections: list[Collection]
    actions: list[CollectionAction] = Field(description="The same collections as Personize lists them.")
    count: int
    nextToken: str | None = None


class CollectionHistory(BaseModel):
    collectionId: str
    versions: list[VersionEntry]


class EntityType(BaseModel):
    """An entity type as Personize's ``EntityTypeResponse`` (``name`` is the display label, ``slug`` the id
    that ``type`` in requests names)."""

    id: str
    name: str
    slug: str
    label: str
    pluralLabel: str
    plural: str
    description: str | None = None
    icon: str | None = None
    color: str | None = None
    primaryKeyField: str | None = None
    identifierColumn: str | None = None
    secondaryKeys: list[str]
    system: bool
    isSystem: bool
    status: str = Field(description="'Active' or 'Archived'.")
    archived: bool
    createdAt: str | None = None
    updatedAt: str | None = None


class EntityTypeList(RootModel[list[EntityType]]):
    """``data`` is the array of entity types."""


# --- records ------------------------------------------------------------------------------------------
class PropertyCell(BaseModel):
    """A property's current value with its provenance."""

    value: Any = None
    version: int | None = None
    source: str | None = None
    sourceEventId: str | None = None
    sourceTimestamp: str | None = None
    actor: str | None = None
    confidence: float | None = None
    updatedAt: str | None = None


class RecordKeys(OpenObject):
    """A record's keys: ``email``, ``website_url``, ``customKeys`` ({name: value}) and other identifiers."""


class RecordSummary(BaseModel):
    recordId: str
    type: str
    primaryKey: str
    version: int
    createdAt: str | None = None
    updatedAt: str | None = None
    deletedAt: str | None = Field(None, description="Present while the record is soft-deleted.")
    purgeAfter: str | None = None


class RenderedRecord(RecordSummary):
    keys: RecordKeys
    properties: dict[str, PropertyCell]


class WriteResult(RecordSummary):
    """The record after a structured write: which properties changed, were stale or unchanged."""

    updated: list[str]
    stale: list[str] = Field(description="Properties not written: the stored value has a newer source timestamp.")
    unchanged: list[str]


class UpsertResult(WriteResult):
    created: bool


class PropertyChange(BaseModel):
    propertyName: str
    previousValue: Any = None
    newValue: Any = None
    status: str = Field(description="'updated' or 'failed' (stale).")
    changed: bool
    error: str | None = None


class BulkUpdateResult(WriteResult):
    results: list[PropertyChange]


class UpdateStores(BaseModel):
    snapshot: str
    freeform: str
    lancedb: str


class StoredMemory(BaseModel):
    memoryId: str
    recordId: str
    type: str
    text: str
    speaker: str | None = None
    tags: list[str]
    source: str | None = None
    timestamp: str | None = None
    topic: str | None = None
    seenCount: int | None = None
    provenance: list[dict[str, Any]]
    supersededBy: str | None = None
    supersededAt: str | None = None
    createdAt: str | None = None
    updatedAt: str | None = None
    metadata: dict[str, Any] | None = None
    expiresAt: str | None = None
    deletedAt: str | None = None
    purgeAfter: str | None = None


class UpdateResult(BaseModel):
    """One property written (record summary + Personize's ``previousValue``/``newValue``), or a memory's new
    text (the memory, with ``newValue``)."""

    recordId: str
    type: str
    newValue: Any = None
    stores: UpdateStores
    propertyName: str | None = None
    previousValue: Any = None
    version: int | None = None
    primaryKey: str | None = None
    updated: list[str] | None = None
    stale: list[str] | None = None
    unchanged: list[str] | None = None
    memoryId: str | None = Field(None, description="Present when a memory's text was updated.")
    text: str | None = None


class HistoryEntry(BaseModel):
    entryId: str
    propertyName: str
    propertyValue: Any = None
    previousValue: Any = None
    collectionId: str | None = None
    collectionName: str | None = None
    updatedBy: str | None = None
    createdAt: str | None = None
    source: str | None = None
    applied: bool


class HistoryItem(BaseModel):
    propertyName: str
    value: Any = None
    previous: Any = None
    applied: bool
    reason: str | None = None
    source: str | None = None
    sourceEventId: str | None = None
    sourceTimestamp: str | None = None
    actor: str | None = None
    confidence: float | None = None
    evidence: Any = None
    recordVersion: int | None = None
    createdAt: str | None = None


class PropertyHistory(BaseModel):
    recordId: str
    entries: list[HistoryEntry]
    nextToken: str | None = None
    items: list[HistoryItem]
    page: int
    pageSize: int
    total: int
    hasMore: bool


class StructuredMemory(BaseModel):
    propertyName: str
    propertyValue: Any = None
    value: Any = None
    collectionId: str | None = None
    collectionName: str | None = None
    source: str | None = None
    confidence: float | None = None
    version: int | None = None
    updatedAt: str | None = None


class FreeformMemory(StoredMemory):
    id: str


class RecallResult(RenderedRecord):
    """Personize's ``recall``: ``memories`` (structured properties), ``freeformMemories``, their counts and
    ``systemIntro``, over memrelay's rendered record."""

    record_id: str
    memories: list[StructuredMemory]
    memoryCount: int
    freeformMemories: list[FreeformMemory]
    freeformMemoryCount: int
    systemIntro: str


class DocumentedCell(BaseModel):
    value: Any = None
    collectionId: str | None = None
    collectionName: str | None = None


class SearchHit(BaseModel):
    """A matching record: rendered (keys, properties) unless ``returnRecords: false`` (then only its id and
    type)."""

    recordId: str
    type: str
    primaryKey: str | None = None
    version: int | None = None
    createdAt: str | None = None
    updatedAt: str | None = None
    keys: RecordKeys | None = None
    properties: dict[str, PropertyCell] | None = None
    email: str | None = None
    website_url: str | None = None


class SearchResult(BaseModel):
    recordIds: list[str]
    totalMatched: int
    page: int
    pageSize: int
    totalPages: int
    totalIsExact: bool = Field(description="False when the count stopped at the cap (ask includeTotal).")
    records: dict[str, dict[str, DocumentedCell]] | None = Field(
        None, description="{recordId: {property: {value, collectionId, collectionName}}} (with returnRecords).")
    crmKeys: dict[str, dict[str, Any]] | None = None
    memories: dict[str, list[StoredMemory]] | None = Field(None, description="Per record id (includeMemories).")
    results: list[SearchHit]
    total: int
    hasMore: bool


class FilteredRecord(RenderedRecord):
    matchedProperties: dict[str, Any]
    lastUpdatedAt: int | None = Field(None, description="Epoch milliseconds.")
    email: str | None = None
    website_url: str | None = None


class FilterResult(BaseModel):
    records: list[FilteredRecord]
    totalMatched: int
    total: int
    nextToken: str | None = None


# --- deletion -----------------------------------------------------------------------------------------
class DeletedMemories(BaseModel):
    deleted: int
    memoryIds: list[str]
    recoverable: bool
    purgeAfter: str | None = None


class CancelledDeletion(BaseModel):
    """Restored memories; when a deleted record was restored, its summary too."""

    restored: int
    memoryIds: list[str]
    recordId: str | None = None
    type: str | None = None
    primaryKey: str | None = None
    version: int | None = None
    createdAt: str | None = None
    updatedAt: str | None = None


class Erasure(BaseModel):
    erased: bool
    subject: str = Field(description="A hash of the erased record ids (no personal data).")
    records: int
    properties: int
    history: int
    memories: int
    keys: int


# --- query strings ------------------------------------------------------------------------------------
class CollectionListQuery(BaseModel):
    type: str | None = Field(None, description="Only the collections of this entity type.")


class CollectionHistoryQuery(BaseModel):
    mode: str = Field("full", description="'full' (snapshots) or 'diff' (unified diffs); anything else is 400.")


class EntityListQuery(BaseModel):
    includeArchived: str = Field("false", description="'true' to list archived types too.")
