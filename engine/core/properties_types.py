"""Typed property definitions shared by collections, extraction and validation."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


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
