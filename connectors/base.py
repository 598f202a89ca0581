"""The connector contract: source configuration, the verified request, the normalised inbound event.

A connector turns one provider's webhook request into :class:`InboundEvent` objects. It is pure: no
Flask, no database, no Redis. The gateway drives it in three steps::

    connector = get_connector(source.connector)            # memrelay.connectors.registry
    verified = connector.verify(request.headers, raw_body, source=source, method=request.method,
                                url=signed_url, token=path_or_query_token)      # raises SignatureError
    events = connector.parse(verified)                                        # raises BadRequest
    ...persist events (dedup on (source.id, event.dedup_key)), enqueue work...
    reply = connector.ack_response(events)   # (body, content_type) or None -> plain 200 JSON

``verify`` runs on the *raw* body bytes, before any parsing, and returns a :class:`Verified` value: the
only thing ``parse`` accepts, so an unverified body cannot be parsed by accident. Header lookups are
case-insensitive.

May import pydantic, ``memrelay.engine.core`` and the shared helpers of this package; never a
connector package, Flask, Redis or the database.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SecretStr

from memrelay.connectors.config import NoConfig
from memrelay.engine.core.errors import BadRequest, SignatureError
from memrelay.engine.core.safejson import loads_bounded

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

    def __repr_args__(self) -> Any:
        """Repr (logs, tracebacks) with credential options masked; secrets are ``SecretStr`` already."""
        for name, value in super().__repr_args__():
            yield name, (NoConfig.redact(value) if name == "options" else value)

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

_SEAL = object()


@dataclass(frozen=True, eq=False)
class Verified:
    """A request that passed its connector's ``verify``: the only input a connector's ``parse`` accepts.

    Created by :meth:`BaseConnector.verified` (a connector's ``verify``), never by callers. ``payload`` is
    whatever verification already decoded (Salesforce's outbound message), so ``parse`` need not decode it
    again; ``None`` otherwise.
    """

    connector: str
    source: SourceConfig
    body: bytes
    content_type: str = ""
    payload: Any = None
    _seal: object = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self._seal is not _SEAL:
            raise TypeError("Verified values are created by a connector's verify(), not by callers")


@runtime_checkable
class Connector(Protocol):
    """What every connector class provides (see the module docstring for the call sequence)."""

    name: str

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
        """Authenticate the request and return it as :class:`Verified`, or raise ``SignatureError``.

        ``url`` is the full request URL as received (scheme, host, path, query in original order);
        ``token`` is the per-source token the gateway extracted from the URL path or ``?token=`` query;
        ``now`` (unix seconds) overrides the clock for tests. Reasons never contain a secret.
        """
        ...

    def accept_authenticated(self, headers: Mapping[str, str], raw_body: bytes, *,
                             source: SourceConfig) -> Verified:
        """The request as :class:`Verified` when the caller already authenticated it (the org's API key);
        ``SignatureError`` for connectors that require their own signature."""
        ...

    def parse(self, verified: Verified) -> list[InboundEvent]:
        """Turn a verified request into events; raise ``BadRequest`` for malformed input."""
        ...

    def ack_response(self, events: Sequence[InboundEvent]) -> AckResponse | None:
        """The provider-specific success reply, or ``None`` for the gateway's default."""
        ...


@runtime_checkable
class FetchingConnector(Connector, Protocol):
    """A connector that can read full records from the provider's API for its events."""

    def fetch(self, source: SourceConfig, events: Sequence[InboundEvent]) -> dict[str, dict[str, Any]]:
        """``{object_id: flat record}`` for the events' objects; ``{}`` without API credentials."""
        ...


class BaseConnector:
    """Shared defaults for connector classes."""

    name: ClassVar[str] = ""
    api_key_auth: ClassVar[bool] = False
    """True when the gateway's API-key check may stand in for this connector's own verification."""

    def verified(self, source: SourceConfig, raw_body: bytes, headers: Mapping[str, str], *,
                 payload: Any = None) -> Verified:
        """Wrap a request this connector has just verified (call only at the end of ``verify``)."""
        return Verified(connector=self.name, source=source, body=raw_body,
                        content_type=header(headers, "Content-Type") or "", payload=payload, _seal=_SEAL)

    def accept_authenticated(self, headers: Mapping[str, str], raw_body: bytes, *,
                             source: SourceConfig) -> Verified:
        if not self.api_key_auth:
            raise SignatureError(f"the {self.name} connector requires its own signature")
        return self.verified(source, raw_body, headers)

    def opened(self, verified: Verified) -> Verified:
        """``verified`` after checking it was verified by this connector (start of ``parse``)."""
        if not isinstance(verified, Verified) or verified.connector != self.name:
            raise TypeError(f"{self.name}.parse() takes the Verified value returned by its own verify()")
        return verified

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
    """Decode a UTF-8 JSON body (bounded: depth, numbers, surrogates) or raise ``BadRequest``."""
    return loads_bounded(raw_body)


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


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else ``{}`` (optional nested objects of a payload)."""
    return value if isinstance(value, dict) else {}


def isoformat(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
