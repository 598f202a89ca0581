"""HubSpot webhooks: signature v1/v2/v3 verification and batched CRM event parsing.

Signatures (see ``shared/reference/webhook-specs.md``):

- v3 (preferred; used whenever ``X-HubSpot-Signature-v3`` is present): base64 HMAC-SHA256(client secret,
  METHOD + URI + body + timestamp), ``X-HubSpot-Request-Timestamp`` in ms, 5-minute window. The URI is
  the full URL HubSpot called; only the spec's short list of percent-escapes is decoded.
- v1/v2 (chosen by ``X-HubSpot-Signature-Version``): hex SHA-256 of secret + body (v1) or secret +
  METHOD + URI + body (v2). These carry no timestamp; replays are caught by event dedup.

``source.options["signature_versions"]`` (default ``["v1", "v2", "v3"]``) restricts what is accepted.
``source.public_url`` overrides the URL used for v2/v3 when a proxy rewrites it; if it has no query
string, the received URL's query string is appended.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from memrelay.connectors.base import (
    BaseConnector,
    InboundEvent,
    SourceConfig,
    Verified,
    as_id,
    check_batch_size,
    header,
    load_json,
)
from memrelay.connectors.signing import (
    b64_digest,
    check_fresh,
    constant_time_equal,
    hmac_sha256,
    parse_timestamp,
    require_secrets,
    sha256_hex,
)
from memrelay.connectors.timeutil import from_millis
from memrelay.engine.core.errors import BadRequest, SignatureError

V3_TOLERANCE_S = 300
SIGNATURE_VERSIONS = ("v1", "v2", "v3")

OBJECT_TYPES = frozenset({"contact", "company", "deal", "ticket"})
ACTIONS = frozenset(
    {"creation", "propertyChange", "deletion", "merge", "restore", "associationChange", "privacyDeletion"}
)
# Generic ``object.*`` subscriptions name the type by id instead.
OBJECT_TYPE_IDS = {"0-1": "contact", "0-2": "company", "0-3": "deal", "0-5": "ticket"}

_V3_DECODE = {
    "%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$", "%27": "'",
    "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";",
}  # fmt: skip
_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")

# HubSpot event field -> normalised attribute name (kept only when present).
_ATTRIBUTES = {
    "propertyName": "property_name",
    "propertyValue": "property_value",
    "changeSource": "change_source",
    "changeFlag": "change_flag",
    "attemptNumber": "attempt_number",
    "portalId": "portal_id",
    "appId": "app_id",
    "sourceId": "change_source_id",
    "primaryObjectId": "primary_object_id",
    "mergedObjectIds": "merged_object_ids",
    "newObjectId": "new_object_id",
    "numberOfPropertiesMoved": "number_of_properties_moved",
    "fromObjectId": "from_object_id",
    "toObjectId": "to_object_id",
    "associationType": "association_type",
    "associationCategory": "association_category",
    "associationTypeId": "association_type_id",
    "associationRemoved": "association_removed",
    "isPrimaryAssociation": "is_primary_association",
}


# -- signatures -------------------------------------------------------------------------------------


def decode_v3_uri(uri: str) -> str:
    """Decode only the percent-escapes HubSpot's v3 scheme decodes (case-insensitive hex)."""
    return _PERCENT.sub(lambda m: _V3_DECODE.get(m.group(0).upper(), m.group(0)), uri)


def v1_signature(secret: str, raw_body: bytes) -> str:
    return sha256_hex(secret.encode("utf-8") + raw_body)


def v2_signature(secret: str, method: str, uri: str, raw_body: bytes) -> str:
    return sha256_hex(f"{secret}{method.upper()}{uri}".encode() + raw_body)


def v3_signature(secret: str, method: str, uri: str, raw_body: bytes, timestamp_ms: str) -> str:
    message = f"{method.upper()}{decode_v3_uri(uri)}".encode() + raw_body + timestamp_ms.encode("ascii")
    return b64_digest(hmac_sha256(secret, message))


def signed_url(source: SourceConfig, url: str) -> str:
    """The URL HubSpot signed: ``source.public_url`` (plus the request's query if it has none) or ``url``."""
    if not source.public_url:
        return url
    public = urlsplit(source.public_url)
    if public.query:
        return source.public_url
    query = urlsplit(url).query
    return urlunsplit(public._replace(query=query)) if query else source.public_url


