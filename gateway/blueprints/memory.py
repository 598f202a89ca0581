"""Structured memory API: collections, entity types, records, properties, search, deletion."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from flask import Blueprint, request
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

from memrelay.engine.core.errors import BadRequest, ValidationFailed
from memrelay.engine.stores.identity import Identifiers
from memrelay.engine.stores.properties import Provenance
from memrelay.engine.stores.records import crm_keys, key_properties
from memrelay.engine.stores.search import (
    COUNT_CAP,
    FILTER_OPERATORS,
    Condition,
    Group,
    SearchQuery,
    check_page,
    decode_token,
    encode_token,
    search_page,
)
from memrelay.engine.stores.tenancy import KeyInfo
from memrelay.gateway.api import endpoint
from memrelay.gateway.schemas import memory as sch
from memrelay.gateway.state import state

bp = Blueprint("memory", __name__, url_prefix="/api/v1")


# --- request models ------------------------------------------------------------------------------
class ProvenanceFields(BaseModel):
    source: str = "api"
    sourceEventId: str | None = None
    sourceTimestamp: datetime | None = None
    confidence: float | None = Field(None, ge=0, le=1)

    def provenance(self, auth: KeyInfo) -> Provenance:
        return Provenance(source=self.source, source_event_id=self.sourceEventId, source_ts=self.sourceTimestamp,
                          actor=auth.key_id, confidence=self.confidence)


class IdentifiedRequest(Identifiers, ProvenanceFields):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    def ids(self) -> Identifiers:
        return Identifiers.model_validate(self.model_dump(include=set(Identifiers.model_fields)))


class CollectionCreate(BaseModel):
    collectionName: str = Field(min_length=1, max_length=200)
    entityType: str = Field("contact", min_length=1)
    description: str = ""
    properties: list[dict[str, Any]] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)


class CollectionUpdate(BaseModel):
    collectionName: str | None = None
    description: str | None = None
    properties: list[dict[str, Any]] | None = None
    tags: list[str] | None = None


class EntityTypeDisplay(BaseModel):
    """Personize's entity type display fields."""

    label: str | None = Field(None, min_length=1, max_length=100, description="Display label, e.g. 'Lead'.")
    pluralLabel: str | None = Field(None, min_length=1, max_length=100, description="Plural, e.g. 'Leads'.")
    icon: str | None = Field(None, max_length=100)
    color: str | None = Field(None, max_length=40, description="Hex (#4F46E5) or a colour name.")
    identifierColumn: str | None = Field(None, min_length=1, max_length=100,
                                         description="Property shown as the record's display identifier.")

    @model_validator(mode="before")
    @classmethod
    def _plural_alias(cls, data: Any) -> Any:
        if isinstance(data, dict) and "plural" in data and "pluralLabel" not in data:
            data = {**data, "pluralLabel": data["plural"]}
        return data

    def display(self) -> dict[str, Any]:
        return self.model_dump(include={"label", "pluralLabel", "icon", "color", "identifierColumn"},
                               exclude_none=True)


class EntityTypeCreate(EntityTypeDisplay):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z][A-Za-z0-9_\-]*$")
    description: str = ""
    primaryKeyField: str | None = Field(None, min_length=1, max_length=100,
                                        description="Identity of the records: email, website_url or a custom key.")
    secondaryKeys: list[str] | None = None


class EntityTypeUpdate(EntityTypeDisplay):
    """PATCH /entities/:id as Personize documents it: ``name`` is the display label; ``slug`` and
    ``isSystem`` cannot change (ignored); ``status: 'Active'`` restores, ``'Archived'`` archives."""

    model_config = ConfigDict(extra="ignore")

    name: str | None = Field(None, min_length=1, max_length=100, description="Display label (alias of label).")
    description: str | None = None
    primaryKeyField: str | None = Field(None, min_length=1, max_length=100)
    secondaryKeys: list[str] | None = None
    status: Literal["Active", "Archived"] | None = None

    def changes(self) -> dict[str, Any]:
        out = {**self.display(), **self.model_dump(include={"description", "primaryKeyField", "secondaryKeys",
                                                            "status"}, exclude_none=True)}
        if self.name is not None and self.label is None:
            out["label"] = self.name
        return out


