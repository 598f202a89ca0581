"""HubSpot CRM API through hubspot-api-client: batch reads (webhook fetch) and paged listings (backfill).

Source options (``SourceConfig.options`` / the stored source's ``config``):

- ``access_token``: private-app or OAuth token (required for any API call).
- ``api_base``: the SDK ``Configuration.host`` (default ``https://api.hubapi.com``).
- ``properties``: ``{object_type: [extra property names]}`` to read besides the mapping's fields.
- ``max_retries`` (default 6), ``timeout_s`` (default 30).

Records come back flat, ``{"id": ..., **properties}``, which is what the HubSpot mapping file reads.
Every request goes through the guarded transport (:func:`memrelay.connectors.crm_http.guarded_pool_manager`,
installed through the SDK's ``api_factory`` hook): the configured ``api_base`` is trusted, nothing else is.
429 and 5xx answers are retried (tenacity), waiting for ``Retry-After`` or, when HubSpot sends its
rate-limit headers instead, for the rest of the rolling interval; a daily-limit 429 is not retried.
The final error is raised as ``UpstreamError`` (``RateLimited`` for 429) — never swallowed.
"""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import ModuleType
from typing import Any, TypeVar

import hubspot
from hubspot.discovery.discovery_base import DiscoveryBase
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.util.retry import Retry

from memrelay.connectors.base import InboundEvent, SourceConfig
from memrelay.connectors.crm_http import (
    DEFAULT_ATTEMPTS,
    call_with_retry,
    guarded_pool_manager,
    header_value,
    mapping_fields,
)
from memrelay.connectors.mapping import load_default_mapping
from memrelay.engine.core.backoff import retry_after
from memrelay.engine.core.errors import ConfigError, NotFound, RateLimited, UpstreamError
from memrelay.engine.egress.crm_hosts import check_crm_base

T = TypeVar("T")

DEFAULT_HOST = "https://api.hubapi.com"
OBJECT_APIS = {"contact": "contacts", "company": "companies", "deal": "deals", "ticket": "tickets"}
"""memrelay object type -> SDK discovery name (``client.crm.<name>``) and URL segment."""
BATCH_READ_MAX = 100
PAGE_LIMIT = 100
SEARCH_RESULT_CAP = 10_000
"""HubSpot's search API returns at most 10,000 results per query; past that, re-query from the last time."""
DEFAULT_PROPERTIES: dict[str, tuple[str, ...]] = {
    "contact": ("email", "firstname", "lastname", "jobtitle", "company", "phone", "website", "lifecyclestage",
                "city", "country", "lastmodifieddate"),
    "company": ("name", "domain", "website", "industry", "numberofemployees", "annualrevenue", "city", "country",
                "hs_lastmodifieddate"),
    "deal": ("dealname", "amount", "dealstage", "pipeline", "closedate", "hubspot_owner_id", "hs_lastmodifieddate"),
    "ticket": ("subject", "content", "hs_pipeline_stage", "hs_ticket_priority", "hs_lastmodifieddate"),
}
_VALID_PROPERTY = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


def modified_property(object_type: str) -> str:
    """The last-modified property the search API filters and sorts on."""
    return "lastmodifieddate" if object_type == "contact" else "hs_lastmodifieddate"


def is_configured(options: Mapping[str, Any]) -> bool:
    return bool(options.get("access_token"))


@dataclass(frozen=True)
class Page:
    """One page of flat records and the token for the next one (``None``: last page)."""

    records: list[dict[str, Any]]
    after: str | None
    total: int | None = None


