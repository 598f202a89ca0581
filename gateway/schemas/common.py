"""Shapes shared by several areas."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class OpenObject(BaseModel):
    """A JSON object whose keys are data (property maps, provider payloads, job results)."""

    model_config = ConfigDict(extra="allow")


class Deleted(BaseModel):
    """The answer of a hard delete by id."""

    id: str
    deleted: bool


class VersionEntry(BaseModel):
    """One version of a versioned object (``?mode=full`` snapshot, ``?mode=diff`` unified diff)."""

    version: int
    actor: str | None = None
    createdAt: str | None = None
    snapshot: dict[str, Any] | None = Field(None, description="The object as it was (mode=full).")
    diff: str | None = Field(None, description="Unified diff against the previous version (mode=diff).")


class Queued(BaseModel):
    """A job accepted for background processing."""

    jobId: str
    status: str
    statusUrl: str


class PageQuery(BaseModel):
    page: int = Field(1, ge=1)
    pageSize: int = Field(50, ge=1)


class HistoryModeQuery(BaseModel):
    mode: str = Field("full", description="'full' (snapshots) or 'diff' (unified diffs).")
