"""The connector contract: source configuration, the normalised inbound event, and the registry.

A connector turns one provider's webhook request into :class:`InboundEvent` objects. It is pure: no
Flask, no database, no Redis. The gateway drives it in three steps::

    connector = get_connector(source.connector)
    connector.verify(request.headers, raw_body, source=source, method=request.method,
                     url=request.url, token=path_or_query_token)      # raises SignatureError
    events = connector.parse(raw_body, request.content_type or "", source=source)  # raises BadRequest
    ...persist events (dedup on (source.id, event.dedup_key)), enqueue work...
    reply = connector.ack_response(events)   # (body, content_type) or None -> plain 200 JSON

``verify`` must run on the *raw* body bytes, before any parsing. Header lookups are case-insensitive.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SecretStr

from memrelay.engine.core.errors import BadRequest, NotFound

MAX_EVENTS_PER_REQUEST = 100
"""Providers batch at most 100 events (HubSpot, Salesforce); larger bodies are rejected."""
MAX_DEDUP_KEY_LENGTH = 256


class SourceConfig(BaseModel):
    """One configured inbound source (a HubSpot app, a Stripe endpoint, a form...).

    ``secret`` is the current signing secret; ``previous_secrets`` are still accepted during a rotation.
    ``token`` is the per-source unguessable token carried in the webhook URL path or query (Salesforce,
    unsigned forms, Zapier). ``public_url`` is the exact URL the provider calls and signs (HubSpot v2/v3)
    when memrelay runs behind a proxy that rewrites it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    connector: str = Field(min_length=1)
    secret: SecretStr | None = None
    previous_secrets: list[SecretStr] = Field(default_factory=list)
    public_url: str | None = None
    token: SecretStr | None = None
    allowed_org_ids: list[str] = Field(default_factory=list)
    options: dict[str, Any] = Field(default_factory=dict)

    def signing_secrets(self) -> list[str]:
        """Current secret first, then previous ones; empty values are ignored."""
        candidates = [self.secret, *self.previous_secrets]
        return [s.get_secret_value() for s in candidates if s is not None and s.get_secret_value()]


class InboundEvent(BaseModel):
    """One provider event, normalised. JSON-safe via ``model_dump(mode="json")`` for the event log/jobs.

    - ``dedup_key``: stable across redeliveries of the same event; unique within one source.
    - ``event_type``: ``<object_type>.<action>`` (``contact.creation``, ``contact.propertyChange``,
      ``contact.deletion``, ``contact.merge``, ``contact.restore``, ``contact.associationChange``,
      ``contact.privacyDeletion``, ``contact.upsert``) or the provider's own name where it is already
      precise (Stripe ``invoice.paid``), or ``form.submitted``.
    - ``object_type``: memrelay entity kind (``contact``, ``company``, ``deal``, ``ticket``...).
    - ``source_object_type``: the provider's object name, the key into a mapping file's ``objects``
      (``contact``, ``Lead``, ``invoice``, ``form_submission``...).
    - ``occurred_at``: the provider's own time for the change (used for "older never overwrites").
    - ``payload``: the single event's raw JSON (secrets such as Salesforce session ids removed).
    - ``record``: flat-ish field dict to feed :func:`memrelay.connectors.mapping.apply_mapping`.
    - ``attributes``: event-specific extras (``property_name``, ``merged_object_ids``, ``customer_email``...).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    connector: str
    source_id: str
    dedup_key: str = Field(min_length=1, max_length=MAX_DEDUP_KEY_LENGTH)
    event_type: str
    object_type: str
    source_object_type: str
    object_id: str | None = None
    occurred_at: AwareDatetime
    payload: dict[str, Any] = Field(default_factory=dict)
    record: dict[str, Any] = Field(default_factory=dict)
    attributes: dict[str, Any] = Field(default_factory=dict)


AckResponse = tuple[bytes, str]
"""``(body, content_type)`` a connector wants the gateway to answer with."""


@runtime_checkable
class Connector(Protocol):
    """What every connector module provides (see the module docstring for the call sequence)."""

    name: str
    default_mapping: str | None

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
    ) -> None:
        """Authenticate the request or raise ``SignatureError`` (reason only, never the secret).

        ``url`` is the full request URL as received (scheme, host, path, query in original order);
        ``token`` is the per-source token the gateway extracted from the URL path or ``?token=`` query;
        ``now`` (unix seconds) overrides the clock for tests.
        """
        ...

    def parse(self, raw_body: bytes, content_type: str, *, source: SourceConfig) -> list[InboundEvent]:
        """Turn a verified body into events; raise ``BadRequest`` for malformed input."""
        ...

    def ack_response(self, events: Sequence[InboundEvent]) -> AckResponse | None:
        """The provider-specific success reply, or ``None`` for the gateway's default."""
        ...


