"""Typed property definitions shared by collections, extraction and validation."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer


class PropertyType(StrEnum):
    TEXT = "text"
    NUMBER = "number"
    DATE = "date"
    BOOLEAN = "boolean"
    OPTIONS = "options"
    ARRAY = "array"


class UpdateMode(StrEnum):
    REPLACE = "replace"
    APPEND = "append"


class InferencePolicy(StrEnum):
    """When an inferred property is recomputed after its evidence changed."""

    ON_NEW_EVIDENCE = "on_new_evidence"
    DAILY = "daily"
    MANUAL = "manual"


class InferredEvidence(BaseModel):
    """What an inference may read: memories (all, or those with one of ``memoryTags``), other properties of
    the record, and the linked company's properties and memories."""

    model_config = ConfigDict(extra="forbid")

    memoryTags: list[str] = Field(default_factory=list, description="Only memories with one of these tags.")
    properties: list[str] = Field(default_factory=list, description="Other properties of the record to read.")
    linkedCompany: bool = False


class InferredSpec(BaseModel):
    """An inferred (not extracted) property: computed from everything known about the record
    (``memrelay.engine.enrichment``). ``keywords`` optionally lists cue words per option (offline path)."""

    model_config = ConfigDict(extra="forbid")

    instruction: str = Field(min_length=1, max_length=4000)
    evidence: InferredEvidence = Field(default_factory=InferredEvidence)
    policy: InferencePolicy = InferencePolicy.ON_NEW_EVIDENCE
    keywords: dict[str, list[str]] = Field(default_factory=dict)
    path: Literal["auto", "llm", "offline"] = Field(
        "auto", description="Inference path of refreshes and auto-mode runs: auto = the LLM when one is configured.")


class PropertySpec(BaseModel):
    """One property of a collection, in Personize-compatible field names."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    propertyName: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z_][A-Za-z0-9_\-]*$")
    type: PropertyType = PropertyType.TEXT
    description: str = ""
    options: list[str] | None = Field(None, description="Allowed values when type is 'options'.")
    autoSystem: bool = Field(False, description="AI-extractable from free text.")
    updateMode: UpdateMode = UpdateMode.REPLACE
    tags: list[str] = Field(default_factory=list)
    displayType: str | None = None
    inferred: InferredSpec | None = None

    @model_serializer(mode="wrap")
    def _omit_unset_inferred(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict) and data.get("inferred") is None:
            data.pop("inferred", None)
        return data
