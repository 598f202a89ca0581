"""Answers that only the Personize v1.1 surface gives (gateway/blueprints/personize_v1_1.py)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from memrelay.gateway.schemas.memory import FilteredRecord, UpsertResult
from memrelay.gateway.schemas.semantic import MemorizeResult


class SavedRecord(BaseModel):
    index: int
    recordId: str | None = None
    type: str | None = None
    upserted: UpsertResult | None = None
    memorized: MemorizeResult | None = None


class SaveBatchResult(BaseModel):
    results: list[SavedRecord]
    saved: int
    failed: int


class RecordPropertyValue(BaseModel):
    name: str
    value: Any = None
    description: str | None = None
    type: str | None = None
    update: Any = None
    collectionName: str | None = None
    collectionId: str | None = None
    updatedAt: str | None = None


class FilterOrRecordProperties(BaseModel):
    """Either the property filter's page (``records``, ``totalMatched``, ``nextToken``) or one record's
    property values with their schema descriptions (``recordId``, ``type``, ``properties``)."""

    records: list[FilteredRecord] | None = None
    totalMatched: int | None = None
    total: int | None = None
    nextToken: str | None = None
    recordId: str | None = None
    type: str | None = None
    properties: list[RecordPropertyValue] | None = None

