"""Which properties of an org's schema are inferred, and which of them a change makes stale."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from memrelay.engine.core.errors import ValidationFailed
from memrelay.engine.core.properties_types import InferredSpec, PropertySpec
from memrelay.engine.stores.collections import Collections, normalise_entity_type
from memrelay.engine.stores.db.models import Collection


def inferred_of(schema: dict[str, PropertySpec]) -> dict[str, PropertySpec]:
    """The inferred properties of one entity type's schema, by name."""
    return {name: spec for name, spec in schema.items() if spec.inferred is not None}


def require_inferred(schema: dict[str, PropertySpec], entity_type: str, name: str) -> PropertySpec:
    """The declaration of inferred property ``name``; 422 when it is unknown or not inferred."""
    spec = schema.get(name)
    if spec is None or spec.inferred is None:
        raise ValidationFailed(f"{entity_type} has no inferred property {name!r}",
                               details={"property": name, "inferred": sorted(inferred_of(schema))})
    return spec


def declaration(spec: PropertySpec) -> InferredSpec:
    assert spec.inferred is not None, spec.propertyName
    return spec.inferred


def inferred_by_type(s: Session, collections: Collections, org_id: str) -> dict[str, dict[str, PropertySpec]]:
    """Every entity type of the org that has inferred properties, with them."""
    types = s.scalars(select(Collection.entity_type).where(Collection.org_id == org_id,
                                                           Collection.archived_at.is_(None)).distinct())
    out: dict[str, dict[str, PropertySpec]] = {}
    for et in types:
        found = inferred_of(collections.schema_for(s, org_id, et))
        if found:
            out[normalise_entity_type(et)] = found
    return out


def depends_on_memory(spec: PropertySpec, tags: Iterable[str]) -> bool:
    """Whether a memory with ``tags`` is evidence for ``spec`` (all memories, or those with a listed tag)."""
    wanted = declaration(spec).evidence.memoryTags
    return not wanted or bool(set(wanted) & set(tags or []))


def depends_on_property(spec: PropertySpec, name: str) -> bool:
    """Whether property ``name`` of the same record is evidence for ``spec``."""
    return name != spec.propertyName and name in declaration(spec).evidence.properties


def depends_on_company(spec: PropertySpec) -> bool:
    """Whether the linked company's properties and memories are evidence for ``spec``."""
    return declaration(spec).evidence.linkedCompany


def declared_path(spec: PropertySpec) -> str:
    """The declaration's inference path: ``auto`` (the LLM when configured), ``llm`` or ``offline``."""
    return declaration(spec).path