class HubSpotConnector(BaseConnector):
    name = "hubspot"

    def verify(
        self,
        headers: Mapping[str, str],
        raw_body: bytes,
        *,
        source: SourceConfig,
        method: str = "POST",
        url: str = "",
        token: str | None = None,
        now: float | None = None,
    ) -> Verified:
        allowed = tuple(source.options.get("signature_versions", SIGNATURE_VERSIONS))
        v3 = header(headers, "X-HubSpot-Signature-v3")
        if v3 is not None:
            self._require_allowed("v3", allowed)
            timestamp = header(headers, "X-HubSpot-Request-Timestamp")
            check_fresh(
                parse_timestamp(timestamp, what="X-HubSpot-Request-Timestamp", unit_ms=True),
                now=now,
                tolerance=V3_TOLERANCE_S,
            )
            uri = signed_url(source, url)
            expected = (
                v3_signature(s, method, uri, raw_body, (timestamp or "").strip()) for s in require_secrets(source)
            )
            self._match(expected, v3, "X-HubSpot-Signature-v3")
            return self.verified(source, raw_body, headers)

        received = header(headers, "X-HubSpot-Signature")
        if received is None:
            raise SignatureError("missing X-HubSpot-Signature-v3 or X-HubSpot-Signature header")
        version = (header(headers, "X-HubSpot-Signature-Version") or "").strip().lower()
        if version not in ("v1", "v2"):
            raise SignatureError("missing or unsupported X-HubSpot-Signature-Version")
        self._require_allowed(version, allowed)
        secrets = require_secrets(source)
        if version == "v1":
            expected = (v1_signature(s, raw_body) for s in secrets)
        else:
            uri = signed_url(source, url)
            expected = (v2_signature(s, method, uri, raw_body) for s in secrets)
        self._match(expected, received.strip().lower(), "X-HubSpot-Signature")
        return self.verified(source, raw_body, headers)

    @staticmethod
    def _require_allowed(version: str, allowed: Sequence[str]) -> None:
        if version not in allowed:
            raise SignatureError(f"signature version {version} is not accepted for this source")

    @staticmethod
    def _match(expected: Iterable[str], received: str, what: str) -> None:
        if not any([constant_time_equal(exp, received.strip()) for exp in expected]):
            raise SignatureError(f"{what} does not match")

    # -- fetching -----------------------------------------------------------------------------------

    def fetch(self, source: SourceConfig, events: Sequence[InboundEvent]) -> dict[str, dict[str, Any]]:
        """Full CRM objects for the events' ids (``{object_id: flat record}``) via the HubSpot API;
        ``{}`` without ``options["access_token"]``. See :mod:`memrelay.connectors.hubspot.api`."""
        from memrelay.connectors.hubspot.api import fetch_records

        return fetch_records(source, events)

    # -- parsing ------------------------------------------------------------------------------------

    def parse(self, verified: Verified) -> list[InboundEvent]:
        """Parse a JSON array of CRM events; events of unsupported types are skipped."""
        source = self.opened(verified).source
        body = load_json(verified.body)
        if not isinstance(body, list):
            raise BadRequest("HubSpot webhook body must be a JSON array of events")
        check_batch_size(len(body))
        events = []
        for index, item in enumerate(body):
            event = self._parse_one(index, item, source)
            if event is not None:
                events.append(event)
        return events

    def _parse_one(self, index: int, item: Any, source: SourceConfig) -> InboundEvent | None:
        if not isinstance(item, dict):
            raise BadRequest(f"event {index} is not a JSON object", details={"index": index})
        kind = item.get("subscriptionType") or item.get("eventType")
        if not isinstance(kind, str) or "." not in kind:
            raise BadRequest(f"event {index} has no subscriptionType/eventType", details={"index": index})
        object_type, _, action = kind.partition(".")
        if object_type == "object":
            object_type = OBJECT_TYPE_IDS.get(str(item.get("objectTypeId")), "")
        if object_type not in OBJECT_TYPES or action not in ACTIONS:
            return None

        for required in ("eventId", "subscriptionId", "portalId", "occurredAt"):
            if item.get(required) in (None, ""):
                raise BadRequest(
                    f"event {index} is missing {required}", details={"index": index, "field": required}
                )
        occurred_ms = item["occurredAt"]
        if isinstance(occurred_ms, bool) or not isinstance(occurred_ms, int):
            raise BadRequest(f"event {index} has a non-integer occurredAt", details={"index": index})

        # object_id is the record the event is about: the merge winner for merges.
        identity = object_id = as_id(item.get("objectId"))
        if action == "merge":
            object_id = as_id(item.get("newObjectId")) or as_id(item.get("primaryObjectId")) or object_id
            identity = identity or object_id
        elif action == "associationChange" and object_id is None:
            object_id = as_id(item.get("fromObjectId"))
            identity = f"{item.get('fromObjectId')}-{item.get('toObjectId')}"
        if identity is None:
            raise BadRequest(
                f"event {index} is missing objectId", details={"index": index, "field": "objectId"}
            )

        record: dict[str, Any] = {"id": object_id}
        if action == "propertyChange" and isinstance(item.get("propertyName"), str):
            record[item["propertyName"]] = item.get("propertyValue")
        attributes = {name: item[key] for key, name in _ATTRIBUTES.items() if key in item}
        dedup_key = ":".join(
            str(part)
            for part in (
                "hubspot",
                item["portalId"],
                item["subscriptionId"],
                item["eventId"],
                identity,
                occurred_ms,
            )
        )
        return self.new_event(
            source,
            dedup_key=dedup_key,
            event_type=f"{object_type}.{action}",
            object_type=object_type,
            source_object_type=object_type,
            object_id=object_id,
            occurred_at=from_millis(occurred_ms),
            payload=item,
            record=record,
            attributes=attributes,
        )
