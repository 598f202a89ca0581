"""Answers of the governance API (guidelines and smart guidelines) and of its Personize v1.1 views."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from memrelay.gateway.schemas.common import VersionEntry


class Guideline(BaseModel):
    id: str
    name: str
    description: str | None = None
    content: str
    tags: list[str]
    triggerKeywords: list[str]
    version: int
    createdAt: str | None = None
    updatedAt: str | None = None
    stale: bool = Field(description="Unchanged for 30+ days.")


class GuidelineList(BaseModel):
    guidelines: list[Guideline]


class GuidelineHistory(BaseModel):
    guidelineId: str
    versions: list[VersionEntry]


class SelectedGuideline(BaseModel):
    id: str
    name: str
    score: float | None = None
    priority: Any = None
    delivery: str
    content: str


class BudgetMetadata(BaseModel):
    maxTokens: int | None = None
    usedTokens: int
    demotedGuidelines: list[str]


class CompiledGuideline(BaseModel):
    id: str
    name: str
    priority: Any = None
    score: float | None = None
    delivery: str
    sections: list[str]
    tokens: int
    tokensSaved: int
    reasons: Any = None
    stale: bool
    version: int
    omittedForBudget: Any = None


class SmartGuidelinesResult(BaseModel):
    compiledContext: str
    mode: str
    sessionId: str | None = None
    selection: list[SelectedGuideline]
    supplementary: list[str]
    budgetMetadata: BudgetMetadata
    guidelines: list[CompiledGuideline]
    tokens: int
    tokensSaved: int
    staleGuidelines: list[str]
    unresolvedGuidelines: list[Any]
    candidatesConsidered: int
    usage: dict[str, Any] = Field(description="LLM usage (deep mode) or {durationMs}.")
    tookMs: float


# --- Personize v1.1 -----------------------------------------------------------------------------------
class GovernanceScope(BaseModel):
    alwaysOn: bool
    triggerKeywords: list[str]


class GuidelinePayload(BaseModel):
    name: str | None = None
    value: str | None = None
    description: str | None = None
    tags: list[str]
    governanceScope: GovernanceScope


class DocumentedGuideline(Guideline):
    """A guideline with Personize's ``type``, ``value``, ``governanceScope`` and ``payload``."""

    type: str
    value: str | None = None
    governanceScope: GovernanceScope
    payload: GuidelinePayload


class DocumentedGuidelineList(BaseModel):
    guidelines: list[Guideline]
    actions: list[DocumentedGuideline]
    count: int
    nextToken: str | None = None


class StructureSection(BaseModel):
    header: str
    level: int
    tokens: int


class GuidelineStructure(BaseModel):
    guidelineId: str
    name: str
    headers: list[str]
    sections: list[StructureSection]


class GuidelineSection(BaseModel):
    guidelineId: str
    name: str
    header: str
    content: str


# --- query strings ------------------------------------------------------------------------------------
class GuidelineListQuery(BaseModel):
    tag: str | None = Field(None, description="Only guidelines with this tag.")


class SectionQuery(BaseModel):
    header: str | None = Field(None, description="The section's heading (case-insensitive); required.")
    section: str | None = Field(None, description="Alias of header.")
