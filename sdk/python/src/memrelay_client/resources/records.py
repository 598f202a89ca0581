"""Structured records: upsert, get, update, bulk update, property history, search (with paging iterators),
and the deletion lifecycle (soft delete, cancel, GDPR erase)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, Unpack

from memrelay_client._decode import one
from memrelay_client._protocol import Call, Paged
from memrelay_client._resource import ModeT, Resource, operation, paginated
from memrelay_client.models._base import RecordKeys, RecordRef, drop_none, identifiers
from memrelay_client.models.records import (
    DeletedRecord,
    Erasure,
    FilterPage,
    PropertyHistory,
    RecalledRecord,
    Record,
    SearchGroup,
    SearchPage,
    WriteResult,
)
from memrelay_client.resources.memory import recall_call

Logic = Literal["AND", "OR"]
FilterOperator = Literal["equals", "notEquals", "contains", "gt", "lt", "gte", "lte", "exists", "isEmpty", "in"]
_UNSET: Any = object()


def _provenance(source: str | None, source_event_id: str | None, source_timestamp: datetime | None,
                confidence: float | None) -> dict[str, Any]:
    return drop_none(source=source, sourceEventId=source_event_id, confidence=confidence,
                     sourceTimestamp=None if source_timestamp is None else source_timestamp.isoformat())


def _search_call(record: RecordRef, groups: Sequence[SearchGroup], logic: Logic, return_records: bool,
                 page: int, page_size: int) -> Call[SearchPage]:
    body = {**identifiers(record), "groups": [g.body() for g in groups], "logic": logic,
            "returnRecords": return_records, "page": page, "pageSize": page_size}
    return Call("POST", "/search", one(SearchPage), json=body)


def _filter_call(record: RecordRef, conditions: Sequence[Mapping[str, Any]], logic: Logic, limit: int,
                 next_token: str | None) -> Call[FilterPage]:
    body = {**identifiers(record), "conditions": [dict(c) for c in conditions], "logic": logic, "limit": limit,
            **drop_none(nextToken=next_token)}
    return Call("POST", "/memory/filter-by-property", one(FilterPage), json=body)


class Records(Resource[ModeT]):
    """``client.records``: typed properties of records, found by any of their keys."""

    @operation
    def upsert(self, properties: Mapping[str, Any], *, expected_version: int | None = None,
               source: str | None = None, source_event_id: str | None = None,
               source_timestamp: datetime | None = None, confidence: float | None = None,
               **record: Unpack[RecordRef]) -> Call[WriteResult]:
        """Find or create the record by any key and write typed properties (no AI). A write older than the
        stored value (by ``source_timestamp``) is recorded but not applied (``stale``)."""
        body = {**identifiers(record), "properties": dict(properties),
                **_provenance(source, source_event_id, source_timestamp, confidence),
                **drop_none(expectedVersion=expected_version)}
        return Call("POST", "/upsert", one(WriteResult), json=body)

    @operation
    def get(self, *, type: str, include_superseded: bool = False,  # noqa: A002 - the API's name
            **record: Unpack[RecordKeys]) -> Call[RecalledRecord]:
        """The record (properties with provenance, and memories) by any of its keys; ``type`` is required."""
        return recall_call(type, include_superseded, record)

    @operation
    def update(self, property_name: str, value: Any = _UNSET, *, array_push: Mapping[str, Any] | None = None,
               array_remove: Mapping[str, Any] | None = None, array_patch: Mapping[str, Any] | None = None,
               expected_version: int | None = None, source: str | None = None,
               source_event_id: str | None = None, source_timestamp: datetime | None = None,
               confidence: float | None = None, **record: Unpack[RecordRef]) -> Call[WriteResult]:
        """Set one property to ``value`` (``None`` clears it), or change an array property with one of
        ``array_push`` / ``array_remove`` / ``array_patch``."""
        ops = drop_none(arrayPush=array_push, arrayRemove=array_remove, arrayPatch=array_patch)
        if value is _UNSET and not ops:
            raise TypeError("update() needs a value or one of array_push, array_remove, array_patch")
        body = {**identifiers(record), "propertyName": property_name,
                **({k: dict(v) for k, v in ops.items()} if ops else {"propertyValue": value}),
                **_provenance(source, source_event_id, source_timestamp, confidence),
                **drop_none(expectedVersion=expected_version)}
        return Call("POST", "/memory/update", one(WriteResult), json=body)

    @operation
    def bulk_update(self, properties: Mapping[str, Any], *, expected_version: int | None = None,
                    source: str | None = None, source_event_id: str | None = None,
                    source_timestamp: datetime | None = None, confidence: float | None = None,
                    **record: Unpack[RecordRef]) -> Call[WriteResult]:
        """Update several properties of one existing record atomically."""
        body = {**identifiers(record), "properties": dict(properties),
                **_provenance(source, source_event_id, source_timestamp, confidence),
                **drop_none(expectedVersion=expected_version)}
        return Call("POST", "/memory/bulk-update", one(WriteResult), json=body)

    @operation
    def property_history(self, property_name: str | None = None, *, page: int = 1, page_size: int = 50,
                         **record: Unpack[RecordRef]) -> Call[PropertyHistory]:
        """Write history of one property (or all), newest first, stale writes included."""
        body = {**identifiers(record), "page": page, "pageSize": page_size, **drop_none(propertyName=property_name)}
        return Call("POST", "/memory/property-history", one(PropertyHistory), json=body)

    @operation
    def search(self, groups: Sequence[SearchGroup] = (), *, logic: Logic = "AND", return_records: bool = True,
               page: int = 1, page_size: int = 50, **record: Unpack[RecordRef]) -> Call[SearchPage]:
        """One page of records matching grouped property conditions and/or keys (``type`` narrows)."""
        return _search_call(record, groups, logic, return_records, page, page_size)

    @paginated
    def iter_search(self, groups: Sequence[SearchGroup] = (), *, logic: Logic = "AND", return_records: bool = True,
                    page_size: int = 200, **record: Unpack[RecordRef]) -> Paged[Record, SearchPage]:
        """Every matching record, fetching ``/search`` pages of ``page_size`` as the iteration goes."""

        def next_call(page: SearchPage) -> Call[SearchPage] | None:
            return _search_call(record, groups, logic, return_records, page.page + 1, page_size) if page.more() else None

        return Paged(_search_call(record, groups, logic, return_records, 1, page_size), next_call,
                     lambda page: page.results)

    @operation
    def filter_by_property(self, conditions: Sequence[Mapping[str, Any]], *, logic: Logic = "AND",
                           limit: int = 50, next_token: str | None = None,
                           **record: Unpack[RecordRef]) -> Call[FilterPage]:
        """Personize's property filter: ``conditions`` are ``{"propertyName", "operator", "value"}``
        (operators: equals, notEquals, contains, gt, lt, gte, lte, exists, isEmpty, in); ``next_token`` pages."""
        return _filter_call(record, conditions, logic, limit, next_token)

    @paginated
    def iter_filter_by_property(self, conditions: Sequence[Mapping[str, Any]], *, logic: Logic = "AND",
                                limit: int = 200, **record: Unpack[RecordRef]) -> Paged[Record, FilterPage]:
        """Every record the filter matches, following ``nextToken``."""

        def next_call(page: FilterPage) -> Call[FilterPage] | None:
            return _filter_call(record, conditions, logic, limit, page.next_token) if page.next_token else None

        return Paged(_filter_call(record, conditions, logic, limit, None), next_call, lambda page: page.records)

    @operation
    def delete(self, **record: Unpack[RecordRef]) -> Call[DeletedRecord]:
        """Soft-delete the record: hidden everywhere at once, recoverable until ``purge_after``."""
        return Call("POST", "/memory/delete-record", one(DeletedRecord), json=identifiers(record))

    @operation
    def cancel_deletion(self, **record: Unpack[RecordRef]) -> Call[DeletedRecord]:
        """Undo a soft delete within the retention window."""
        return Call("POST", "/memory/cancel-deletion", one(DeletedRecord), json=identifiers(record))

    @operation
    def erase(self, **record: Unpack[RecordRef]) -> Call[Erasure]:
        """GDPR erasure (admin scope): immediate hard delete everywhere, audited without personal data."""
        return Call("POST", "/memory/erase-record", one(Erasure), json=identifiers(record))