class UpsertRequest(IdentifiedRequest):
    properties: dict[str, Any] = Field(default_factory=dict)
    expectedVersion: int | None = None


class UpdateRequest(IdentifiedRequest):
    """One property (value or array op), or a memory's text (``memoryId`` + ``text``)."""

    propertyName: str | None = None
    propertyValue: Any = None
    arrayPush: dict[str, Any] | None = None
    arrayRemove: dict[str, Any] | None = None
    arrayPatch: dict[str, Any] | None = None
    expectedVersion: int | None = None
    memoryId: str | None = None
    text: str | None = None

    @model_validator(mode="after")
    def _one_target(self) -> UpdateRequest:
        if not self.propertyName and not self.memoryId:
            raise ValueError("give 'propertyName' (with propertyValue or an array op) or 'memoryId' with 'text'")
        ops = [o for o in ("arrayPush", "arrayRemove", "arrayPatch") if getattr(self, o) is not None]
        if len(ops) > 1:
            raise ValueError("use at most one of arrayPush, arrayRemove, arrayPatch")
        if self.memoryId and not self.text:
            raise ValueError("'text' is required with 'memoryId'")
        return self


class PropertyUpdate(BaseModel):
    propertyName: str = Field(min_length=1)
    propertyValue: Any = None


class BulkUpdateRequest(IdentifiedRequest):
    """Personize's ``updates: [{propertyName, propertyValue}]`` or memrelay's ``properties: {name: value}``."""

    properties: dict[str, Any] = Field(default_factory=dict)
    updates: list[PropertyUpdate] = Field(default_factory=list)
    expectedVersion: int | None = None

    @model_validator(mode="after")
    def _some_values(self) -> BulkUpdateRequest:
        names = [u.propertyName for u in self.updates]
        dupes = sorted({n for n in names if names.count(n) > 1 or n in self.properties})
        if dupes:
            raise ValueError(f"properties given twice: {', '.join(dupes)}")
        if not self.properties and not self.updates:
            raise ValueError("give 'updates' ([{propertyName, propertyValue}]) or 'properties' ({name: value})")
        return self

    def values(self) -> dict[str, Any]:
        return {**self.properties, **{u.propertyName: u.propertyValue for u in self.updates}}


class HistoryRequest(IdentifiedRequest):
    propertyName: str | None = None
    limit: int | None = Field(None, description="Entries per page (Personize); overrides pageSize.")
    nextToken: str | None = None
    page: int = 1
    pageSize: int = 50


class RecallRequest(IdentifiedRequest):
    type: str | None = Field(None, description="Entity type; required (400 without it, as documented).")
    include_superseded: bool = False


class SearchRequest(IdentifiedRequest):
    groups: list[Group] = Field(default_factory=list)
    logic: Literal["AND", "OR"] = "AND"
    returnRecords: bool = True
    includeMemories: bool = False
    includeTotal: bool = Field(False, description=f"Count every match exactly; by default the count stops at "
                                                  f"{COUNT_CAP} matches and totalIsExact says whether it did.")
    page: int = 1
    pageSize: int = 50


class FilterCondition(BaseModel):
    propertyName: str
    operator: Literal["equals", "notEquals", "contains", "gt", "lt", "gte", "lte", "exists", "isEmpty", "in"]
    value: Any = None


class FilterRequest(IdentifiedRequest):
    conditions: list[FilterCondition] = Field(default_factory=list)
    logic: Literal["AND", "OR"] = "AND"
    limit: int = 50
    nextToken: str | None = None


class DeleteMemoriesRequest(IdentifiedRequest):
    memoryIds: list[str] | None = Field(None, validation_alias=AliasChoices("memoryIds", "ids"),
                                        description="Memory ids (Personize's delete({ids}) spelling: ids).")


# --- collections and entity types ---------------------------------------------------------------------
@endpoint(bp, "/collections", methods=("GET",), scope="read", response=sch.CollectionList,
          query=sch.CollectionListQuery)
