"""Collections (property schemas) and entity types, every change versioned."""

from __future__ import annotations

import builtins
import json
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from memrelay.engine.core.access import current_access
from memrelay.engine.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from memrelay.engine.core.properties_types import PropertySpec, PropertyType
from memrelay.engine.core.util import iso, new_id, utcnow
from memrelay.engine.core.versioning import render_history
from memrelay.engine.domain.starter_schema import (
    STARTER_COLLECTIONS,
    STARTER_ENTITY_DISPLAY,
    STARTER_ENTITY_KEYS,
    STARTER_ENTITY_TYPES,
    SYSTEM_ENTITY_TYPES,
)
from memrelay.engine.stores.db.database import Database
from memrelay.engine.stores.db.models import Collection, CollectionVersion, EntityType, Record
from memrelay.engine.stores.outbox import emit


def normalise_entity_type(name: str) -> str:
    return name.strip().lower()


def parse_properties(raw: list[dict[str, Any]]) -> list[PropertySpec]:
    """Validate property definitions, with errors that name the offending property."""
    specs: list[PropertySpec] = []
    for i, item in enumerate(raw):
        try:
            spec = PropertySpec.model_validate(item)
        except ValidationError as exc:
            name = item.get("propertyName", f"#{i}") if isinstance(item, dict) else f"#{i}"
            raise ValidationFailed(f"invalid property {name!r}",
                                   details={"property": name, "errors": _clean(exc)}) from None
        if spec.type == PropertyType.OPTIONS and not spec.options:
            raise ValidationFailed(f"property {spec.propertyName!r} of type options needs 'options'",
                                   details={"property": spec.propertyName})
        specs.append(spec)
    names = [s.propertyName for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValidationFailed("duplicate property names", details={"duplicates": dupes})
    return specs


def _clean(exc: ValidationError) -> list[dict[str, Any]]:
    return [{"loc": ".".join(str(p) for p in e["loc"]), "msg": e["msg"]} for e in exc.errors()]


def collection_to_dict(c: Collection) -> dict[str, Any]:
    return {
        "collectionId": c.id, "collectionName": c.name, "entityType": c.entity_type,
        "description": c.description, "properties": c.properties, "tags": c.tags, "version": c.version,
        "archived": c.archived_at is not None, "createdAt": iso(c.created_at), "updatedAt": iso(c.updated_at),
    }


def default_label(name: str) -> str:
    return " ".join(w.capitalize() for w in name.replace("_", " ").replace("-", " ").split()) or name


def pluralise(label: str) -> str:
    """English plural of a label's last word (``Company`` → ``Companies``, ``Class`` → ``Classes``)."""
    low = label.lower()
    if low.endswith("y") and low[-2:-1] not in ("a", "e", "i", "o", "u"):
        return label[:-1] + "ies"
    if low.endswith(("s", "x", "z", "ch", "sh")):
        return label + "es"
    return label + "s"


def entity_type_to_dict(e: EntityType) -> dict[str, Any]:
    """An entity type as Personize's ``EntityTypeResponse``: ``name`` is the display label (003: "name —
    Display label (e.g. 'Lead')", also ``label``) and ``slug`` the immutable identifier that ``type`` in
    requests names (case-insensitively); with ``pluralLabel``, ``icon``, ``color``, ``primaryKeyField``,
    ``identifierColumn``, ``isSystem`` and ``status``."""
    shown = STARTER_ENTITY_DISPLAY.get(e.name, {})
    label = e.label or shown.get("label") or default_label(e.name)
    plural = e.plural_label or (shown.get("plural") if not e.label else None) or pluralise(label)
    return {"id": e.id, "name": label, "slug": e.name, "label": label, "pluralLabel": plural, "plural": plural,
            "description": e.description, "icon": e.icon or shown.get("icon"), "color": e.color or shown.get("color"),
            "primaryKeyField": e.primary_key_field,
            "identifierColumn": e.identifier_column or e.primary_key_field,
            "secondaryKeys": list(e.secondary_keys or []), "system": e.system, "isSystem": e.system,
            "status": "Archived" if e.archived_at is not None else "Active",
            "archived": e.archived_at is not None, "createdAt": iso(e.created_at),
            "updatedAt": iso(e.updated_at or e.created_at)}


ENTITY_TYPE_FIELDS = {"label": "label", "pluralLabel": "plural_label", "description": "description", "icon": "icon",
                      "color": "color", "identifierColumn": "identifier_column"}


class Collections:
    """Org-scoped CRUD of collections and entity types."""

    def __init__(self, db: Database):
        self.db = db
        self._schemas: dict[tuple[str, str], tuple[tuple[Any, ...], dict[str, PropertySpec]]] = {}

    # --- entity types ------------------------------------------------------------------------
    def ensure_entity_type(self, s: Session, org_id: str, name: str, *, description: str = "",
                           primary_key_field: str | None = None,
                           secondary_keys: builtins.list[str] | None = None) -> EntityType:
        """The entity type, created when missing; starter types get their declared keys."""
        name = normalise_entity_type(name)
        et = s.scalar(select(EntityType).where(EntityType.org_id == org_id, EntityType.name == name))
        if et is None:
            primary, secondary = STARTER_ENTITY_KEYS.get(name, (None, ()))
            et = EntityType(id=new_id("et"), org_id=org_id, name=name, description=description,
                            system=name in SYSTEM_ENTITY_TYPES, created_at=utcnow(),
                            primary_key_field=primary_key_field or primary,
                            secondary_keys=list(secondary_keys if secondary_keys is not None else secondary))
            s.add(et)
            s.flush()
        return et

    def create_entity_type(self, org_id: str, name: str, description: str = "", *,
                           primary_key_field: str | None = None,
                           secondary_keys: builtins.list[str] | None = None,
                           display: dict[str, Any] | None = None) -> dict[str, Any]:
        """A custom entity type; ``primary_key_field`` (e.g. ``studentNumber``) is its records' identity;
        ``display`` sets ``ENTITY_TYPE_FIELDS`` (label, pluralLabel, icon, color, identifierColumn)."""
        with self.db.session() as s:
            if s.scalar(select(EntityType.id).where(EntityType.org_id == org_id,
                                                     EntityType.name == normalise_entity_type(name))):
                raise Conflict(f"entity type {name!r} already exists")
            et = self.ensure_entity_type(s, org_id, name, description=description,
                                         primary_key_field=primary_key_field, secondary_keys=secondary_keys)
            for field, value in (display or {}).items():
                if field in ENTITY_TYPE_FIELDS and field != "description" and value is not None:
                    setattr(et, ENTITY_TYPE_FIELDS[field], value)
            return entity_type_to_dict(et)

    def list_entity_types(self, org_id: str, *, include_archived: bool = False) -> list[dict[str, Any]]:
        with self.db.read() as s:
            q = select(EntityType).where(EntityType.org_id == org_id).order_by(EntityType.name)
            if not include_archived:
                q = q.where(EntityType.archived_at.is_(None))
            return [entity_type_to_dict(e) for e in s.scalars(q)]

    def entity_type(self, s: Session, org_id: str, ref: str) -> EntityType:
        """An entity type by id (``et_…``), slug or display label (both case-insensitive); 422 listing the
        known ones otherwise."""
        et = s.scalar(select(EntityType).where(EntityType.org_id == org_id, (EntityType.id == ref.strip()) | (
            EntityType.name == normalise_entity_type(ref))))
        if et is None:
            wanted = ref.strip().casefold()
            et = next((e for e in s.scalars(select(EntityType).where(EntityType.org_id == org_id)
                                            .order_by(EntityType.name))
                       if entity_type_to_dict(e)["label"].casefold() == wanted), None)
        if et is None:
            known = s.scalars(select(EntityType.name).where(EntityType.org_id == org_id)
                              .order_by(EntityType.name)).all()
            raise ValidationFailed(f"unknown entity type {ref!r}", details={"known": list(known)})
        return et

    def get_entity_type(self, org_id: str, ref: str) -> dict[str, Any]:
        with self.db.read() as s:
            return entity_type_to_dict(self.entity_type(s, org_id, ref))

    def update_entity_type(self, org_id: str, ref: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change display fields (``ENTITY_TYPE_FIELDS``), keys or ``status`` (``Active``/``Archived``).

        The slug and system flag never change. The primary key field of a type that already has records
        cannot change (their identity would silently change): 409."""
        with self.db.session() as s:
            et = self.entity_type(s, org_id, ref)
            for field, column in ENTITY_TYPE_FIELDS.items():
                if changes.get(field) is not None:
                    setattr(et, column, changes[field])
            if changes.get("secondaryKeys") is not None:
                et.secondary_keys = list(changes["secondaryKeys"])
            primary = changes.get("primaryKeyField")
            if primary is not None and primary != et.primary_key_field:
                has_records = s.scalar(select(Record.id).where(Record.org_id == org_id,
                                                               Record.entity_type == et.name).limit(1))
                if has_records:
                    raise Conflict(f"entity type {et.name!r} already has records keyed by "
                                   f"{et.primary_key_field!r}; its primary key field cannot change",
                                   details={"primaryKeyField": et.primary_key_field})
                et.primary_key_field = primary
            if changes.get("status") is not None:
                self._set_archived(et, changes["status"] == "Archived")
            et.updated_at = utcnow()
            s.flush()
            return entity_type_to_dict(et)

    def set_entity_type_archived(self, org_id: str, ref: str, archived: bool) -> dict[str, Any]:
        """Archive (system types: 403) or restore an entity type, by id or name."""
        with self.db.session() as s:
            et = self.entity_type(s, org_id, ref)
            self._set_archived(et, archived)
            et.updated_at = utcnow()
            return entity_type_to_dict(et)

    @staticmethod
    def _set_archived(et: EntityType, archived: bool) -> None:
        if et.system and archived:
            raise Forbidden(f"system entity type {et.name!r} cannot be archived")
        if archived and et.archived_at is None:
            et.archived_at = utcnow()
        elif not archived:
            et.archived_at = None

    def type_name(self, s: Session, org_id: str, name: str) -> str:
        """The entity type a caller's ``type`` names: the type of that name, else the type of the collection
        of that name (004 spells types as its collections: ``type: 'SupportTicket'`` is the ``ticket`` type
        of the ``SupportTicket`` collection), compared case-insensitively; unknown names come back as given."""
        name = normalise_entity_type(name)
        if s.scalar(select(EntityType.id).where(EntityType.org_id == org_id, EntityType.name == name)):
            return name
        via = s.scalar(select(Collection.entity_type).where(Collection.org_id == org_id,
                                                            func.lower(Collection.name) == name).limit(1))
        return via or name

    def active_entity_type(self, s: Session, org_id: str, name: str) -> str:
        """Validate that an entity type exists and is not archived; returns its normalised name."""
        return self.active_entity_type_row(s, org_id, name).name

    def active_entity_type_row(self, s: Session, org_id: str, name: str) -> EntityType:
        """The entity type a caller's ``type`` names (as :meth:`type_name` resolves it), validated to exist and
        not be archived (422 otherwise). One query when ``name`` is the type's own name — the row also carries
        the type's declared keys, so callers need not read it again."""
        name = normalise_entity_type(name)
        et = s.scalar(select(EntityType).where(EntityType.org_id == org_id, EntityType.name == name))
        if et is None:
            via = self.type_name(s, org_id, name)
            if via != name:
                name = via
                et = s.scalar(select(EntityType).where(EntityType.org_id == org_id, EntityType.name == name))
        if et is None:
            known = s.scalars(select(EntityType.name).where(EntityType.org_id == org_id,
                                                            EntityType.archived_at.is_(None))).all()
            raise ValidationFailed(f"unknown entity type {name!r}", details={"known": sorted(known)})
        if et.archived_at is not None:
            raise ValidationFailed(f"entity type {name!r} is archived")
        return et

    # --- collections -------------------------------------------------------------------------
    def create(self, org_id: str, *, name: str, entity_type: str, properties: list[dict[str, Any]],
               description: str = "", tags: list[str] | None = None, actor: str | None = None) -> dict[str, Any]:
        specs = parse_properties(properties)
        with self.db.session() as s:
            if s.scalar(select(Collection.id).where(Collection.org_id == org_id, Collection.name == name)):
                raise Conflict(f"collection {name!r} already exists")
            et = self.ensure_entity_type(s, org_id, entity_type)
            now = utcnow()
            c = Collection(id=new_id("col"), org_id=org_id, name=name, entity_type=et.name,
                           description=description, properties=[p.model_dump(mode="json") for p in specs],
                           tags=tags or [], version=1, created_at=now, updated_at=now)
            s.add(c)
            s.flush()
            self._snapshot(s, c, actor)
            return collection_to_dict(c)

    def update(self, org_id: str, collection_id: str, *, actor: str | None = None,
               **changes: Any) -> dict[str, Any]:
        """Apply changes (name, description, properties, tags); bumps the version and records a snapshot."""
        with self.db.session() as s:
            c = self._get(s, org_id, collection_id)
            if "properties" in changes and changes["properties"] is not None:
                c.properties = [p.model_dump(mode="json") for p in parse_properties(changes["properties"])]
            for field in ("name", "description", "tags"):
                if changes.get(field) is not None:
                    setattr(c, field, changes[field])
            c.version += 1
            c.updated_at = utcnow()
            self._snapshot(s, c, actor)
            emit(s, org_id, "collection.updated", {"collectionId": c.id, "version": c.version})
            return collection_to_dict(c)

    def archive(self, org_id: str, collection_id: str, *, actor: str | None = None) -> dict[str, Any]:
        with self.db.session() as s:
            c = self._get(s, org_id, collection_id)
            c.archived_at = c.updated_at = utcnow()
            c.version += 1
            self._snapshot(s, c, actor)
            emit(s, org_id, "collection.updated", {"collectionId": c.id, "version": c.version, "archived": True})
            return collection_to_dict(c)

    def get(self, org_id: str, collection_id: str) -> dict[str, Any]:
        with self.db.read() as s:
            return collection_to_dict(self._get(s, org_id, collection_id))

    def list(self, org_id: str, *, entity_type: str | None = None) -> list[dict[str, Any]]:
        with self.db.read() as s:
            q = select(Collection).where(Collection.org_id == org_id, Collection.archived_at.is_(None))
            if entity_type:
                q = q.where(Collection.entity_type == normalise_entity_type(entity_type))
            access = current_access()
            return [collection_to_dict(c) for c in s.scalars(q.order_by(Collection.name))
                    if access.allows_collection(c.id, c.name, c.entity_type)]

    def history(self, org_id: str, collection_id: str, *, mode: str = "full") -> builtins.list[dict[str, Any]]:
        """Every version; ``mode='diff'`` gives a unified diff against the previous version."""
        with self.db.read() as s:
            self._get(s, org_id, collection_id)
            versions = s.scalars(select(CollectionVersion).where(
                CollectionVersion.org_id == org_id, CollectionVersion.collection_id == collection_id
            ).order_by(CollectionVersion.version)).all()
        return render_history(versions, mode=mode,
                              lines_of=lambda snap: json.dumps(snap, indent=2, sort_keys=True).splitlines())

    def schema_for(self, s: Session, org_id: str, entity_type: str) -> dict[str, PropertySpec]:
        """All properties defined for an entity type across its active collections.

        Parsed schemas are cached per process and revalidated with one cheap query (count, newest
        change), so a change made by any process is seen immediately."""
        et = normalise_entity_type(entity_type)
        return self.schema_from_stamp(s, org_id, et, tuple(s.execute(select(*schema_stamp(org_id, et))).one()))

    def writable_type_and_schema(self, s: Session, org_id: str, name: str,
                                 ) -> tuple[EntityType, dict[str, PropertySpec]]:
        """:meth:`active_entity_type_row` and :meth:`schema_for` of it, in ONE query when ``name`` is an
        active type's own name: the schema's revalidation stamp is read with the entity type's row."""
        wanted = normalise_entity_type(name)
        row = s.execute(select(EntityType, *schema_stamp(org_id, wanted)).where(
            EntityType.org_id == org_id, EntityType.name == wanted)).one_or_none()
        if row is None or row[0].archived_at is not None:  # an alias, or a 422
            et = self.active_entity_type_row(s, org_id, name)
            return et, self.schema_for(s, org_id, et.name)
        return row[0], self.schema_from_stamp(s, org_id, wanted, tuple(row[1:]))

    def schema_from_stamp(self, s: Session, org_id: str, et: str, stamp: tuple[Any, ...]) -> dict[str, PropertySpec]:
        """The parsed schema of ``et`` from the cache when ``stamp`` (read in this transaction) still matches."""
        hit = self._schemas.get((org_id, et))
        if hit is not None and hit[0] == stamp:
            return hit[1]
        rows = s.scalars(select(Collection).where(Collection.org_id == org_id, Collection.entity_type == et,
                                                  Collection.archived_at.is_(None))).all()
        out: dict[str, PropertySpec] = {}
        for c in rows:
            for p in c.properties:
                out.setdefault(p["propertyName"], PropertySpec.model_validate(p))
        self._schemas[(org_id, et)] = (stamp, out)
        return out

    def property_sources(self, s: Session, org_id: str, entity_type: str) -> dict[str, tuple[str, str]]:
        """Which active collection defines each property of an entity type: ``{name: (id, name)}``."""
        rows = s.execute(select(Collection.id, Collection.name, Collection.properties).where(
            Collection.org_id == org_id, Collection.entity_type == normalise_entity_type(entity_type),
            Collection.archived_at.is_(None)).order_by(Collection.created_at)).all()
        out: dict[str, tuple[str, str]] = {}
        for cid, cname, props in rows:
            for p in props or []:
                out.setdefault(p["propertyName"], (cid, cname))
        return out

    def _get(self, s: Session, org_id: str, collection_id: str) -> Collection:
        c = s.scalar(select(Collection).where(Collection.org_id == org_id,
                                              (Collection.id == collection_id) | (Collection.name == collection_id)))
        if c is None or not current_access().allows_collection(c.id, c.name, c.entity_type):
            raise NotFound(f"collection {collection_id} not found")
        return c

    def _snapshot(self, s: Session, c: Collection, actor: str | None) -> None:
        s.add(CollectionVersion(org_id=c.org_id, collection_id=c.id, version=c.version, actor=actor,
                                created_at=utcnow(), snapshot={
                                    "name": c.name, "entityType": c.entity_type, "description": c.description,
                                    "properties": c.properties, "tags": c.tags,
                                    "archived": c.archived_at is not None}))


def schema_stamp(org_id: str, entity_type: str) -> tuple[Any, ...]:
    """Scalar subqueries that change whenever any collection of the type changes (in any process): how many,
    the sum of their versions, the newest change."""
    scope = (Collection.org_id == org_id, Collection.entity_type == entity_type)
    return tuple(select(agg).where(*scope).scalar_subquery()
                 for agg in (func.count(), func.sum(Collection.version), func.max(Collection.updated_at)))


def seed_starter_schema(db: Database, org_id: str) -> None:
    """Give a new org the starter entity types and collections (idempotent)."""
    cols = Collections(db)
    with db.session() as s:
        for name, desc in STARTER_ENTITY_TYPES.items():
            cols.ensure_entity_type(s, org_id, name, description=desc)
    existing = {c["collectionName"] for c in cols.list(org_id)}
    for spec in STARTER_COLLECTIONS:
        if spec["name"] not in existing:
            cols.create(org_id, name=spec["name"], entity_type=spec["entity_type"],
                        properties=spec["properties"], description=spec["description"], actor="system")