class BaseConnector:
    """Shared defaults for connector classes."""

    name: ClassVar[str] = ""
    default_mapping: ClassVar[str | None] = None

    def ack_response(self, events: Sequence[InboundEvent]) -> AckResponse | None:
        return None

    def new_event(self, source: SourceConfig, *, dedup_key: str, **fields: Any) -> InboundEvent:
        """An event stamped with this connector's name and the source id.

        Over-long dedup keys (sender-chosen ids) are replaced by a hash so they always fit the log.
        """
        if len(dedup_key) > MAX_DEDUP_KEY_LENGTH:
            dedup_key = f"{self.name}:sha256-{hashlib.sha256(dedup_key.encode()).hexdigest()}"
        return InboundEvent(connector=self.name, source_id=source.id, dedup_key=dedup_key, **fields)


# -- helpers shared by connectors ------------------------------------------------------------------


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup (works for plain dicts and framework header objects)."""
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    for key, val in headers.items():
        if key.lower() == wanted:
            return val
    return None


def load_json(raw_body: bytes) -> Any:
    """Decode a UTF-8 JSON body or raise ``BadRequest``."""
    try:
        return json.loads(raw_body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise BadRequest("body is not valid UTF-8") from exc
    except json.JSONDecodeError as exc:
        raise BadRequest(f"body is not valid JSON: {exc.msg} at line {exc.lineno}") from exc


def content_digest(content: bytes | Mapping[str, Any]) -> str:
    """A content hash for dedup keys when a sender gives no event id.

    Bytes are hashed as they are; a mapping is hashed as canonical JSON (sorted keys), so the same
    record sent as JSON or form fields, in any key order, gets the same digest.
    """
    if not isinstance(content, bytes):
        content = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str).encode("utf-8")
    return hashlib.sha256(content).hexdigest()[:40]


def check_batch_size(count: int) -> None:
    if count > MAX_EVENTS_PER_REQUEST:
        raise BadRequest(
            f"too many events in one request: {count} (max {MAX_EVENTS_PER_REQUEST})",
            details={"count": count, "max": MAX_EVENTS_PER_REQUEST},
        )


def as_id(value: Any) -> str | None:
    """Provider ids arrive as ints or strings; events carry them as strings."""
    if value is None or value == "":
        return None
    return str(value)


def isoformat(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# -- registry ---------------------------------------------------------------------------------------

_REGISTRY: dict[str, str] = {
    "hubspot": "memrelay.connectors.hubspot:HubSpotConnector",
    "stripe": "memrelay.connectors.stripe:StripeConnector",
    "salesforce": "memrelay.connectors.salesforce:SalesforceConnector",
    "typeform": "memrelay.connectors.typeform:TypeformConnector",
    "webflow": "memrelay.connectors.webflow:WebflowConnector",
    "generic_hmac": "memrelay.connectors.generic_hmac:GenericHmacConnector",
    "form": "memrelay.connectors.forms:TokenFormConnector",
    "generic": "memrelay.connectors.generic:GenericConnector",
}


def connector_names() -> list[str]:
    """Names accepted by :func:`get_connector`."""
    return sorted(_REGISTRY)


@cache
def get_connector(name: str) -> Connector:
    """The (stateless, shared) connector registered under ``name``; ``NotFound`` if unknown."""
    target = _REGISTRY.get(name)
    if target is None:
        raise NotFound(f"unknown connector {name!r}", details={"known": connector_names()})
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls()