def list_collections(auth: KeyInfo) -> dict[str, Any]:
    """List the org's collections (property schemas), as Personize answers ``collections.list()``:
    ``actions[]`` of ``{id, type: 'collection', payload: {collectionId, collectionName, ...}}`` with ``count``;
    memrelay's ``collections`` (the same items, flat) alongside."""
    collections = state().services.collections.list(auth.org_id, entity_type=request.args.get("type"))
    actions = [{"id": c["collectionId"], "type": "collection", "payload": c} for c in collections]
    return {"collections": collections, "actions": actions, "count": len(actions), "nextToken": None}


@endpoint(bp, "/collections", methods=("POST",), scope="write", body=CollectionCreate, response=sch.Collection,
          status=201, errors=(409,))
def create_collection(auth: KeyInfo, body: CollectionCreate) -> tuple[dict[str, Any], int]:
    """Create a collection of typed properties for an entity type."""
    return state().services.collections.create(auth.org_id, name=body.collectionName, entity_type=body.entityType,
                                               properties=body.properties, description=body.description,
                                               tags=body.tags, actor=auth.key_id), 201


@endpoint(bp, "/collections/<collection_id>", methods=("GET",), scope="read", response=sch.Collection)
def get_collection(auth: KeyInfo, collection_id: str) -> dict[str, Any]:
    """One collection."""
    return state().services.collections.get(auth.org_id, collection_id)


@endpoint(bp, "/collections/<collection_id>", methods=("PUT", "PATCH"), scope="write", body=CollectionUpdate,
          response=sch.Collection, errors=(409,))
def update_collection(auth: KeyInfo, body: CollectionUpdate, collection_id: str) -> dict[str, Any]:
    """Change a collection; every change is a new version."""
    return state().services.collections.update(auth.org_id, collection_id, actor=auth.key_id,
                                               name=body.collectionName, description=body.description,
                                               properties=body.properties, tags=body.tags)


@endpoint(bp, "/collections/<collection_id>", methods=("DELETE",), scope="write", response=sch.Collection)
def archive_collection(auth: KeyInfo, collection_id: str) -> dict[str, Any]:
    """Archive a collection (its history is kept)."""
    return state().services.collections.archive(auth.org_id, collection_id, actor=auth.key_id)


@endpoint(bp, "/collections/<collection_id>/history", methods=("GET",), scope="read",
          response=sch.CollectionHistory, query=sch.CollectionHistoryQuery)
def collection_history(auth: KeyInfo, collection_id: str) -> dict[str, Any]:
    """Every version of a collection; ``?mode=diff`` for unified diffs."""
    mode = request.args.get("mode", "full")
    if mode not in ("full", "diff"):
        raise BadRequest("mode must be 'full' or 'diff'")
    return {"collectionId": collection_id,
            "versions": state().services.collections.history(auth.org_id, collection_id, mode=mode)}


@endpoint(bp, "/entities", methods=("GET",), scope="read", response=sch.EntityTypeList, query=sch.EntityListQuery)
def list_entities(auth: KeyInfo) -> list[dict[str, Any]]:
    """Entity types, as Personize answers ``entityTypes.list()``: ``data`` is the array
    (``?includeArchived=true`` to see archived ones)."""
    include = request.args.get("includeArchived", "false").lower() == "true"
    return state().services.collections.list_entity_types(auth.org_id, include_archived=include)


@endpoint(bp, "/entities", methods=("POST",), scope="write", body=EntityTypeCreate, response=sch.EntityType,
          status=201, errors=(409,))
def create_entity(auth: KeyInfo, body: EntityTypeCreate) -> tuple[dict[str, Any], int]:
    """Create a custom entity type (with its primary key field and display fields)."""
    return state().services.collections.create_entity_type(
        auth.org_id, body.name, body.description, primary_key_field=body.primaryKeyField,
        secondary_keys=body.secondaryKeys, display=body.display()), 201


@endpoint(bp, "/entities/<ref>", methods=("GET",), scope="read", response=sch.EntityType, errors=(422,))
def get_entity(auth: KeyInfo, ref: str) -> dict[str, Any]:
    """One entity type by id or name (unknown: 422 listing the known ones)."""
    return state().services.collections.get_entity_type(auth.org_id, ref)


@endpoint(bp, "/entities/<ref>", methods=("PATCH",), scope="admin", body=EntityTypeUpdate, response=sch.EntityType,
          errors=(409,))
