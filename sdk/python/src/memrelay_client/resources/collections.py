"""Collections (versioned property schemas) and entity types."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Literal

from memrelay_client._decode import listed, one
from memrelay_client._protocol import Call
from memrelay_client._resource import ModeT, Resource, operation
from memrelay_client.models._base import drop_none
from memrelay_client.models.collections import Collection, EntityType, PropertyDefinition, Version


def _props(properties: Sequence[PropertyDefinition] | None) -> list[dict[str, object]] | None:
    return None if properties is None else [p.body() for p in properties]


class Collections(Resource[ModeT]):
    """``client.collections``: the typed properties each entity type carries, with version history."""

    @operation
    def list(self, entity_type: str | None = None) -> Call[builtins.list[Collection]]:
        """The org's collections (optionally of one entity type)."""
        return Call("GET", "/collections", listed(Collection, "collections"), params={"type": entity_type})

    @operation
    def create(self, name: str, *, entity_type: str = "contact", description: str = "",
               properties: Sequence[PropertyDefinition] = (), tags: Sequence[str] = ()) -> Call[Collection]:
        """Create a collection of typed properties for an entity type."""
        body = {"collectionName": name, "entityType": entity_type, "description": description,
                "properties": _props(properties), "tags": list(tags)}
        return Call("POST", "/collections", one(Collection), json=body)

    @operation
    def get(self, collection_id: str) -> Call[Collection]:
        """One collection."""
        return Call("GET", f"/collections/{collection_id}", one(Collection))

    @operation
    def update(self, collection_id: str, *, name: str | None = None, description: str | None = None,
               properties: Sequence[PropertyDefinition] | None = None,
               tags: Sequence[str] | None = None) -> Call[Collection]:
        """Change some fields; every real change is a new version."""
        body = drop_none(collectionName=name, description=description, properties=_props(properties),
                         tags=None if tags is None else list(tags))
        return Call("PATCH", f"/collections/{collection_id}", one(Collection), json=body)

    @operation
    def delete(self, collection_id: str) -> Call[Collection]:
        """Archive the collection (its history is kept)."""
        return Call("DELETE", f"/collections/{collection_id}", one(Collection))

    @operation
    def history(self, collection_id: str, *, mode: Literal["full", "diff"] = "full") -> Call[builtins.list[Version]]:
        """Every version, oldest first (``mode="diff"``: unified diffs)."""
        return Call("GET", f"/collections/{collection_id}/history", listed(Version, "versions"),
                    params={"mode": mode})

    @operation
    def list_entity_types(self, *, include_archived: bool = False) -> Call[builtins.list[EntityType]]:
        """Entity types (system and custom)."""
        return Call("GET", "/entities", listed(EntityType, "entities"), params={"includeArchived": include_archived})

    @operation
    def create_entity_type(self, name: str, *, description: str = "", primary_key_field: str | None = None,
                           secondary_keys: Sequence[str] | None = None) -> Call[EntityType]:
        """Create a custom entity type identified by ``primary_key_field`` (email, website_url or a custom key)."""
        body = {"name": name, "description": description,
                **drop_none(primaryKeyField=primary_key_field,
                            secondaryKeys=None if secondary_keys is None else list(secondary_keys))}
        return Call("POST", "/entities", one(EntityType), json=body)

    @operation
    def archive_entity_type(self, name: str) -> Call[EntityType]:
        """Archive a custom entity type (system types are refused)."""
        return Call("POST", f"/entities/{name}/archive", one(EntityType))

    @operation
    def restore_entity_type(self, name: str) -> Call[EntityType]:
        """Restore an archived entity type."""
        return Call("POST", f"/entities/{name}/restore", one(EntityType))
