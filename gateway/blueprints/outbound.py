"""Outbound webhooks API and the Zapier surface (REST hooks, polling triggers, flat actions).

Each view parses, authorises and makes one engine call; delivery itself happens in the ``deliver`` jobs.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request
from pydantic import BaseModel, Field

from memrelay.connectors.formdata import as_list, parse_fields
from memrelay.engine.core.errors import BadRequest, NotFound
from memrelay.engine.egress.webhooks_out import FEED_MAX_LIMIT, ROTATION_OVERLAP_S, WebhooksOut
from memrelay.engine.memory.memories import IDENTIFIER_FIELDS, MemorizeItemsRequest, MemorizeRequest
from memrelay.engine.memory.recall import RecallRequest
from memrelay.engine.stores.identity import Identifiers
from memrelay.engine.stores.outbox import EVENT_TYPES
from memrelay.engine.stores.properties import Provenance
from memrelay.engine.stores.tenancy import KeyInfo
from memrelay.gateway.api import endpoint, parse_body
from memrelay.gateway.schemas import common
from memrelay.gateway.schemas import outbound as sch
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


class RotateSecret(BaseModel):
    overlapSeconds: int = Field(ROTATION_OVERLAP_S, description="How long the old secret keeps signing next to "
                                                                "the new one (0 = retire it now; max 30 days).")


class AllowlistBody(BaseModel):
    hosts: list[str] = Field(description="Host names, IP addresses or CIDR networks that may be non-public.")


@endpoint(bp, "/webhooks", methods=("POST",), scope="admin", body=SubscriptionCreate, response=sch.Subscription,
          status=201, example={"url": "https://hooks.example/memrelay", "eventTypes": ["*"]})
def create_webhook(auth: KeyInfo, body: SubscriptionCreate) -> tuple[dict[str, Any], int]:
    """Subscribe a URL to event types; the whsec_ signing secret is returned once."""
    return _svc().create(auth.org_id, url=body.url, event_types=body.eventTypes, description=body.description,
                         active=body.active), 201


@endpoint(bp, "/webhooks", methods=("GET",), scope="read", response=sch.SubscriptionList,
          query=sch.SubscriptionListQuery)
def list_webhooks(auth: KeyInfo) -> dict[str, Any]:
    """The org's subscriptions (``?kind=webhook|zapier_hook``); secrets never shown."""
    return {"webhooks": _svc().list(auth.org_id, kind=request.args.get("kind"))}


@endpoint(bp, "/webhooks/event-types", methods=("GET",), scope="read", response=sch.EventTypes)
def webhook_event_types(auth: KeyInfo) -> dict[str, Any]:
    """Every event type a subscription or trigger can name."""
    return {"eventTypes": list(EVENT_TYPES)}


@endpoint(bp, "/webhooks/allowlist", methods=("GET",), scope="read", response=sch.Allowlist)
def get_allowlist(auth: KeyInfo) -> dict[str, Any]:
    """Hosts / IPs / CIDRs the org allows as non-public webhook targets."""
    return {"hosts": _svc().allowlist(auth.org_id)}


@endpoint(bp, "/webhooks/allowlist", methods=("PUT",), scope="admin", body=AllowlistBody, response=sch.Allowlist)
def set_allowlist(auth: KeyInfo, body: AllowlistBody) -> dict[str, Any]:
    """Replace the allowlist of non-public webhook targets."""
    return {"hosts": _svc().set_allowlist(auth.org_id, body.hosts)}


@endpoint(bp, "/webhooks/<sub_id>", methods=("GET",), scope="read", response=sch.Subscription)
def get_webhook(auth: KeyInfo, sub_id: str) -> dict[str, Any]:
    """One subscription."""
    return _svc().get(auth.org_id, sub_id)


@endpoint(bp, "/webhooks/<sub_id>", methods=("PATCH",), scope="admin", body=SubscriptionUpdate,
          response=sch.Subscription)
