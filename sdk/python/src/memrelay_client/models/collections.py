"""Collections (typed property schemas) and entity types."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AliasChoices, Field

from memrelay_client.models._base import ApiModel, RequestModel


class PropertyDefinition(RequestModel):
    """A property of a collection (``type``: text, number, boolean, date, array, options, ...)."""

    model_config = RequestModel.model_config | {"extra": "allow"}

    property_name: str
    type: str = "text"
    description: str = ""
    options: list[str] | None = None
    update_mode: str | None = None
    tags: list[str] | None = None


class Collection(ApiModel):
    """A versioned collection of typed properties for one entity type."""

    collection_id: str
    collection_name: str
    entity_type: str
    description: str = ""
    properties: list[PropertyDefinition] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    version: int = 1
    archived: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = None


class Version(ApiModel):
    """One version of a collection or guideline (``snapshot``; ``diff`` in diff mode)."""

    version: int
    actor: str | None = None
    created_at: datetime | None = None
    snapshot: dict[str, Any] | None = None
    diff: str | None = None


class EntityType(ApiModel):
    """An entity type and the keys that identify its records."""

    id: str
    name: str = Field(validation_alias=AliasChoices("slug", "name"),
                      description="The type's slug (what ``type`` names); the API's ``name`` is the display label.")
    label: str | None = None
    description: str = ""
    system: bool = False
    primary_key_field: str | None = None
    secondary_keys: list[str] = Field(default_factory=list)
    archived: bool = False
    created_at: datetime | None = None
