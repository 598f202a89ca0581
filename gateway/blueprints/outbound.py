"""Outbound webhooks API and the Zapier surface (REST hooks, polling triggers, flat actions).

Each view parses, authorises and makes one engine call; delivery itself happens in the ``deliver`` jobs.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request
from pydantic import BaseModel, Field

from memrelay.connectors.formdata import as_list, parse_fields
from memrelay.engine.core.errors import BadRequest
from memrelay.engine.egress.webhooks_out import WebhooksOut
from memrelay.engine.memory.memories import MemorizeRequest
from memrelay.engine.stores.identity import Identifiers
from memrelay.engine.stores.outbox import EVENT_TYPES
from memrelay.engine.stores.properties import Provenance
from memrelay.engine.stores.tenancy import KeyInfo
from memrelay.gateway.api import endpoint, parse_body
from memrelay.gateway.state import state
from memrelay.queue.jobs import enqueue_each

bp = Blueprint("outbound", __name__, url_prefix="/api/v1")
ZAPIER_SOURCE = "zapier"


def _svc() -> WebhooksOut:
    return state().services.webhooks_out


def _int_arg(name: str, default: int) -> int:
    try:
        return int(request.args.get(name, default))
    except ValueError:
        raise BadRequest(f"{name} must be a whole number") from None


# --- subscriptions ------------------------------------------------------------------------------------
class SubscriptionCreate(BaseModel):
    url: str = Field(min_length=1, max_length=2000)
    eventTypes: list[str] = Field(description='Outbox event types, or ["*"] for all.')
    description: str = ""
    active: bool = True


class SubscriptionUpdate(BaseModel):
    url: str | None = Field(None, min_length=1, max_length=2000)
    eventTypes: list[str] | None = None
    description: str | None = None
    active: bool | None = None


class AllowlistBody(BaseModel):
    hosts: list[str] = Field(description="Host names, IP addresses or CIDR networks that may be non-public.")


@endpoint(bp, "/webhooks", methods=("POST",), scope="admin", body=SubscriptionCreate)
def create_webhook(auth: KeyInfo, body: SubscriptionCreate) -> tuple[dict[str, Any], int]:
    """Subscribe a URL to event types; the whsec_ signing secret is returned once."""
    return _svc().create(auth.org_id, url=body.url, event_types=body.eventTypes, description=body.description,
                         active=body.active), 201


@endpoint(bp, "/webhooks", methods=("GET",), scope="read")
def list_webhooks(auth: KeyInfo) -> dict[str, Any]:
    """The org's subscriptions (``?kind=webhook|zapier_hook``); secrets never shown."""
    return {"webhooks": _svc().list(auth.org_id, kind=request.args.get("kind"))}


@endpoint(bp, "/webhooks/event-types", methods=("GET",), scope="read")
def webhook_event_types(auth: KeyInfo) -> dict[str, Any]:
    """Every event type a subscription or trigger can name."""
    return {"eventTypes": list(EVENT_TYPES)}


@endpoint(bp, "/webhooks/allowlist", methods=("GET",), scope="read")
def get_allowlist(auth: KeyInfo) -> dict[str, Any]:
    """Hosts / IPs / CIDRs the org allows as non-public webhook targets."""
    return {"hosts": _svc().allowlist(auth.org_id)}


@endpoint(bp, "/webhooks/allowlist", methods=("PUT",), scope="admin", body=AllowlistBody)
def set_allowlist(auth: KeyInfo, body: AllowlistBody) -> dict[str, Any]:
    """Replace the allowlist of non-public webhook targets."""
    return {"hosts": _svc().set_allowlist(auth.org_id, body.hosts)}


@endpoint(bp, "/webhooks/<sub_id>", methods=("GET",), scope="read")
def get_webhook(auth: KeyInfo, sub_id: str) -> dict[str, Any]:
    """One subscription."""
    return _svc().get(auth.org_id, sub_id)


@endpoint(bp, "/webhooks/<sub_id>", methods=("PATCH",), scope="admin", body=SubscriptionUpdate)
def update_webhook(auth: KeyInfo, body: SubscriptionUpdate, sub_id: str) -> dict[str, Any]:
    """Change URL, event types, description or active (re-activating clears a 410 disable)."""
    return _svc().update(auth.org_id, sub_id, url=body.url, event_types=body.eventTypes,
                         description=body.description, active=body.active)


@endpoint(bp, "/webhooks/<sub_id>", methods=("DELETE",), scope="admin")
def delete_webhook(auth: KeyInfo, sub_id: str) -> dict[str, Any]:
    """Delete a subscription and its delivery log."""
    _svc().delete(auth.org_id, sub_id)
    return {"id": sub_id, "deleted": True}