def update_entity(auth: KeyInfo, body: EntityTypeUpdate, ref: str) -> dict[str, Any]:
    """Rename (label), re-icon, re-colour, describe, re-key an empty type, or archive/restore via ``status``."""
    return state().services.collections.update_entity_type(auth.org_id, ref, body.changes())


@endpoint(bp, "/entity-types/<ref>", methods=("PATCH",), scope="admin", body=EntityTypeUpdate,
          response=sch.EntityType, errors=(409,))
def update_entity_type(auth: KeyInfo, body: EntityTypeUpdate, ref: str) -> dict[str, Any]:
    """``PATCH /entity-types/:id`` (Personize's reference spelling of ``PATCH /entities/:id``)."""
    return state().services.collections.update_entity_type(auth.org_id, ref, body.changes())


@endpoint(bp, "/entities/<ref>", methods=("DELETE",), scope="admin", response=sch.EntityType, errors=(422,))
def delete_entity(auth: KeyInfo, ref: str) -> dict[str, Any]:
    """Archive a custom entity type (soft; system types answer 403); restore with ``status: 'Active'``."""
    return state().services.collections.set_entity_type_archived(auth.org_id, ref, True)


@endpoint(bp, "/entities/<ref>/archive", methods=("POST",), scope="write", response=sch.EntityType, errors=(422,))
def archive_entity(auth: KeyInfo, ref: str) -> dict[str, Any]:
    """Archive a custom entity type by id or name (system types answer 403)."""
    return state().services.collections.set_entity_type_archived(auth.org_id, ref, True)


@endpoint(bp, "/entity-types/<ref>/archive", methods=("POST",), scope="admin", response=sch.EntityType,
          errors=(422,))
def archive_entity_type(auth: KeyInfo, ref: str) -> dict[str, Any]:
    """``POST /entity-types/:id/archive`` (Personize's reference spelling)."""
    return state().services.collections.set_entity_type_archived(auth.org_id, ref, True)


@endpoint(bp, "/entities/<ref>/restore", methods=("POST",), scope="write", response=sch.EntityType, errors=(422,))
def restore_entity(auth: KeyInfo, ref: str) -> dict[str, Any]:
    """Restore an archived entity type by id or name."""
    return state().services.collections.set_entity_type_archived(auth.org_id, ref, False)


# --- records and properties -----------------------------------------------------------------------
@endpoint(bp, "/upsert", methods=("POST",), scope="write", body=UpsertRequest, response=sch.UpsertResult,
          errors=(404, 409), example={"email": "ada@acme.example", "type": "contact",
                                      "properties": {"job_title": "CTO"}})
def upsert(auth: KeyInfo, body: UpsertRequest) -> dict[str, Any]:
    """Structured write (no AI): find or create the record by any key, write typed properties."""
    return state().services.records.upsert(auth.org_id, body.ids(), body.properties, body.provenance(auth),
                                           expected_version=body.expectedVersion)


@endpoint(bp, "/memory/update", methods=("POST",), scope="write", body=UpdateRequest, response=sch.UpdateResult,
          errors=(404, 409))
def update(auth: KeyInfo, body: UpdateRequest) -> dict[str, Any]:
    """Update one property (replace, or arrayPush/arrayRemove/arrayPatch) or a memory's text.

    Answers Personize's ``previousValue``, ``newValue``, ``version`` and ``stores`` with memrelay's record
    summary."""
    services = state().services
    if body.memoryId:
        mem = services.memories.update_text(auth.org_id, body.memoryId, body.text or "", body.provenance(auth))
        return {**mem, "newValue": mem.get("text"),
                "stores": {"snapshot": "skipped", "freeform": "updated", "lancedb": "updated"}}
    ops = {o: getattr(body, o) for o in ("arrayPush", "arrayRemove", "arrayPatch") if getattr(body, o) is not None}
    name = body.propertyName or ""
    if not ops and "propertyValue" not in body.model_fields_set:
        raise ValidationFailed("'propertyValue' or an array operation is required with 'propertyName'")
    out = services.records.update(auth.org_id, body.ids(), body.provenance(auth),
                                  properties=None if ops else {name: body.propertyValue},
                                  array_ops={name: ops} if ops else None, expected_version=body.expectedVersion)
    (change,) = out.pop("results")
    return {**out, "propertyName": name, "previousValue": change["previousValue"], "newValue": change["newValue"],
            "stores": {"snapshot": "updated" if change["changed"] else "skipped", "freeform": "skipped",
                       "lancedb": "skipped"}}


