"""HubSpot's backfill pager (:class:`memrelay.connectors.pager.Pager`): imported by
:func:`memrelay.connectors.sync.build_pager` when a HubSpot source syncs, with the HubSpot SDK it needs."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from memrelay.connectors.crm_http import mapping_fields
from memrelay.connectors.hubspot import api as hubspot_api
from memrelay.connectors.mapping import MappingSpec
from memrelay.connectors.pager import SyncPage
from memrelay.connectors.timeutil import parse_datetime


class HubSpotPager:
    """Search API (``lastmodifieddate >= since``, oldest first) or list API (everything, by id), 100 a page."""

    connector = "hubspot"

    def __init__(self, api: hubspot_api.HubSpotApi, mapping: MappingSpec, object_types: list[str],
                 limit: int = hubspot_api.PAGE_LIMIT):
        self.api, self.limit, self.object_types = api, limit, object_types
        self.properties = {t: api.properties_for(t, mapping_fields(mapping, t)) for t in object_types}

    def pages(self, object_type: str, state: Mapping[str, Any], since: datetime | None) -> Iterator[SyncPage]:
        after = state.get("after")
        window = parse_datetime(state.get("since")) or since
        props = self.properties[object_type]
        while True:
            if window is None:
                page = self.api.list_page(object_type, after=after, properties=props, limit=self.limit)
            else:
                page = self.api.search_page(object_type, since=window, after=after, properties=props, limit=self.limit)
            after = page.after
            if window is not None and after is not None and after.isdigit() \
                    and int(after) + self.limit > hubspot_api.SEARCH_RESULT_CAP and page.records:
                # the search API stops at 10,000 results: continue with a new query from the last time seen
                window = max((t for r in page.records if (t := self.record_time(r))), default=window)
                after = None
            state = {"after": after, "since": window.isoformat() if window else None}
            yield SyncPage(object_type, page.records, state, done=page.after is None, total=page.total)
            if page.after is None:
                return

    def record_time(self, record: Mapping[str, Any]) -> datetime | None:
        return parse_datetime(record.get("lastmodifieddate") or record.get("hs_lastmodifieddate"))

    def pause_reason(self) -> str | None:
        return None