@endpoint(bp, "/webhooks/<sub_id>/deliveries", methods=("GET",), scope="read")
def list_deliveries(auth: KeyInfo, sub_id: str) -> dict[str, Any]:
    """Deliveries, newest first, each with every attempt (``?page=&pageSize=``)."""
    return _svc().deliveries(auth.org_id, sub_id, page=_int_arg("page", 1), page_size=_int_arg("pageSize", 50))


@endpoint(bp, "/webhooks/<sub_id>/deliveries/<delivery_id>/redeliver", methods=("POST",), scope="admin")
def redeliver(auth: KeyInfo, sub_id: str, delivery_id: str) -> tuple[dict[str, Any], int]:
    """Send a delivery again now (same webhook-id), whatever its state."""
    out = _svc().redeliver(auth.org_id, sub_id, delivery_id)
    enqueue_each(state().redis, "deliver", [delivery_id])
    return out, 202


# --- Zapier: REST hooks and polling triggers -------------------------------------------------------------
class HookSubscribe(BaseModel):
    target_url: str = Field(min_length=1, max_length=2000)
    event: str


@endpoint(bp, "/hooks", methods=("POST",), scope="admin", body=HookSubscribe, envelope=False)
def subscribe_hook(auth: KeyInfo, body: HookSubscribe) -> tuple[dict[str, Any], int]:
    """Zapier REST hook subscribe: deliveries of ``event`` to ``target_url`` (a 410 unsubscribes).

    Admin scope, like ``/webhooks``: a subscription streams the org's events to any URL."""
    sub = _svc().create(auth.org_id, url=body.target_url, event_types=[body.event], kind="zapier_hook",
                        description="Zapier REST hook")
    return {"id": sub["id"], "event": body.event, "target_url": sub["url"]}, 201


@endpoint(bp, "/hooks/<hook_id>", methods=("DELETE",), scope="admin", envelope=False)
def unsubscribe_hook(auth: KeyInfo, hook_id: str) -> dict[str, Any]:
    """Zapier REST hook unsubscribe."""
    _svc().delete(auth.org_id, hook_id, kind="zapier_hook")
    return {"id": hook_id, "deleted": True}


@endpoint(bp, "/triggers/<event>", methods=("GET",), scope="read", envelope=False)
def poll_trigger(auth: KeyInfo, event: str) -> list[dict[str, Any]]:
    """Polling trigger: recent events of one type, newest first, each with a stable ``id``."""
    return _svc().poll(auth.org_id, event, limit=min(max(_int_arg("limit", 50), 1), 100))


# --- Zapier: actions (JSON or form-encoded with __-flattened keys in, flat JSON out) -----------------------
class UpsertContactAction(BaseModel):
    email: str = Field(min_length=3)
    properties: dict[str, Any] = Field(default_factory=dict)


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts to ``a__b`` keys; lists of objects to ``a__0__b``; lists of scalars comma-joined."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}__{key}" if prefix else str(key)))
        return out
    if isinstance(value, list):
        if all(not isinstance(v, dict | list) for v in value):
            return {prefix: ",".join("" if v is None else str(v) for v in value)}
        return flatten({str(i): v for i, v in enumerate(value)}, prefix)
    return {prefix: value}


def _fields() -> dict[str, Any]:
    """The action's body: JSON or form fields, top-level ``__`` keys unflattened."""
    return parse_fields(request.get_data(cache=True), request.content_type or "")


@endpoint(bp, "/actions/upsert-contact", methods=("POST",), scope="write", envelope=False)
def action_upsert_contact(auth: KeyInfo) -> dict[str, Any]:
    """Zapier action: create or update a contact by email with properties (``properties__<name>``)."""
    body = parse_body(UpsertContactAction, _fields())
    out = state().services.records.upsert(auth.org_id, Identifiers(type="contact", email=body.email),
                                          body.properties, Provenance(source=ZAPIER_SOURCE, actor=auth.key_id))
    return flatten(out)


@endpoint(bp, "/actions/memorize", methods=("POST",), scope="write", envelope=False)
def action_memorize(auth: KeyInfo) -> dict[str, Any]:
    """Zapier action: memorize text about a record (identifiers top-level; ``tags`` may be comma-joined)."""
    data = _fields()
    data["tags"] = as_list(data.get("tags")) or [ZAPIER_SOURCE]
    data.setdefault("source", ZAPIER_SOURCE)
    return flatten(state().services.memories.memorize(auth.org_id, parse_body(MemorizeRequest, data)))