def update_webhook(auth: KeyInfo, body: SubscriptionUpdate, sub_id: str) -> dict[str, Any]:
    """Change URL, event types, description or active (re-activating clears a 410 disable)."""
    return _svc().update(auth.org_id, sub_id, url=body.url, event_types=body.eventTypes,
                         description=body.description, active=body.active)


@endpoint(bp, "/webhooks/<sub_id>", methods=("DELETE",), scope="admin", response=common.Deleted)
def delete_webhook(auth: KeyInfo, sub_id: str) -> dict[str, Any]:
    """Delete a subscription and its delivery log."""
    _svc().delete(auth.org_id, sub_id)
    return {"id": sub_id, "deleted": True}


@endpoint(bp, "/webhooks/<sub_id>/rotate-secret", methods=("POST",), scope="admin", body=RotateSecret,
          response=sch.RotatedSecret)
def rotate_webhook_secret(auth: KeyInfo, body: RotateSecret, sub_id: str) -> dict[str, Any]:
    """New signing secret (shown once); the old one keeps signing alongside it for ``overlapSeconds``."""
    return _svc().rotate_secret(auth.org_id, sub_id, overlap_s=body.overlapSeconds)


@endpoint(bp, "/feed", methods=("GET",), scope="read", response=sch.FeedPage, query=sch.FeedQuery)
def event_feed(auth: KeyInfo) -> dict[str, Any]:
    """Events with a cursor: ``?eventTypes=a,b|*&cursor=&limit=&type=&property=``; newest first, ``nextCursor``
    pages to older events (``cursor=tail`` or an ``after`` cursor: oldest first, for tailing)."""
    return _feed(auth, as_list(request.args.get("eventTypes")) or ["*"])


def _feed(auth: KeyInfo, types: list[str]) -> dict[str, Any]:
    return _svc().feed(auth.org_id, types, limit=min(max(_int_arg("limit", 50), 1), FEED_MAX_LIMIT),
                       cursor=request.args.get("cursor") or None, entity_type=request.args.get("type") or None,
                       property_name=request.args.get("property") or None)


@endpoint(bp, "/webhooks/<sub_id>/deliveries", methods=("GET",), scope="read", response=sch.DeliveryPage,
          query=sch.DeliveriesQuery)
def list_deliveries(auth: KeyInfo, sub_id: str) -> dict[str, Any]:
    """Deliveries, newest first, each with every attempt (``?page=&pageSize=``)."""
    return _svc().deliveries(auth.org_id, sub_id, page=_int_arg("page", 1), page_size=_int_arg("pageSize", 50))


@endpoint(bp, "/webhooks/<sub_id>/deliveries/<delivery_id>/redeliver", methods=("POST",), scope="admin",
          response=sch.Delivery, status=202, errors=(409,))
def redeliver(auth: KeyInfo, sub_id: str, delivery_id: str) -> tuple[dict[str, Any], int]:
    """Send a delivery again now (same webhook-id), whatever its state."""
    out = _svc().redeliver(auth.org_id, sub_id, delivery_id)
    enqueue_each(state().redis, "deliver", [delivery_id])
    return out, 202


# --- Zapier: REST hooks and polling triggers -------------------------------------------------------------
class HookSubscribe(BaseModel):
    target_url: str = Field(min_length=1, max_length=2000)
    event: str


@endpoint(bp, "/hooks", methods=("POST",), scope="admin", body=HookSubscribe, envelope=False,
          response=sch.HookSubscription, status=201)
def subscribe_hook(auth: KeyInfo, body: HookSubscribe) -> tuple[dict[str, Any], int]:
    """Zapier REST hook subscribe: deliveries of ``event`` to ``target_url`` (a 410 unsubscribes).

    Admin scope, like ``/webhooks``: a subscription streams the org's events to any URL."""
    sub = _svc().create(auth.org_id, url=body.target_url, event_types=[body.event], kind="zapier_hook",
                        description="Zapier REST hook")
    return {"id": sub["id"], "event": body.event, "target_url": sub["url"], "secret": sub["secret"]}, 201


