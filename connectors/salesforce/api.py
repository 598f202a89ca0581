"""Salesforce REST API through simple-salesforce: extra fields for outbound messages and paged backfills.

Source options (``SourceConfig.options`` / the stored source's ``config``):

- ``instance_url`` (``https://acme.my.salesforce.com``) and ``access_token`` (session id / OAuth token):
  both required for any API call. simple-salesforce always speaks HTTPS to the instance, through the
  guarded session (:func:`memrelay.connectors.crm_http.guarded_session`): the instance is trusted, a
  redirect or ``nextRecordsUrl`` elsewhere is checked by the SSRF guard.
- ``ca_bundle``: CA bundle path for TLS verification (a corporate proxy; the tests' local server).
- ``api_version`` (default ``59.0``), ``page_size`` (REST batch size, 200-2000, default 2000),
  ``fields`` (``{SObject: [extra field names]}``), ``bulk`` (backfill through Bulk API 2.0),
  ``max_api_usage`` (default 0.9: a backfill pauses, cursor saved, when the org's daily API usage
  reaches this fraction), ``bulk_poll_s`` (Bulk 2.0 job polling, default 5), ``max_retries`` (default 5),
  ``timeout_s`` (default 60).

Field names are checked against the object's describe (cached per client) so a mapping naming a field
the org does not have (``CurrencyIsoCode`` without multi-currency) never breaks a query. Values are
quoted with ``format_soql``; object and field names come from describe, never from input.
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError, SalesforceOperationError
from simple_salesforce.format import format_soql

from memrelay.connectors.base import InboundEvent, SourceConfig
from memrelay.connectors.crm_http import call_with_retry, guarded_session, mapping_fields
from memrelay.connectors.mapping import load_default_mapping
from memrelay.connectors.timeutil import parse_datetime
from memrelay.engine.core.errors import ConfigError, NotFound, RateLimited, UpstreamError
from memrelay.engine.egress.crm_hosts import check_crm_base

T = TypeVar("T")

API_VERSION = "59.0"
MODIFIED_FIELD = "LastModifiedDate"
IDS_PER_QUERY = 200
_SOBJECT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,79}$")


def is_configured(options: Mapping[str, Any]) -> bool:
    return bool(options.get("instance_url") and options.get("access_token"))


def clean(record: Mapping[str, Any]) -> dict[str, Any]:
    """A query row without the ``attributes`` metadata and without nulls."""
    return {k: v for k, v in record.items() if k != "attributes" and v is not None and v != ""}


def retryable(exc: BaseException) -> bool:
    if isinstance(exc, requests.ConnectionError | requests.Timeout):
        return True
    status = getattr(exc, "status", None)
    return isinstance(exc, SalesforceError) and isinstance(status, int) and (status == 429 or status >= 500)


def _limit_exceeded(exc: BaseException) -> bool:
    return "REQUEST_LIMIT_EXCEEDED" in str(getattr(exc, "content", ""))


@dataclass(frozen=True)
class QueryPage:
    records: list[dict[str, Any]]
    total: int | None


class SalesforceApi:
    """A retrying facade over one ``simple_salesforce.Salesforce`` session."""

    def __init__(self, options: Mapping[str, Any], *, sleep: Callable[[float], None] = time.sleep):
        if not is_configured(options):
            raise ConfigError("the Salesforce source needs instance_url and access_token in its config")
        check_crm_base("salesforce", str(options["instance_url"]).strip())
        instance = "https://" + re.sub(r"^https?://", "", str(options["instance_url"]).strip(), flags=re.I)
        session = guarded_session(instance, ca_bundle=str(options["ca_bundle"]) if options.get("ca_bundle") else None)
        self.sf = Salesforce(instance_url=str(options["instance_url"]), session_id=str(options["access_token"]),
                             version=str(options.get("api_version", API_VERSION)), session=session)
        self.extra_fields: Mapping[str, list[str]] = options.get("fields") or {}
        self.page_size = min(2000, max(200, int(options.get("page_size", 2000))))
        self.max_api_usage = float(options.get("max_api_usage", 0.9))
        self.attempts = int(options.get("max_retries", 5)) + 1
        self.timeout = float(options.get("timeout_s", 60))
        self.bulk_poll_s = float(options.get("bulk_poll_s", 5))
        self.sleep = sleep
        self._describe: dict[str, dict[str, str]] = {}

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return call_with_retry(fn, what=what, retryable=retryable, server_wait=lambda exc: None,
                                   attempts=self.attempts, sleep=self.sleep)
        except (SalesforceError, requests.RequestException) as exc:
            status = getattr(exc, "status", None)
            details = {"status": status, "content": str(getattr(exc, "content", exc))[:300]}
            if _limit_exceeded(exc) or status == 429:
                raise RateLimited(f"{what}: Salesforce API limit reached", retry_after=3600, details=details) from exc
            raise UpstreamError(f"{what} failed: HTTP {status or 'connection error'}", details=details) from exc

    # -- metadata -----------------------------------------------------------------------------------

    def field_names(self, sobject: str) -> dict[str, str]:
        """``{lower-case name: API name}`` of the object's fields (describe, cached)."""
        if not _SOBJECT_NAME.match(sobject):
            raise NotFound(f"invalid Salesforce object name {sobject!r}")
        if sobject not in self._describe:
            described = self._call(f"Salesforce {sobject} describe", lambda: getattr(self.sf, sobject).describe())
            self._describe[sobject] = {f["name"].lower(): f["name"] for f in described.get("fields", [])}
        return self._describe[sobject]

    def fields_for(self, sobject: str, wanted: Iterable[str] = ()) -> list[str]:
        """``Id``, ``LastModifiedDate`` and the wanted/configured fields the object really has."""
        known = self.field_names(sobject)
        names = ["Id", MODIFIED_FIELD, *wanted, *self.extra_fields.get(sobject, [])]
        return list(dict.fromkeys(known[n.lower()] for n in names if n.lower() in known))

    def api_usage(self) -> float | None:
        """Fraction of the org's daily API requests used, from the last response's ``Sforce-Limit-Info``."""
        usage = self.sf.api_usage.get("api-usage")
        total = getattr(usage, "total", 0)
        return usage.used / total if usage is not None and total else None

    # -- reads --------------------------------------------------------------------------------------

    def fetch_by_ids(self, sobject: str, ids: Iterable[str], fields: list[str]) -> dict[str, dict[str, Any]]:
        """Records by id (``SELECT ... WHERE Id IN (...)``, 200 ids per query)."""
        unique = list(dict.fromkeys(str(i) for i in ids if i))
        out: dict[str, dict[str, Any]] = {}
        for start in range(0, len(unique), IDS_PER_QUERY):
            soql = format_soql(f"SELECT {', '.join(fields)} FROM {sobject} WHERE Id IN {{}}",
                               unique[start:start + IDS_PER_QUERY])
            for page in self._pages(f"Salesforce {sobject} fetch", soql):
                out.update({r["Id"]: r for r in page.records})
        return out

    def modified_since(self, sobject: str, fields: list[str], since: datetime | None) -> Iterator[QueryPage]:
        """Pages of records modified at or after ``since`` (all when ``None``), oldest first, Id as tiebreak.

        ``since`` is truncated to the second (SOQL literals); callers skip what they already have."""
        where = format_soql(f" WHERE {MODIFIED_FIELD} >= {{}}", since) if since is not None else ""
        soql = f"SELECT {', '.join(fields)} FROM {sobject}{where} ORDER BY {MODIFIED_FIELD}, Id"
        return self._pages(f"Salesforce {sobject} query", soql)

    def _pages(self, what: str, soql: str) -> Iterator[QueryPage]:
        """``query`` then ``query_more`` along ``nextRecordsUrl`` (what ``query_all_iter`` does), page-wise."""
        headers = {"Sforce-Query-Options": f"batchSize={self.page_size}"}
        result = self._call(what, lambda: self.sf.query(soql, headers=headers, timeout=self.timeout))
        while True:
            yield QueryPage([clean(r) for r in result.get("records", [])], result.get("totalSize"))
            if result.get("done", True) or not result.get("nextRecordsUrl"):
                return
            url = result["nextRecordsUrl"]
            def more(url: str = url) -> Any:
                return self.sf.query_more(url, identifier_is_url=True, headers=headers, timeout=self.timeout)

            result = self._call(what, more)

    def bulk_modified_since(self, sobject: str, fields: list[str], since: datetime | None) -> Iterator[QueryPage]:
        """Bulk API 2.0 query job (no ORDER BY in Bulk 2.0): CSV result sets as pages."""
        where = format_soql(f" WHERE {MODIFIED_FIELD} >= {{}}", since) if since is not None else ""
        soql = f"SELECT {', '.join(fields)} FROM {sobject}{where}"
        bulk = getattr(self.sf.bulk2, sobject)
        try:  # a generator: the job is created, polled and read lazily; a failure fails the whole job
            for chunk in bulk.query(soql, max_records=self.page_size * 5, wait=self.bulk_poll_s):
                yield QueryPage([clean(r) for r in csv.DictReader(io.StringIO(chunk))], None)
        except (SalesforceError, SalesforceOperationError, requests.RequestException) as exc:
            raise UpstreamError(f"Salesforce {sobject} bulk query failed: {exc}"[:300],
                                details={"status": getattr(exc, "status", None)}) from exc


def modified_at(record: Mapping[str, Any]) -> datetime | None:
    return parse_datetime(record.get(MODIFIED_FIELD))


def fetch_records(source: SourceConfig, events: Sequence[InboundEvent], *,
                  sleep: Callable[[float], None] = time.sleep) -> dict[str, dict[str, Any]]:
    """Current values of the fields the default mapping reads, for the events' records: ``{Id: record}``.

    ``{}`` when the source has no API credentials (outbound messages already carry their selected
    fields) or ``options["fetch_fields"]`` is false. Raises on API failure.
    """
    if not is_configured(source.options) or source.options.get("fetch_fields") is False:
        return {}
    wanted: dict[str, list[str]] = {}
    for event in events:
        if event.object_id and _SOBJECT_NAME.match(event.source_object_type):
            wanted.setdefault(event.source_object_type, []).append(event.object_id)
    if not wanted:
        return {}
    api = SalesforceApi(source.options, sleep=sleep)
    mapping = load_default_mapping("salesforce")
    out: dict[str, dict[str, Any]] = {}
    for sobject, ids in wanted.items():
        out.update(api.fetch_by_ids(sobject, ids, api.fields_for(sobject, mapping_fields(mapping, sobject))))
    return out