def flatten(object_type: str, obj: Any) -> dict[str, Any]:
    """``{"id", **properties}``; the last-modified property falls back to the object's ``updatedAt``."""
    record: dict[str, Any] = {"id": str(obj.id)}
    record.update({k: v for k, v in (obj.properties or {}).items() if v is not None and k != "id"})
    if getattr(obj, "updated_at", None) is not None:
        record.setdefault(modified_property(object_type), obj.updated_at.isoformat())
    return record


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _is_daily_limit(exc: BaseException) -> bool:
    body = getattr(exc, "body", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        return isinstance(body, str) and json.loads(body).get("policyName") == "DAILY"
    except (ValueError, AttributeError):
        return False


def retryable(exc: BaseException) -> bool:
    """429 (except the daily limit), 5xx, and connection-level failures."""
    if isinstance(exc, Urllib3Error):
        return True
    status = getattr(exc, "status", None)
    if not isinstance(status, int):
        return False
    return (status == 429 and not _is_daily_limit(exc)) or status >= 500


def server_wait(exc: BaseException) -> float | None:
    """Seconds HubSpot asked us to wait: ``Retry-After``, else the rolling interval when none remain."""
    headers = getattr(exc, "headers", None)
    asked = retry_after(headers)
    if asked is not None:
        return asked
    if getattr(exc, "status", None) == 429:
        interval_ms = header_value(headers, "X-HubSpot-RateLimit-Interval-Milliseconds")
        remaining = header_value(headers, "X-HubSpot-RateLimit-Remaining")
        if interval_ms and interval_ms.isdigit() and remaining in (None, "0"):
            return int(interval_ms) / 1000
    return None


class HubSpotApi:
    """A thin, retrying facade over ``hubspot.Client`` for one source."""

    def __init__(self, options: Mapping[str, Any], *, sleep: Callable[[float], None] = time.sleep):
        token = options.get("access_token")
        if not token:
            raise ConfigError("the HubSpot source has no access_token in its config")
        # urllib3 would silently retry GETs on 429 + Retry-After; tenacity owns every retry instead.
        host = check_crm_base("hubspot", str(options.get("api_base") or DEFAULT_HOST).rstrip("/"))
        transport = guarded_pool_manager(host, retries=Retry(total=0))

        def api_factory(api_client_package: ModuleType, api_name: str, config: dict[str, Any]) -> Any:
            api = DiscoveryBase._default_api_factory(api_client_package, api_name, config)
            api.api_client.rest_client.pool_manager = transport  # the SDK's urllib3 pool, guarded
            return api

        self.client = hubspot.Client.create(access_token=str(token), retry=Retry(total=0), host=host,
                                            api_factory=api_factory)
        self.extra_properties: Mapping[str, list[str]] = options.get("properties") or {}
        self.attempts = int(options.get("max_retries", DEFAULT_ATTEMPTS - 1)) + 1
        self.timeout = float(options.get("timeout_s", 30))
        self.sleep = sleep
        self._apis: dict[str, Any] = {}  # each ``client.crm.<name>`` access builds a new ApiClient

    # -- plumbing -----------------------------------------------------------------------------------

    @staticmethod
    def _name(object_type: str) -> str:
        name = OBJECT_APIS.get(object_type)
        if name is None:
            raise NotFound(f"HubSpot object type {object_type!r} is not supported",
                           details={"supported": sorted(OBJECT_APIS)})
        return name

    def _discovery(self, object_type: str) -> Any:
        name = self._name(object_type)
        if name not in self._apis:
            self._apis[name] = getattr(self.client.crm, name)
        return self._apis[name]

    def _models(self, object_type: str) -> ModuleType:
        return importlib.import_module(f"hubspot.crm.{self._name(object_type)}")

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return call_with_retry(fn, what=what, retryable=retryable, server_wait=server_wait,
                                   attempts=self.attempts, sleep=self.sleep)
        except Exception as exc:
            status = getattr(exc, "status", None)
            if status is None and not isinstance(exc, Urllib3Error):
                raise
            details = {"status": status, "reason": getattr(exc, "reason", None) or str(exc)[:200]}
            message = f"{what} failed: HTTP {status or 'connection error'}"
            if status == 429:
                wait = 86400 if _is_daily_limit(exc) else int(server_wait(exc) or 10)
                raise RateLimited(message, retry_after=max(1, wait), details=details) from exc
            raise UpstreamError(message, details=details) from exc

    def properties_for(self, object_type: str, fields: Iterable[str] = ()) -> list[str]:
        """Default properties + the mapping's fields + configured extras (valid internal names only)."""
        names = [*DEFAULT_PROPERTIES.get(object_type, ()), *fields, *self.extra_properties.get(object_type, []),
                 modified_property(object_type)]
        return list(dict.fromkeys(n for n in names if n != "id" and n and set(n) <= _VALID_PROPERTY))

    # -- reads --------------------------------------------------------------------------------------

    def batch_read(self, object_type: str, ids: Iterable[str], properties: list[str]) -> dict[str, dict[str, Any]]:
        """Flat records by id, at most 100 ids per request; ids HubSpot does not know are absent."""
        api, models = self._discovery(object_type).batch_api, self._models(object_type)
        out: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(list(dict.fromkeys(str(i) for i in ids)), BATCH_READ_MAX):
            body = models.BatchReadInputSimplePublicObjectId(
                properties=properties, properties_with_history=[],
                inputs=[models.SimplePublicObjectId(id=i) for i in chunk])
            def read(body: Any = body) -> Any:
                return api.read(body, archived=False, _request_timeout=self.timeout)

            response = self._call(f"HubSpot {object_type} batch read", read)
            for obj in response.results or []:
                out[str(obj.id)] = flatten(object_type, obj)
        return out

    def list_page(self, object_type: str, *, after: str | None, properties: list[str],
                  limit: int = PAGE_LIMIT) -> Page:
        """One page of the list API (ordered by id; ``after`` is HubSpot's opaque paging token)."""
        api = self._discovery(object_type).basic_api
        kwargs: dict[str, Any] = {"limit": limit, "properties": properties, "archived": False,
                                  "_request_timeout": self.timeout}
        if after:
            kwargs["after"] = after
        response = self._call(f"HubSpot {object_type} list", lambda: api.get_page(**kwargs))
        return Page([flatten(object_type, o) for o in response.results or []], _next_after(response))

    def search_page(self, object_type: str, *, since: datetime, after: str | None, properties: list[str],
                    limit: int = PAGE_LIMIT) -> Page:
        """One page of objects modified at or after ``since``, oldest first."""
        api, models = self._discovery(object_type).search_api, self._models(object_type)
        prop = modified_property(object_type)
        since_ms = int(since.astimezone(UTC).timestamp() * 1000)
        request = models.PublicObjectSearchRequest(
            filter_groups=[models.FilterGroup(filters=[models.Filter(property_name=prop, operator="GTE",
                                                                     value=str(since_ms))])],
            sorts=[{"propertyName": prop, "direction": "ASCENDING"}],
            properties=properties, limit=limit, after=after or None)
        response = self._call(f"HubSpot {object_type} search",
                              lambda: api.do_search(request, _request_timeout=self.timeout))
        return Page([flatten(object_type, o) for o in response.results or []], _next_after(response),
                    getattr(response, "total", None))


def _next_after(response: Any) -> str | None:
    paging = getattr(response, "paging", None)
    nxt = getattr(paging, "next", None) if paging is not None else None
    return str(nxt.after) if nxt is not None and nxt.after else None


def fetch_records(source: SourceConfig, events: Sequence[InboundEvent], *,
                  sleep: Callable[[float], None] = time.sleep) -> dict[str, dict[str, Any]]:
    """Full objects for the events' ids, grouped by object type and batch-read: ``{object_id: record}``.

    Returns ``{}`` when the source has no ``access_token`` (the webhook's own fields are then mapped).
    Reads the default HubSpot mapping's fields plus ``options["properties"]``. Raises on API failure.
    """
    if not is_configured(source.options):
        return {}
    wanted: dict[str, list[str]] = {}
    for event in events:
        if event.object_id and event.object_type in OBJECT_APIS:
            wanted.setdefault(event.object_type, []).append(event.object_id)
    if not wanted:
        return {}
    api = HubSpotApi(source.options, sleep=sleep)
    mapping = load_default_mapping("hubspot")
    out: dict[str, dict[str, Any]] = {}
    for object_type, ids in wanted.items():
        out.update(api.batch_read(object_type, ids, api.properties_for(object_type, mapping_fields(mapping, object_type))))
    return out