@endpoint(bp, "/hooks/<hook_id>/rotate-secret", methods=("POST",), scope="admin", body=RotateSecret,
          envelope=False, response=sch.HookSecret)
def rotate_hook_secret(auth: KeyInfo, body: RotateSecret, hook_id: str) -> dict[str, Any]:
    """A REST hook's new signing secret; both sign for ``overlapSeconds``."""
    out = _svc().rotate_secret(auth.org_id, hook_id, overlap_s=body.overlapSeconds, kind="zapier_hook")
    return {"id": out["id"], "secret": out["secret"], "previousSecretExpiresAt": out["previousSecretExpiresAt"]}


@endpoint(bp, "/hooks/<hook_id>", methods=("DELETE",), scope="admin", envelope=False, response=common.Deleted)
def unsubscribe_hook(auth: KeyInfo, hook_id: str) -> dict[str, Any]:
    """Zapier REST hook unsubscribe."""
    _svc().delete(auth.org_id, hook_id, kind="zapier_hook")
    return {"id": hook_id, "deleted": True}


@endpoint(bp, "/triggers/<event>", methods=("GET",), scope="read", envelope=False, response=sch.TriggerItems,
          query=sch.TriggerQuery, errors=(422,))
def poll_trigger(auth: KeyInfo, event: str) -> list[dict[str, Any]]:
    """Polling trigger: recent events of one type, newest first, each with a stable ``id`` (``?cursor=`` from
    ``/feed`` pages older; ``type`` / ``property`` filter)."""
    items: list[dict[str, Any]] = _feed(auth, [event])["items"]
    return items


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


@endpoint(bp, "/actions/upsert-contact", methods=("POST",), scope="write", envelope=False,
          body_doc=UpsertContactAction, response=sch.FlatObject, errors=(400, 404, 409, 422))
def action_upsert_contact(auth: KeyInfo) -> dict[str, Any]:
    """Zapier action: create or update a contact by email with properties (``properties__<name>``)."""
    body = parse_body(UpsertContactAction, _fields())
    out = state().services.records.upsert(auth.org_id, Identifiers(type="contact", email=body.email),
                                          body.properties, Provenance(source=ZAPIER_SOURCE, actor=auth.key_id))
    return flatten(out)


class UpsertCompanyAction(BaseModel):
    website_url: str = Field(min_length=3, max_length=2000)
    properties: dict[str, Any] = Field(default_factory=dict)


@endpoint(bp, "/actions/upsert-company", methods=("POST",), scope="write", envelope=False,
          body_doc=UpsertCompanyAction, response=sch.FlatObject, errors=(400, 404, 409, 422))
def action_upsert_company(auth: KeyInfo) -> dict[str, Any]:
    """Zapier action: create or update a company by website URL with properties (``properties__<name>``)."""
    body = parse_body(UpsertCompanyAction, _fields())
    out = state().services.records.upsert(auth.org_id, Identifiers(type="company", website_url=body.website_url),
                                          body.properties, Provenance(source=ZAPIER_SOURCE, actor=auth.key_id))
    return flatten(out)


class UpsertRecordAction(BaseModel):
    identifiers: Identifiers
    properties: dict[str, Any] = Field(default_factory=dict)


def _identified(data: dict[str, Any]) -> dict[str, Any]:
    """Top-level identifier fields (``email``, ``type``, ``customKeyName`` ...) moved under ``identifiers``."""
    if not isinstance(data.get("identifiers") or {}, dict):
        raise BadRequest("'identifiers' must be an object")
    ids = dict(data.get("identifiers") or {})
    for name in IDENTIFIER_FIELDS:
        if data.get(name) not in (None, ""):
            ids.setdefault(name, data.pop(name))
    return {**data, "identifiers": ids}


