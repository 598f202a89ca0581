"""Answers of the proactive enrichment API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ChunkCounts(BaseModel):
    total: int
    done: int
    failed: int


class EnrichmentRun(BaseModel):
    """A run (202 when queued) or, for ``dryRun``, the count and estimate only (200)."""

    runId: str | None = None
    status: str | None = None
    dryRun: bool | None = None
    collection: str
    property: str
    mode: str
    total: int
    processed: int | None = None
    progress: float | None = None
    counts: dict[str, Any] | None = None
    chunks: ChunkCounts | None = None
    estimateUsd: float
    costUsd: float | None = None
    filter: dict[str, Any] | None = None
    error: Any = None
    createdAt: str | None = None
    updatedAt: str | None = None
    finishedAt: str | None = None
    budget: dict[str, Any] | None = Field(None, description="The org's LLM budget (LLM runs).")
    resumedChunks: list[int] | None = Field(None, description="Chunks queued again (resume).")


class StaleProperty(BaseModel):
    stale: int
    due: int
    policy: Any = None


class StaleSummary(BaseModel):
    properties: dict[str, StaleProperty]
