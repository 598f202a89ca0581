"""Salesforce's backfill pager (:class:`memrelay.connectors.pager.Pager`): imported by
:func:`memrelay.connectors.sync.build_pager` when a Salesforce source syncs, with simple_salesforce."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from memrelay.connectors.crm_http import mapping_fields
from memrelay.connectors.mapping import MappingSpec
from memrelay.connectors.pager import SyncPage
from memrelay.connectors.salesforce import api as salesforce_api
from memrelay.connectors.timeutil import parse_datetime


class SalesforcePager:
    """SOQL ``LastModifiedDate >= since ORDER BY LastModifiedDate, Id`` along ``nextRecordsUrl``; the cursor
    is the last written ``LastModifiedDate`` and the Ids written at that instant (keyset, exact resume).
    With ``bulk``, Bulk API 2.0 jobs (unordered): an interrupted object restarts from its beginning."""

    connector = "salesforce"

    def __init__(self, api: salesforce_api.SalesforceApi, mapping: MappingSpec, object_types: list[str], *,
                 bulk: bool = False):
        self.api, self.bulk, self.object_types = api, bulk, object_types
        self.fields = {t: api.fields_for(t, mapping_fields(mapping, t)) for t in object_types}

    def pages(self, object_type: str, state: Mapping[str, Any], since: datetime | None) -> Iterator[SyncPage]:
        fields = self.fields[object_type]
        if self.bulk:
            yield from self._bulk_pages(object_type, fields, since)
            return
        last = parse_datetime(state.get("ts"))
        seen = set(state.get("ids", []))
        query = self.api.modified_since(object_type, fields, last or since)
        for page in query:
            fresh = [r for r in page.records if not self._already_written(r, last, seen)]
            for record in fresh:
                ts = salesforce_api.modified_at(record)
                if ts is not None and (last is None or ts > last):
                    last, seen = ts, set()
                if ts is not None and ts == last:
                    seen.add(record["Id"])
            state = {"ts": last.isoformat() if last else None, "ids": sorted(seen)}
            yield SyncPage(object_type, fresh, state, done=False, total=page.total)
        yield SyncPage(object_type, [], {"ts": last.isoformat() if last else None, "ids": sorted(seen)}, done=True)

    def _bulk_pages(self, object_type: str, fields: list[str], since: datetime | None) -> Iterator[SyncPage]:
        for page in self.api.bulk_modified_since(object_type, fields, since):
            yield SyncPage(object_type, page.records, {}, done=False)
        yield SyncPage(object_type, [], {}, done=True)

    @staticmethod
    def _already_written(record: Mapping[str, Any], last: datetime | None, seen: set[str]) -> bool:
        if last is None:
            return False
        ts = salesforce_api.modified_at(record)
        return ts is not None and (ts < last or (ts == last and record.get("Id") in seen))

    def record_time(self, record: Mapping[str, Any]) -> datetime | None:
        return salesforce_api.modified_at(record)

    def pause_reason(self) -> str | None:
        used = self.api.api_usage()
        if used is not None and used >= self.api.max_api_usage:
            return f"Salesforce API usage at {used:.0%} of the daily limit (max_api_usage {self.api.max_api_usage:.0%})"
        return None