@endpoint(bp, "/actions/upsert-record", methods=("POST",), scope="write", envelope=False,
          body_doc=UpsertRecordAction, response=sch.FlatObject, errors=(400, 404, 409, 422))
def action_upsert_record(auth: KeyInfo) -> dict[str, Any]:
    """Zapier action: create or update a record of any entity type (``type`` + a key) with properties."""
    body = parse_body(UpsertRecordAction, _identified(_fields()))
    out = state().services.records.upsert(auth.org_id, body.identifiers, body.properties,
                                          Provenance(source=ZAPIER_SOURCE, actor=auth.key_id))
    return flatten(out)


@endpoint(bp, "/actions/batch-memorize", methods=("POST",), scope="write", envelope=False,
          body_doc=MemorizeItemsRequest, response=sch.FlatObject, errors=(400, 422))
def action_batch_memorize(auth: KeyInfo) -> dict[str, Any]:
    """Zapier action: memorize several items now (Zapier line items: ``items`` = a list of memorize bodies)."""
    data = _fields()
    data["tags"] = as_list(data.get("tags")) or [ZAPIER_SOURCE]
    data.setdefault("source", ZAPIER_SOURCE)
    return flatten(state().services.memories.memorize_items(auth.org_id, parse_body(MemorizeItemsRequest, data),
                                                            key_id=auth.key_id))


# --- Zapier: searches (a bare array: empty = not found, Zapier then offers "create") ----------------------
@endpoint(bp, "/searches/find-record", methods=("GET", "POST"), scope="read", envelope=False,
          query=sch.FindRecordQuery, body_doc=sch.FindRecordQuery, response=sch.FlatObjects, errors=(400, 422))
def search_find_record(auth: KeyInfo) -> list[dict[str, Any]]:
    """Zapier search: the record a key names (``email``, ``website_url``, ``record_id``,
    ``customKeyName``/``customKeyValue``, optional ``type``), flattened; ``[]`` when there is none."""
    data = _identified(_fields() if request.method == "POST" else dict(request.args))
    ids = parse_body(UpsertRecordAction, {"identifiers": data["identifiers"]}).identifiers
    try:
        record = state().services.records.get(auth.org_id, ids, ids.type)
    except NotFound:
        return []
    return [flatten({**record, "id": record["recordId"]})]


@endpoint(bp, "/searches/smart-recall", methods=("POST",), scope="read", envelope=False, body_doc=RecallRequest,
          response=sch.FlatObjects, errors=(400, 404, 422))
def search_smart_recall(auth: KeyInfo) -> list[dict[str, Any]]:
    """Zapier search: smart recall (``query`` + optional record key) as a list of flattened memories, best
    first, each with an ``id``."""
    data = _identified(_fields())
    if "tags" in data:
        data["tags"] = as_list(data["tags"])
    body = parse_body(RecallRequest, data).for_key(auth.key_id)
    out = state().services.recall.smart_recall(auth.org_id, body)
    results = out.get("results") or out.get("memories") or []
    return [flatten({**r, "id": r.get("memoryId") or r.get("id") or f"{i}"}) for i, r in enumerate(results)
            if isinstance(r, dict)]


@endpoint(bp, "/actions/memorize", methods=("POST",), scope="write", envelope=False, body_doc=MemorizeRequest,
          response=sch.FlatObject, errors=(400, 402, 404, 422))
def action_memorize(auth: KeyInfo) -> dict[str, Any]:
    """Zapier action: memorize text about a record (identifiers top-level; ``tags`` may be comma-joined)."""
    data = _fields()
    data["tags"] = as_list(data.get("tags")) or [ZAPIER_SOURCE]
    data.setdefault("source", ZAPIER_SOURCE)
    return flatten(state().services.memories.memorize(auth.org_id, parse_body(MemorizeRequest, data)))
