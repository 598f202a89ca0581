"""Guidelines (governance) and smart guidelines."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from memrelay_client.models._base import ApiModel


class Guideline(ApiModel):
    """A markdown guideline with tags and trigger keywords (``stale``: 30+ days unchanged)."""

    id: str
    name: str
    description: str = ""
    content: str = ""
    tags: list[str] = Field(default_factory=list)
    trigger_keywords: list[str] = Field(default_factory=list)
    version: int = 1
    created_at: datetime | None = None
    updated_at: datetime | None = None
    stale: bool = False


class SelectedGuideline(ApiModel):
    """A guideline smart guidelines delivered, with why and how much of it."""

    id: str
    name: str
    priority: str | None = None
    score: float | None = None
    delivery: str | None = None
    sections: list[str] = Field(default_factory=list)
    tokens: int | None = None
    reasons: list[str] = Field(default_factory=list)


class SmartGuidelinesResult(ApiModel):
    """The guideline content a message needs, compiled as markdown."""

    compiled_context: str = ""
    mode: str | None = None
    session_id: str | None = None
    guidelines: list[SelectedGuideline] = Field(default_factory=list)
    tokens: int | None = None
    tokens_saved: int | None = None
    stale_guidelines: list[Any] = Field(default_factory=list)
    usage: Any = None
    took_ms: float | None = None
