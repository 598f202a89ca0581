"""Webhook receivers and the source/event-log API: verify → record → enqueue → answer fast."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any, cast

from flask import Blueprint, Response, jsonify, request
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError
from werkzeug.datastructures import Headers

from memrelay.connectors.mapping import load_mapping_text
from memrelay.connectors.registry import (
    connector_info,
    connector_names,
    get_connector,
    validate_config,
)
from memrelay.engine.core.errors import BadRequest, NotFound, SignatureError, ValidationFailed
from memrelay.engine.ingest.pipeline import source_config
from memrelay.engine.stores.event_log import GroupCommit, event_to_dict
from memrelay.engine.stores.tenancy import KeyInfo
from memrelay.gateway.api import api_key_from_request, authenticate, endpoint
from memrelay.gateway.inbound_verification import verification_record
from memrelay.gateway.ratelimit import enforce_receiver_limits
from memrelay.gateway.schemas import common
from memrelay.gateway.schemas import sources as sch
from memrelay.gateway.state import state
from memrelay.queue.jobs import enqueue_each

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)


class _HeaderView(Mapping[str, str]):
    """Werkzeug ``Headers`` as the ``Mapping[str, str]`` connectors take (case-insensitive, first value wins)."""

    def __init__(self, headers: Headers) -> None:
        self._headers = headers

    def __getitem__(self, name: str) -> str:
        return self._headers[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._headers.keys())

    def __len__(self) -> int:
        return len(self._headers)


def _signed_url() -> str:
    """The URL exactly as the provider sent it (HubSpot signs it; Werkzeug's request.url re-encodes)."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if not raw:
        raw = request.full_path if request.query_string else request.path
    return f"{request.scheme}://{request.host}{raw}"


@bp.post("/webhooks/<connector>/<source_id>")
@bp.post("/webhooks/<connector>/<source_id>/<token>")
def receive(connector: str, source_id: str, token: str | None = None) -> Any:
    """Verify the delivery, store its events idempotently, enqueue one job per new event, answer."""
    st = state()
    services = st.services
    enforce_receiver_limits(source_id)  # per client address and per source id, before any lookup
    src = services.sources.lookup(source_id, connector)
    cfg = source_config(src)
    path_token = token is not None
    if token is None and request.args.get("token") is not None:
        if not (src.config or {}).get("allow_query_token"):
            raise SignatureError("this source does not accept ?token=; send the X-Memrelay-Token header")
        token = request.args.get("token")
    conn = get_connector(connector)
    raw = request.get_data(cache=True)
    key_id: str | None = None
    try:
        if connector_info(connector).accepts_api_key and api_key_from_request():
            key_id = _authorise_api_key(src.org_id)  # Zapier-style actions may use the org's API key instead
            verified = conn.accept_authenticated(_HeaderView(request.headers), raw, source=cfg)
        else:
            verified = conn.verify(_HeaderView(request.headers), raw, source=cfg, method=request.method, url=_signed_url(),
                                   token=token)
    except SignatureError as exc:
        log.warning("rejected %s delivery for source %s: %s", connector, source_id, exc.message)
        raise
    how = verification_record(connector, _HeaderView(request.headers), api_key_id=key_id,
                              path_token=path_token, query_token=not path_token and token is not None)
    events = conn.parse(verified)
    try:
        # Committed before we answer (accepted means durable); concurrent deliveries of this process share the
        # write transaction (EventLog's group commit).
        new_ids, dups = services.events.record(src.org_id, src.id, [{
            "connector": e.connector, "dedup_key": e.dedup_key, "event_type": e.event_type,
            "object_type": e.object_type, "object_id": e.object_id, "occurred_at": e.occurred_at,
            "payload": e.model_dump(mode="json")} for e in events],
            headers=request.headers.items(), verification=how)  # masked by the log before it is stored
    except IntegrityError:  # deleted by another process within the lookup cache's TTL
        services.sources.forget(source_id)
        raise NotFound("unknown webhook source") from None
    if new_ids:  # after the commit, outside its write turn: the next transaction need not wait for this round trip
        try:
            _enqueuer(st).submit([{"id": i} for i in new_ids])
        except Exception:  # committed: accepted all the same, and the sweeper re-drives what was not enqueued
            log.exception("enqueueing %d accepted event(s) failed; the sweeper re-drives them", len(new_ids))
    ack = conn.ack_response(events)
    if ack is not None:
        return Response(ack[0], 200, content_type=ack[1])
    return jsonify({"accepted": len(new_ids), "duplicates": dups, "eventIds": new_ids}), 202 if new_ids else 200


def _enqueuer(st: Any) -> GroupCommit:
    """This app's one ``process_event`` enqueuer: the deliveries of this process that are committed and waiting
    to be enqueued at the same moment share one Redis round trip (the same leader/follower batching as the
    event log's group commit, but in its own turn, so SQL writes do not queue behind Redis). A failed enqueue is
    logged by :func:`enqueue_each` and the sweeper re-drives the event (it is ``received`` in SQL)."""
    found = st.extras.get("enqueue_events")
    if found is None:
        redis_client = st.redis

        def write(rows: list[dict[str, Any]]) -> set[str]:
            return set(enqueue_each(redis_client, "process_event", [r["id"] for r in rows]))

        found = st.extras.setdefault("enqueue_events", GroupCommit(write))
    return cast(GroupCommit, found)


def _authorise_api_key(org_id: str) -> str:
    auth = authenticate("write")
    if auth.org_id != org_id:
        raise NotFound("unknown webhook source")  # never reveal another org's source
    return auth.key_id


# --- sources ------------------------------------------------------------------------------------------
class SourceCreate(BaseModel):
    connector: str
    name: str = ""
    secret: str | None = Field(None, description="Signing secret (HubSpot client secret, Stripe whsec_..., ...).")
    config: dict[str, Any] = Field(default_factory=dict,
                                   description="public_url, allowed_org_ids, api_base, access_token, fetch ...")
    mapping: str | None = Field(None, description="YAML mapping; default mapping of the connector when absent.")


class SourceUpdate(BaseModel):
    name: str | None = None
    secret: str | None = None
    config: dict[str, Any] | None = None
    mapping: str | None = None
    active: bool | None = None


def _check_mapping(text: str | None) -> None:
    if text:
        load_mapping_text(text, path="mapping")  # ValidationFailed with line numbers


@endpoint(bp, "/api/v1/sources", methods=("POST",), scope="admin", body=SourceCreate, response=sch.Source,
          status=201)
def create_source(auth: KeyInfo, body: SourceCreate) -> tuple[dict[str, Any], int]:
    """Configure a webhook source at run time; its secret and path token are returned once."""
    try:
        connector_info(body.connector)
    except NotFound:
        raise ValidationFailed(f"unknown connector {body.connector!r}",
                               details={"connectors": connector_names()}) from None
    validate_config(body.connector, body.config)  # 422 naming each bad field
    _check_mapping(body.mapping)
    out = state().services.sources.create(auth.org_id, connector=body.connector, name=body.name,
                                          secret=body.secret, config=body.config, mapping_yaml=body.mapping)
    out["webhookUrl"] = request.host_url.rstrip("/") + out["webhookPath"]
    return out, 201


@endpoint(bp, "/api/v1/sources", methods=("GET",), scope="read", response=sch.SourceList)
def list_sources(auth: KeyInfo) -> dict[str, Any]:
    """The org's sources (secrets never shown)."""
    return {"sources": state().services.sources.list(auth.org_id)}


@endpoint(bp, "/api/v1/sources/<source_id>", methods=("GET",), scope="read", response=sch.Source)
def get_source(auth: KeyInfo, source_id: str) -> dict[str, Any]:
    """One source."""
    return state().services.sources.show(auth.org_id, source_id)


@endpoint(bp, "/api/v1/sources/<source_id>", methods=("PATCH",), scope="admin", body=SourceUpdate,
          response=sch.Source)
def update_source(auth: KeyInfo, body: SourceUpdate, source_id: str) -> dict[str, Any]:
    """Change a source; a new secret keeps the previous one valid during the roll."""
    sources = state().services.sources
    if body.config is not None:
        validate_config(sources.get(auth.org_id, source_id).connector, body.config)
    _check_mapping(body.mapping)
    return sources.update(auth.org_id, source_id, name=body.name, secret=body.secret,
                          config=body.config, mapping_yaml=body.mapping, active=body.active)


@endpoint(bp, "/api/v1/sources/<source_id>/reveal", methods=("POST",), scope="admin", response=sch.Source)
def reveal_source(auth: KeyInfo, source_id: str) -> dict[str, Any]:
    """The source's signing secret, path token and tokened webhook path (admin; never in list or read)."""
    out = state().services.sources.reveal(auth.org_id, source_id)
    out["webhookUrl"] = request.host_url.rstrip("/") + out["webhookPath"]
    return out


@endpoint(bp, "/api/v1/sources/<source_id>/rotate-token", methods=("POST",), scope="admin", response=sch.Source)
def rotate_source_token(auth: KeyInfo, source_id: str) -> dict[str, Any]:
    """Replace the source's path token (the old one is refused at once) and show the new one, once."""
    out = state().services.sources.rotate_token(auth.org_id, source_id)
    out["webhookUrl"] = request.host_url.rstrip("/") + out["webhookPath"]
    return out


@endpoint(bp, "/api/v1/sources/<source_id>", methods=("DELETE",), scope="admin", response=common.Deleted)
def delete_source(auth: KeyInfo, source_id: str) -> dict[str, Any]:
    """Delete a source and its event log."""
    state().services.sources.delete(auth.org_id, source_id)
    return {"id": source_id, "deleted": True}


# --- event log ---------------------------------------------------------------------------------------
@endpoint(bp, "/api/v1/events", methods=("GET",), scope="read", response=sch.EventList, query=sch.EventListQuery)
def list_events(auth: KeyInfo) -> dict[str, Any]:
    """Inbound events, newest first (``?status=received|processing|processed|failed|dead&source=ID&limit=N``)."""
    try:
        limit = min(max(int(request.args.get("limit", 50)), 1), 500)
    except ValueError:
        raise BadRequest("limit must be a whole number") from None
    services = state().services
    return {"events": services.events.list(auth.org_id, status=request.args.get("status"),
                                           source_id=request.args.get("source"), limit=limit),
            "counts": services.events.counts(auth.org_id)}


@endpoint(bp, "/api/v1/events/<event_id>", methods=("GET",), scope="read", response=sch.InboundEvent)
def show_event(auth: KeyInfo, event_id: str) -> dict[str, Any]:
    """One event with its payload, attempts and last error."""
    return event_to_dict(state().services.events.get(auth.org_id, event_id), payload=True)


@endpoint(bp, "/api/v1/events/<event_id>/replay", methods=("POST",), scope="write", response=sch.InboundEvent,
          status=202, errors=(409,))
def replay_event(auth: KeyInfo, event_id: str) -> tuple[dict[str, Any], int]:
    """Process an event again (e.g. a dead letter after fixing its mapping)."""
    st = state()
    out = st.services.events.replay(auth.org_id, event_id)
    enqueue_each(st.redis, "process_event", [event_id])
    return out, 202
