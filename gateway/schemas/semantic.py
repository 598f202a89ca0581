"""Answers of the semantic memory API (gateway/blueprints/semantic.py): memorize, batch memorize, smart recall,
digest, similar, segment and query-properties."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from memrelay.gateway.schemas.common import OpenObject
from memrelay.gateway.schemas.memory import RecordKeys


class ExtractedProperty(BaseModel):
    name: str
    value: Any = None
    confidence: float
    applied: bool


class MessageResult(BaseModel):
    index: int
    speaker: str | None = None
    memoryIds: list[str]


class MemorizeResult(BaseModel):
    recordId: str
    type: str
    memoriesCreated: int
    duplicatesSkipped: int
    memoryIds: list[str]
    duplicateOf: list[str] = Field(description="Existing memories this text repeated (their seen count grew).")
    superseded: list[str] = Field(description="Older memories the new ones contradict (kept in history).")
    propertiesExtracted: list[ExtractedProperty]
    extraction: str | None = None
    indexState: str = Field(description="'indexed' or 'pending'.")
    timings: dict[str, float] | None = None
    messages: list[MessageResult] | None = Field(None, description="Per chat message (``messages`` input).")


class UsageSummary(BaseModel):
    model: str | None = None
    calls: int
    promptTokens: int
    completionTokens: int
    totalTokens: int
    costUsd: float


# --- batch memorize -----------------------------------------------------------------------------------
class ItemError(BaseModel):
    code: str
    message: str
    details: dict[str, Any] | None = None


class MemorizedItem(BaseModel):
    index: int
    success: bool
    recordId: str | None = None
    record_id: str | None = None
    type: str | None = None
    memoriesCreated: int | None = None
    duplicatesSkipped: int | None = None
    propertiesExtracted: int | None = None
    error: ItemError | None = None


class RowError(BaseModel):
    row: int
    error: Any = None


class WouldWrite(BaseModel):
    recordsCreated: int
    recordsUpdated: int
    propertyValues: int
    memories: int


class BatchMemorizeResult(BaseModel):
    """One of: ``items`` memorized now (``items``/``memorized``/``failed``/``results``), a dry run
    (``dryRun``, ``validRows``, ``wouldWrite`` ...), or a queued run (``runId``, 202)."""

    items: int | None = None
    memorized: int | None = None
    failed: int | None = None
    results: list[MemorizedItem] | None = None
    dryRun: bool | None = None
    totalRows: int | None = None
    validRows: int | None = None
    errorCount: int | None = None
    errors: list[RowError] | None = None
    wouldWrite: WouldWrite | None = None
    runId: str | None = None
    status: str | None = None
    chunks: int | None = None


class BatchRunQueued(BaseModel):
    runId: str
    status: str
    totalRows: int
    chunks: int


class BatchProgress(BaseModel):
    totalRows: int
    processedRows: int
    chunksTotal: int
    chunksDone: int
    percent: float


class BatchStatus(BaseModel):
    runId: str
    name: str | None = None
    source: str | None = None
    status: str
    progress: BatchProgress
    errorCount: int
    errors: list[RowError]
    totals: OpenObject
    createdAt: str | None = None
    finishedAt: str | None = None


# --- smart recall -------------------------------------------------------------------------------------
class RecalledMemory(BaseModel):
    memoryId: str
    record_id: str
    recordId: str
    type: str
    text: str
    score: float
    similarity: float
    timestamp: str | None = None
    tags: list[str]
    speaker: str | None = None
    topic: str | None = None
    seenCount: int | None = None
    superseded: bool | None = None
    supersededBy: str | None = None
    properties: dict[str, Any] | None = Field(None, description="The record's property values (include_property_values).")


class RecordGroup(BaseModel):
    recordId: str
    record_id: str
    type: str
    topScore: float
    matchCount: int
    matches: list[RecalledMemory]
    properties: dict[str, Any] | None = None


class RecordOverview(BaseModel):
    type: str | None = None
    keys: RecordKeys
    properties: dict[str, Any]


class ScopeRecord(BaseModel):
    recordId: str
    record_id: str
    type: str


class RecallAnswer(BaseModel):
    text: str
    citedMemoryIds: list[str]


class SmartRecallResult(BaseModel):
    results: list[RecalledMemory]
    count: int
    query: str
    scope: str = Field(description="'record', 'records' or 'org'.")
    mode: str = Field(description="'fast' or 'deep'.")
    tookMs: float
    recordGroups: list[RecordGroup] | None = None
    records: dict[str, RecordOverview] | None = None
    property_values: dict[str, Any] | None = None
    scopeRecords: list[ScopeRecord] | None = None
    scopeTruncated: bool | None = None
    note: str | None = None
    reflection: dict[str, Any] | None = None
    answer: RecallAnswer | None = None
    usage: UsageSummary | None = None


# --- digest -------------------------------------------------------------------------------------------
class DigestMemory(BaseModel):
    text: str
    createdAt: str | None = None


class DigestCounts(BaseModel):
    properties: int
    memories: int
    linkedRecords: int
    relatedRecords: int


class RelatedRecord(BaseModel):
    recordId: str
    type: str


class InferredValue(BaseModel):
    recordId: str
    type: str
    property: str
    value: Any = None
    confidence: float | None = None


class DigestResult(BaseModel):
    recordId: str
    record_id: str
    type: str
    compiledContext: str
    properties: dict[str, str]
    memories: list[DigestMemory]
    markdown: str
    tokenEstimate: int
    tokenBudget: int
    truncated: bool
    counts: DigestCounts
    relatedRecords: list[RelatedRecord]
    inferred: list[InferredValue]


# --- similar and segment ------------------------------------------------------------------------------
class SimilarRecord(BaseModel):
    recordId: str
    record_id: str
    type: str | None = None
    keys: RecordKeys
    score: float
    tier: str
    scores: dict[str, float]
    matchBreakdown: dict[str, float]


class Seed(BaseModel):
    recordId: str | None = None
    type: str | None = None
    text: str | None = None


class ScoredId(BaseModel):
    recordId: str
    score: float
    tier: str


class SimilarResult(BaseModel):
    seed: Seed
    dimensions: str
    results: list[SimilarRecord]
    tiers: dict[str, list[str]] = Field(description="Record ids per tier.")
    totalMatched: int
    allIds: list[ScoredId] | None = Field(None, description="Every match (returnAllIds).")
    recordIds: list[str] | None = None


class ScoreRange(BaseModel):
    min: float
    max: float


class SegmentTier(BaseModel):
    recordIds: list[str]
    count: int
    minScore: float | None = None
    scoreRange: ScoreRange | None = None
    items: list[SimilarRecord]
    hasMore: bool
    approximate: bool | None = None


class SegmentResult(BaseModel):
    seed: Seed
    dimensions: str
    total: int
    totalCandidates: int
    page: int
    pageSize: int
    tierOffset: int
    tiers: dict[str, SegmentTier]


# --- query properties ---------------------------------------------------------------------------------
class PropertyMatch(BaseModel):
    recordId: str
    record_id: str
    type: str | None = None
    propertyName: str
    propertyValue: Any = None
    matchReason: str


class QueryPropertiesResult(BaseModel):
    matches: list[PropertyMatch]
    totalCandidates: int
    candidatesJudged: int
    usage: UsageSummary