@endpoint(bp, "/memory/bulk-update", methods=("POST",), scope="write", body=BulkUpdateRequest,
          response=sch.BulkUpdateResult, errors=(404, 409))
def bulk_update(auth: KeyInfo, body: BulkUpdateRequest) -> dict[str, Any]:
    """Update several properties of one record atomically; ``results`` per property as Personize answers."""
    return state().services.records.update(auth.org_id, body.ids(), body.provenance(auth),
                                           properties=body.values(), expected_version=body.expectedVersion)


@endpoint(bp, "/memory/property-history", methods=("POST",), scope="read", body=HistoryRequest,
          response=sch.PropertyHistory, errors=(404, 409))
def property_history(auth: KeyInfo, body: HistoryRequest) -> dict[str, Any]:
    """Write history of one property or all, newest first (stale writes included): ``entries`` with
    ``limit``/``nextToken`` paging (Personize), ``items`` with ``page``/``pageSize`` (memrelay)."""
    offset = decode_token(body.nextToken) if body.nextToken else None
    return state().services.records.history(auth.org_id, body.ids(), property_name=body.propertyName,
                                            page=body.page, page_size=body.limit or body.pageSize, offset=offset)


@endpoint(bp, "/recall", methods=("POST",), scope="read", body=RecallRequest, response=sch.RecallResult,
          errors=(404, 409), example={"type": "contact", "email": "ada@acme.example"})
def recall(auth: KeyInfo, body: RecallRequest) -> dict[str, Any]:
    """Direct lookup (Personize's recall): ``memories`` (structured properties), ``freeformMemories``, their
    counts, ``systemIntro``; type required."""
    return state().services.memories.recall(auth.org_id, body.ids(), body.type,
                                            include_superseded=body.include_superseded)


def _search(auth: KeyInfo, q: SearchQuery, return_records: bool, *, include_memories: bool = False,
            include_total: bool = False) -> tuple[list[dict[str, Any]], int, dict[str, Any]]:
    """A page of matching records (rendered, or ``{recordId, type}``), the total, and Personize's views of
    the page: ``records`` map, ``crmKeys`` and (on request) ``memories`` per record id."""
    services = state().services
    extra: dict[str, Any] = {}
    with services.db.read() as s:
        found = search_page(s, services.collections, auth.org_id, q, count_limit=None if include_total else COUNT_CAP)
        rows, total, extra["totalIsExact"] = found.rows, found.total, found.total_is_exact
        if not return_records:
            return [{"recordId": r.id, "type": r.entity_type} for r in rows], total, extra
        items = services.records.render(s, rows)
        extra["records"] = services.records.documented_records(s, auth.org_id, items)
        if include_memories:
            extra["memories"] = {r.id: services.memories.list_for_record(s, r.id) for r in rows}
    for item in items:
        item.update({k: v for k, v in item["keys"].items() if k in ("email", "website_url")})
    extra["crmKeys"] = {item["recordId"]: crm_keys(item) for item in items}
    return items, total, extra


@endpoint(bp, "/search", methods=("POST",), scope="read", body=SearchRequest, response=sch.SearchResult,
          example={"type": "contact", "groups": [{"conditions": [
              {"property": "job_title", "operator": "EQ", "value": "CTO"}]}], "pageSize": 10})
def search(auth: KeyInfo, body: SearchRequest) -> dict[str, Any]:
    """Filter records by grouped property or key conditions and/or keys; cross-type without ``type``.

    Personize's answer: ``recordIds``, ``totalMatched``, ``page``, ``pageSize``, ``totalPages``, ``records``
    (``{recordId: {property: {value, collectionId, collectionName}}}``), ``crmKeys``; memrelay's list of
    rendered records (keys, properties with provenance) is ``results``."""
    check_page(body.page, body.pageSize)
    q = SearchQuery(identifiers=body.ids(), groups=body.groups, logic=body.logic,
                    offset=(body.page - 1) * body.pageSize, limit=body.pageSize)
    items, total, extra = _search(auth, q, body.returnRecords, include_memories=body.includeMemories,
                                  include_total=body.includeTotal)
    return {"recordIds": [r["recordId"] for r in items], "totalMatched": total, "page": body.page,
            "pageSize": body.pageSize, "totalPages": -(-total // body.pageSize), **extra, "results": items,
            "total": total, "hasMore": body.page * body.pageSize < total}


@endpoint(bp, "/memory/filter-by-property", methods=("POST",), scope="read", body=FilterRequest,
          response=sch.FilterResult)
def filter_by_property(auth: KeyInfo, body: FilterRequest) -> dict[str, Any]:
    """Personize-style property filter with ``limit`` + ``nextToken`` paging.

    Each record carries ``matchedProperties`` and ``lastUpdatedAt`` (epoch ms) as Personize answers, with
    memrelay's keys and properties."""
    check_page(1, body.limit)
    offset = decode_token(body.nextToken)
    group = Group(logic=body.logic, conditions=[
        Condition(property=c.propertyName, operator=FILTER_OPERATORS[c.operator], value=c.value)
        for c in body.conditions])
    q = SearchQuery(identifiers=body.ids(), groups=[group], offset=offset, limit=body.limit)
    items, total, _ = _search(auth, q, True)
    names = [c.propertyName for c in body.conditions]
    for item in items:
        values = {**key_properties(item["keys"]), **{n: p["value"] for n, p in item["properties"].items()}}
        item["matchedProperties"] = {n: values.get(n) for n in names}
        item["lastUpdatedAt"] = _epoch_ms(item.get("updatedAt"))
    nxt = offset + len(items)
    return {"records": items, "totalMatched": total, "total": total,
            "nextToken": encode_token(nxt) if nxt < total else None}


def _epoch_ms(value: str | None) -> int | None:
    return int(datetime.fromisoformat(value).timestamp() * 1000) if value else None


# --- deletion ------------------------------------------------------------------------------------
@endpoint(bp, "/memory/delete", methods=("POST",), scope="write", body=DeleteMemoriesRequest,
          response=sch.DeletedMemories, errors=(404, 409))
def delete_memories(auth: KeyInfo, body: DeleteMemoriesRequest) -> dict[str, Any]:
    """Soft-delete memories by id, or all memories of a record (restorable with cancel-deletion)."""
    ids = body.ids()
    if not body.memoryIds and not ids.keys():
        raise BadRequest("give 'memoryIds' or identifiers of a record")
    return state().services.memories.delete(auth.org_id, memory_ids=body.memoryIds,
                                            ids=ids if ids.keys() else None)


@endpoint(bp, "/memory/delete-record", methods=("POST",), scope="write", body=IdentifiedRequest,
          response=sch.RecordSummary, errors=(404, 409))
def delete_record(auth: KeyInfo, body: IdentifiedRequest) -> dict[str, Any]:
    """Soft-delete a record: hidden everywhere at once, recoverable for the retention window."""
    body.ids().require_any()
    return state().services.records.soft_delete(auth.org_id, body.ids(), actor=auth.key_id)


@endpoint(bp, "/memory/cancel-deletion", methods=("POST",), scope="write", body=DeleteMemoriesRequest,
          response=sch.CancelledDeletion, errors=(404, 409))
def cancel_deletion(auth: KeyInfo, body: DeleteMemoriesRequest) -> dict[str, Any]:
    """Undo a soft delete within the retention window: memories by id, a record's deleted memories, or a
    deleted record."""
    ids = body.ids()
    if not body.memoryIds:
        ids.require_any()
    return state().services.memories.cancel_deletion(auth.org_id, memory_ids=body.memoryIds,
                                                     ids=ids if ids.keys() else None)


@endpoint(bp, "/memory/erase-record", methods=("POST",), scope="admin", body=IdentifiedRequest,
          response=sch.Erasure, errors=(404, 409))
def erase_record(auth: KeyInfo, body: IdentifiedRequest) -> dict[str, Any]:
    """GDPR erasure: immediate hard delete everywhere, audited without personal data."""
    body.ids().require_any()
    result = state().services.records.erase(auth.org_id, body.ids(), actor=auth.key_id)
    state().services.index.reconcile()
    return result
