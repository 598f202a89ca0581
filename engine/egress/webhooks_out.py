"""Outbound webhooks: per-org subscriptions, the outbox dispatcher and signed delivery with retries.

- A subscription is a ``webhook`` (Standard Webhooks envelope) or a ``zapier_hook`` (REST hook: the flat
  event item as the body). Both are signed and share the same delivery path.
- ``dispatch`` turns undispatched outbox rows into one delivery per matching active subscription of the
  same org and marks the rows dispatched, in one transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL;
  SQLite's write lock serialises dispatchers).
- ``attempt`` claims a due delivery (a lease fenced by the attempt number: a holder whose lease expired and
  was taken over only logs its attempt), re-checks the target address, POSTs and records the attempt. Only 2xx
  succeeds; 410 disables the subscription; 429/502/504 honour ``Retry-After`` when it is later than the
  schedule; after the last scheduled attempt the delivery is dead (the ``deliveries`` retry policy of
  :mod:`memrelay.engine.core.backoff`). Requests go through the guarded client
  (:mod:`memrelay.engine.egress.http`) under the org's allowlist.
- ``rotate_secret`` gives a subscription a new secret; during the overlap window every delivery is signed
  with both (``webhook-signature: v1,<new> v1,<old>``), after it with the new one only.
- ``feed`` pages through the org's events with an opaque cursor (newest first for Zapier's polling fallback,
  or oldest first after a cursor for tailing), optionally filtered by entity type and property name.
"""

from __future__ import annotations

import base64
import builtins
import json
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from memrelay.engine.core.backoff import DELIVERIES, RetryPolicy, retry_after
from memrelay.engine.core.errors import BadRequest, Conflict, NotFound, UpstreamError, ValidationFailed
from memrelay.engine.core.util import as_aware, iso, new_id, utcnow
from memrelay.engine.egress.http import (
    EgressPolicy,
    GuardedSession,
    HttpResult,
    ResponseTooLarge,
    post_for_status,
)
from memrelay.engine.egress.signing import new_secret, signed_headers
from memrelay.engine.egress.ssrf import BlockedAddress, check_url, normalise_allowlist
from memrelay.engine.stores.db.database import Database
from memrelay.engine.stores.db.models import Org, OutboxEvent
from memrelay.engine.stores.db.models_outbound import WebhookAttempt, WebhookDelivery, WebhookSubscription
from memrelay.engine.stores.outbox import EVENT_TYPES

RETRY_SCHEDULE_S: tuple[float, ...] = (0.0, *DELIVERIES.schedule)  # delay before attempt n: now, then the policy
TIMEOUT_S = 15.0
LEASE_S = 60
THROTTLE_STATUSES = frozenset({429, 502, 504})
MAX_PAGE_SIZE = 200
DISPATCH_BATCH = 500
KINDS = ("webhook", "zapier_hook")
ALLOWLIST_SETTING = "webhook_allowlist"
CLAIMABLE = ("pending", "retrying", "manual", "sending")  # "sending" only once its lease has expired
ROTATION_OVERLAP_S = 24 * 3600  # default window during which a rotated-out secret still signs
MAX_ROTATION_OVERLAP_S = 30 * 24 * 3600
FEED_MAX_LIMIT = 100
FEED_SCAN_BATCH = 200
FEED_MAX_SCAN = 5000  # rows examined per page when filtering; the cursor resumes after the last one examined
FEED_SETTLE_S = 2.0  # tailing (``after``) skips events younger than this: a slower transaction may still commit


class DeliveryFailed(UpstreamError):
    """A delivery attempt did not get a 2xx (raised by the job so RQ records the failure)."""

    code = "delivery_failed"


# --- rendering -----------------------------------------------------------------------------------------
def subscription_to_dict(sub: WebhookSubscription, *, reveal: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": sub.id, "kind": sub.kind, "url": sub.url, "eventTypes": sub.event_types,
        "description": sub.description, "active": sub.active, "disabledReason": sub.disabled_reason,
        "createdAt": iso(sub.created_at), "updatedAt": iso(sub.updated_at)}
    if reveal:
        out["secret"] = sub.secret
    expires = previous_secret_expiry(sub)
    out["previousSecretExpiresAt"] = iso(expires) if expires else None
    return out


def previous_secret_expiry(sub: WebhookSubscription, now: datetime | None = None) -> datetime | None:
    """When the rotated-out secret stops signing, or None when there is none (or its window is over)."""
    if not sub.previous_secret or sub.previous_secret_expires_at is None:
        return None
    expires = as_aware(sub.previous_secret_expires_at)
    return expires if expires is not None and expires > (now or utcnow()) else None


def signing_secrets(sub: WebhookSubscription, now: datetime | None = None) -> tuple[str, ...]:
    """The secrets a delivery is signed with now: the current one, plus the previous one inside its window."""
    if previous_secret_expiry(sub, now) is not None and sub.previous_secret:
        return (sub.secret, sub.previous_secret)
    return (sub.secret,)


def attempt_to_dict(a: WebhookAttempt) -> dict[str, Any]:
    return {"attempt": a.attempt, "manual": a.manual, "statusCode": a.status_code,
            "responseSnippet": a.response_snippet, "durationMs": a.duration_ms, "error": a.error,
            "at": iso(a.created_at)}


def delivery_to_dict(d: WebhookDelivery, attempts: list[WebhookAttempt]) -> dict[str, Any]:
    return {"id": d.id, "subscriptionId": d.subscription_id, "eventId": d.event_id, "eventType": d.event_type,
            "status": d.status, "attempts": d.attempts, "nextAttemptAt": iso(d.next_attempt_at),
            "lastStatusCode": d.last_status_code, "lastError": d.last_error, "createdAt": iso(d.created_at),
            "completedAt": iso(d.completed_at), "log": [attempt_to_dict(a) for a in attempts]}


def event_dict(ev: OutboxEvent) -> dict[str, Any]:
    return {"id": ev.public_id, "type": ev.event_type, "created_at": iso(ev.created_at), "data": ev.payload}


def zapier_item(event: dict[str, Any]) -> dict[str, Any]:
    """An outbox event (:func:`event_dict` shape) as Zapier wants it: the raw data plus a stable id.

    The same item is a polling trigger's array element and a REST hook's body, so samples match live data."""
    return {**event["data"], "id": event["id"], "event": event["type"], "created_at": event["created_at"]}


def message_body(kind: str, ev: OutboxEvent) -> bytes:
    """The exact bytes sent (and signed) for one event."""
    event = event_dict(ev)
    if kind == "zapier_hook":
        doc = zapier_item(event)
    else:  # the Standard Webhooks payload structure
        doc = {"id": event["id"], "type": event["type"], "timestamp": event["created_at"], "data": event["data"]}
    return json.dumps(doc, separators=(",", ":"), default=str).encode()


def check_event_types(types: list[str]) -> list[str]:
    """Known outbox event types, or ``["*"]`` for all; 422 naming the unknown ones."""
    if not types:
        raise ValidationFailed("eventTypes must name at least one event type (or '*')",
                               details={"eventTypes": list(EVENT_TYPES)})
    if "*" in types:
        return ["*"]
    unknown = [t for t in types if t not in EVENT_TYPES]
    if unknown:
        raise ValidationFailed(f"unknown event type(s): {', '.join(unknown)}",
                               details={"unknown": unknown, "eventTypes": list(EVENT_TYPES)})
    return list(dict.fromkeys(types))


@dataclass(frozen=True)
class _Claim:
    """What one attempt needs, read under the claim."""

    delivery_id: str
    org_id: str
    subscription_id: str
    url: str
    secrets: tuple[str, ...]
    msg_id: str
    body: bytes
    attempt: int
    manual: bool


class WebhooksOut:
    """Subscriptions, dispatch and delivery. ``schedule`` (seconds before each attempt) is injectable."""

    def __init__(self, db: Database, *, schedule: tuple[float, ...] = RETRY_SCHEDULE_S,
                 timeout_s: float = TIMEOUT_S, allow_local: bool = False):
        if not schedule:
            raise ValueError("the retry schedule needs at least one attempt")
        self.db = db
        self.schedule = tuple(schedule)
        self.timeout_s = timeout_s
        self.allow_local = allow_local  # operator setting: may an allowlist admit loopback / link-local targets?

    # --- allowlist ---------------------------------------------------------------------------------
    def allowlist(self, org_id: str) -> list[str]:
        with self.db.read() as s:
            org = s.get(Org, org_id)
            return list((org.settings or {}).get(ALLOWLIST_SETTING, [])) if org else []

    def set_allowlist(self, org_id: str, hosts: list[str]) -> list[str]:
        """Replace the org's allowlist of hosts / IPs / CIDRs that may be non-public targets."""
        entries = normalise_allowlist(hosts)
        with self.db.session() as s:
            org = s.get(Org, org_id)
            if org is None:
                raise NotFound(f"organisation {org_id} not found")
            org.settings = {**(org.settings or {}), ALLOWLIST_SETTING: entries}
        return entries

    # --- subscriptions -----------------------------------------------------------------------------
    def create(self, org_id: str, *, url: str, event_types: list[str], description: str = "",
               active: bool = True, kind: str = "webhook") -> dict[str, Any]:
        """A new subscription; its ``whsec_`` secret is in the answer, once."""
        if kind not in KINDS:
            raise BadRequest(f"unknown subscription kind {kind!r}")
        types = check_event_types(event_types)
        check_url(url, self.allowlist(org_id), allow_local=self.allow_local)
        now = utcnow()
        sub = WebhookSubscription(id=new_id("whk"), org_id=org_id, kind=kind, url=url.strip(), event_types=types,
                                  description=description, secret=new_secret(), active=active,
                                  created_at=now, updated_at=now)
        with self.db.session() as s:
            s.add(sub)
        return subscription_to_dict(sub, reveal=True)

    def list(self, org_id: str, *, kind: str | None = None) -> list[dict[str, Any]]:
        q = select(WebhookSubscription).where(WebhookSubscription.org_id == org_id)
        if kind:
            q = q.where(WebhookSubscription.kind == kind)
        with self.db.read() as s:
            return [subscription_to_dict(x) for x in s.scalars(q.order_by(WebhookSubscription.created_at))]

    def get(self, org_id: str, sub_id: str) -> dict[str, Any]:
        with self.db.read() as s:
            return subscription_to_dict(self._sub(s, org_id, sub_id))

    def update(self, org_id: str, sub_id: str, *, url: str | None = None, event_types: builtins.list[str] | None = None,
               description: str | None = None, active: bool | None = None) -> dict[str, Any]:
        """Change fields; re-activating clears the reason it was disabled."""
        if url is not None:
            check_url(url, self.allowlist(org_id), allow_local=self.allow_local)
        with self.db.session() as s:
            sub = self._sub(s, org_id, sub_id)
            if url is not None:
                sub.url = url.strip()
            if event_types is not None:
                sub.event_types = check_event_types(event_types)
            if description is not None:
                sub.description = description
            if active is not None:
                sub.active = active
                sub.disabled_reason = None if active else sub.disabled_reason
            sub.updated_at = utcnow()
            return subscription_to_dict(sub)

    def rotate_secret(self, org_id: str, sub_id: str, *, overlap_s: int = ROTATION_OVERLAP_S,
                      kind: str | None = None) -> dict[str, Any]:
        """A new ``whsec_`` secret (in the answer, once). For ``overlap_s`` seconds deliveries are signed with
        the new and the old secret (receivers switch at their pace); 0 retires the old one at once. Rotating
        again inside a window replaces the previous secret with the one being rotated out."""
        if not 0 <= overlap_s <= MAX_ROTATION_OVERLAP_S:
            raise ValidationFailed(f"overlapSeconds must be between 0 and {MAX_ROTATION_OVERLAP_S}",
                                   details={"overlapSeconds": overlap_s})
        now = utcnow()
        with self.db.session() as s:
            sub = self._sub(s, org_id, sub_id, kind=kind)
            sub.previous_secret = sub.secret if overlap_s else None
            sub.previous_secret_expires_at = now + timedelta(seconds=overlap_s) if overlap_s else None
            sub.secret, sub.updated_at = new_secret(), now
            out = subscription_to_dict(sub, reveal=True)
        return {**out, "overlapSeconds": overlap_s}

    def delete(self, org_id: str, sub_id: str, *, kind: str | None = None) -> None:
        """Delete a subscription with its delivery log."""
        with self.db.session() as s:
            s.delete(self._sub(s, org_id, sub_id, kind=kind))

    @staticmethod
    def _sub(s: Session, org_id: str, sub_id: str, *, kind: str | None = None) -> WebhookSubscription:
        sub = s.get(WebhookSubscription, sub_id)
        if sub is None or sub.org_id != org_id or (kind and sub.kind != kind):
            raise NotFound(f"subscription {sub_id} not found")
        return sub

    # --- dispatch ----------------------------------------------------------------------------------
    def dispatch(self, *, limit: int = DISPATCH_BATCH) -> int:
        """Fan undispatched outbox rows out to matching subscriptions; returns how many rows were taken."""
        now = utcnow()
        with self.db.session() as s:
            rows = s.scalars(select(OutboxEvent).where(OutboxEvent.dispatched_at.is_(None))
                             .order_by(OutboxEvent.id).limit(limit).with_for_update(skip_locked=True)).all()
            if not rows:
                return 0
            subs: dict[str, list[WebhookSubscription]] = defaultdict(list)
            for sub in s.scalars(select(WebhookSubscription).where(
                    WebhookSubscription.org_id.in_({r.org_id for r in rows}), WebhookSubscription.active.is_(True))):
                subs[sub.org_id].append(sub)
            first_at = now + timedelta(seconds=self.schedule[0])
            deliveries = [
                {"id": new_id("dlv"), "org_id": ev.org_id, "subscription_id": sub.id, "outbox_id": ev.id,
                 "event_id": ev.public_id, "event_type": ev.event_type, "status": "pending", "attempts": 0,
                 "next_attempt_at": first_at, "created_at": now}
                for ev in rows for sub in subs[ev.org_id] if _matches(sub, ev)]
            if deliveries:
                s.execute(insert(WebhookDelivery), deliveries)
            s.execute(update(OutboxEvent).where(OutboxEvent.id.in_([r.id for r in rows]))
                      .values(dispatched_at=now), execution_options={"synchronize_session": False})
            return len(rows)

    def due(self, *, limit: int = 500) -> builtins.list[str]:
        """Deliveries whose next attempt is due (including attempts whose worker died mid-send)."""
        with self.db.read() as s:
            return list(s.scalars(select(WebhookDelivery.id).where(
                WebhookDelivery.status.in_(CLAIMABLE), WebhookDelivery.next_attempt_at <= utcnow())
                .order_by(WebhookDelivery.next_attempt_at).limit(limit)))

    # --- delivery ----------------------------------------------------------------------------------
    def attempt(self, delivery_id: str) -> dict[str, Any]:
        """Claim the delivery if due, send it once, record the attempt and schedule what follows."""
        claim = self._claim(delivery_id)
        if claim is None:
            return {"deliveryId": delivery_id, "skipped": "not due, done, or being sent"}
        headers = {"Content-Type": "application/json", "User-Agent": "memrelay-webhooks/1",
                   **signed_headers(claim.secrets, claim.msg_id, claim.body)}
        result: HttpResult | None = None
        error: str | None = None
        started = time.perf_counter()
        try:  # the guarded client checks the address again (DNS may have changed) and connects to it
            policy = EgressPolicy.user_url(self.allowlist(claim.org_id), timeout_s=self.timeout_s,
                                           allow_local=self.allow_local)
            with GuardedSession(policy) as http:
                result = post_for_status(http, claim.url, claim.body, headers)
        except BlockedAddress as exc:
            error = f"blocked: {exc.message}"
        except ResponseTooLarge as exc:
            error = exc.message
        except (requests.RequestException, OSError) as exc:
            error = f"{exc.__class__.__name__}: {exc}"
        return self._record(claim, result, error, int((time.perf_counter() - started) * 1000))

    def _claim(self, delivery_id: str) -> _Claim | None:
        now = utcnow()
        with self.db.session() as s:
            d = s.scalar(select(WebhookDelivery).where(WebhookDelivery.id == delivery_id)
                         .with_for_update(skip_locked=True))
            if d is None or d.status not in CLAIMABLE or as_aware(d.next_attempt_at) > now:  # type: ignore[operator]
                return None
            sub = s.get(WebhookSubscription, d.subscription_id)
            ev = s.get(OutboxEvent, d.outbox_id)
            if sub is None or ev is None or not sub.active:
                d.status, d.next_attempt_at, d.completed_at = "cancelled", None, now
                d.last_error = "subscription disabled" if sub is not None else "event gone"
                return None
            manual = d.status == "manual"
            d.status, d.attempts, d.next_attempt_at = "sending", d.attempts + 1, now + timedelta(seconds=LEASE_S)
            return _Claim(d.id, d.org_id, sub.id, sub.url, signing_secrets(sub, now), d.event_id,
                          message_body(sub.kind, ev), d.attempts, manual)

    def _record(self, claim: _Claim, result: HttpResult | None, error: str | None,
                duration_ms: int) -> dict[str, Any]:
        now = utcnow()
        code = result.status if result else None
        with self.db.session() as s:
            d = s.get(WebhookDelivery, claim.delivery_id, with_for_update=True)
            if d is None:  # the subscription was deleted meanwhile
                return {"deliveryId": claim.delivery_id, "status": "deleted", "statusCode": code}
            s.add(WebhookAttempt(org_id=claim.org_id, delivery_id=d.id, attempt=claim.attempt, manual=claim.manual,
                                 status_code=code, response_snippet=result.snippet if result else None,
                                 duration_ms=duration_ms, error=error, created_at=now))
            if d.status != "sending" or d.attempts != claim.attempt:  # fenced: a newer attempt holds the lease
                return {"deliveryId": d.id, "status": "stale", "attempt": claim.attempt, "statusCode": code,
                        "error": "the lease of this attempt expired and was taken over"}
            d.last_status_code, d.last_error = code, error or (None if code and code < 300 else f"HTTP {code}")
            d.status, d.next_attempt_at, d.completed_at = self._next(d.attempts, result, now)
            if code == 410:
                sub = s.get(WebhookSubscription, claim.subscription_id)
                if sub is not None:
                    sub.active, sub.updated_at = False, now
                    sub.disabled_reason = f"the target answered 410 Gone at {iso(now)}"
            return {"deliveryId": d.id, "status": d.status, "attempt": claim.attempt, "statusCode": code,
                    "error": d.last_error, "nextAttemptAt": iso(d.next_attempt_at)}

    def _next(self, attempts: int, result: HttpResult | None, now: datetime
              ) -> tuple[str, datetime | None, datetime | None]:
        """(status, next_attempt_at, completed_at) after an attempt."""
        if result is not None and 200 <= result.status < 300:
            return "succeeded", None, now
        if result is not None and result.status == 410:
            return "cancelled", None, now
        throttled = result is not None and result.status in THROTTLE_STATUSES
        hint = retry_after(result.headers, now=now) if result is not None and throttled else None
        delay = self.retry_policy.next_delay(attempts, retry_after=hint)
        if delay is None:
            return "dead", None, now
        return "retrying", now + timedelta(seconds=delay), None

    @property
    def retry_policy(self) -> RetryPolicy:
        """The ``deliveries`` policy over this instance's ``schedule`` (``schedule[0]``: before attempt 1)."""
        return DELIVERIES.but(max_attempts=len(self.schedule), schedule=tuple(self.schedule[1:]) or (0.0,))

    def poll(self, org_id: str, event_type: str, *, limit: int = 50) -> builtins.list[dict[str, Any]]:
        """A polling trigger's items: the org's recent events of one type, newest first."""
        return self.feed(org_id, [event_type], limit=limit)["items"]

    def feed(self, org_id: str, event_types: builtins.list[str], *, limit: int = 50, cursor: str | None = None,
             entity_type: str | None = None, property_name: str | None = None) -> dict[str, Any]:
        """A page of the org's events as Zapier items, with ``nextCursor`` (None on the last page).

        Without a cursor or with a ``before`` cursor: newest first, each next page strictly older (new events
        never shift pages, so paging misses nothing; a poller re-reads the first page and dedupes by ``id``).
        With an ``after`` cursor (``tail``): oldest first, strictly newer than the cursor, skipping events
        younger than :data:`FEED_SETTLE_S`. ``entity_type`` / ``property_name`` keep events about that entity
        type / that changed property (``propertyName``, or a key of ``properties``)."""
        types = check_event_types(event_types)
        if not 1 <= limit <= FEED_MAX_LIMIT:
            raise BadRequest(f"limit must be between 1 and {FEED_MAX_LIMIT}")
        direction, bound = decode_cursor(cursor)
        q = select(OutboxEvent).where(OutboxEvent.org_id == org_id)
        if types != ["*"]:
            q = q.where(OutboxEvent.event_type.in_(types) if len(types) > 1 else OutboxEvent.event_type == types[0])
        if direction == "after":
            q = q.where(OutboxEvent.created_at <= utcnow() - timedelta(seconds=FEED_SETTLE_S))
        items: builtins.list[dict[str, Any]] = []
        last: int | None = bound
        scanned, exhausted = 0, False
        order = OutboxEvent.id.asc() if direction == "after" else OutboxEvent.id.desc()
        with self.db.read() as s:
            while True:
                page = q
                if last is not None:
                    page = page.where(OutboxEvent.id > last if direction == "after" else OutboxEvent.id < last)
                rows = s.scalars(page.order_by(order).limit(FEED_SCAN_BATCH)).all()
                for ev in rows:
                    scanned += 1
                    last = ev.id
                    if _wanted(ev.payload, entity_type, property_name):
                        items.append(zapier_item(event_dict(ev)))
                        if len(items) == limit:
                            break
                short = len(rows) < FEED_SCAN_BATCH
                if len(items) == limit:
                    exhausted = short and bool(rows) and last == rows[-1].id
                    break
                if short:
                    exhausted = True
                    break
                if scanned >= FEED_MAX_SCAN:
                    break
        if direction == "after":  # tailing: always hand back where to resume, even with nothing new
            return {"items": items, "nextCursor": encode_cursor("after", last) if last is not None else cursor,
                    "hasMore": not exhausted}
        more = not exhausted and last is not None
        return {"items": items, "nextCursor": encode_cursor("before", last) if more else None, "hasMore": more}

    def redeliver(self, org_id: str, sub_id: str, delivery_id: str) -> dict[str, Any]:
        """Queue one manual attempt now (same ``webhook-id``); the subscription must be active."""
        with self.db.session() as s:
            sub = self._sub(s, org_id, sub_id)
            d = s.get(WebhookDelivery, delivery_id)
            if d is None or d.subscription_id != sub.id:
                raise NotFound(f"delivery {delivery_id} not found")
            if not sub.active:
                raise Conflict("the subscription is disabled; re-activate it first",
                               details={"disabledReason": sub.disabled_reason})
            if d.status == "sending":
                raise Conflict("this delivery is being sent right now")
            d.status, d.next_attempt_at, d.completed_at = "manual", utcnow(), None
            return delivery_to_dict(d, [])

    def deliveries(self, org_id: str, sub_id: str, *, page: int = 1, page_size: int = 50) -> dict[str, Any]:
        """The subscription's deliveries, newest event first, each with its attempt log."""
        if page < 1 or not 1 <= page_size <= MAX_PAGE_SIZE:
            raise BadRequest(f"page must be >= 1 and pageSize between 1 and {MAX_PAGE_SIZE}")
        with self.db.read() as s:
            self._sub(s, org_id, sub_id)
            where = WebhookDelivery.subscription_id == sub_id
            total = s.scalar(select(func.count()).select_from(WebhookDelivery).where(where)) or 0
            rows = s.scalars(select(WebhookDelivery).where(where).order_by(WebhookDelivery.outbox_id.desc())
                             .offset((page - 1) * page_size).limit(page_size)).all()
            log: dict[str, list[WebhookAttempt]] = defaultdict(list)
            for a in s.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id.in_([d.id for d in rows]))
                               .order_by(WebhookAttempt.id)):
                log[a.delivery_id].append(a)
        return {"deliveries": [delivery_to_dict(d, log[d.id]) for d in rows], "page": page, "pageSize": page_size,
                "total": total, "hasMore": page * page_size < total}


def encode_cursor(direction: str, outbox_id: int | None) -> str:
    """An opaque feed cursor: a direction (``before`` / ``after``) and an outbox row id."""
    raw = json.dumps({"d": direction[0], "i": outbox_id or 0}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[str, int | None]:
    """``(direction, bound)`` of a cursor; ``("before", None)`` for none; ``after:0`` / ``"tail"`` = from the start."""
    if not cursor:
        return "before", None
    if cursor == "tail":
        return "after", 0
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        direction = {"b": "before", "a": "after"}[data["d"]]
        bound = int(data["i"])
    except (ValueError, KeyError, TypeError, OverflowError, RecursionError):
        raise BadRequest("cursor is invalid", details={"cursor": cursor[:100]}) from None
    if not 0 <= bound < 2**62:
        raise BadRequest("cursor is invalid", details={"cursor": cursor[:100]})
    return direction, bound


def _wanted(payload: dict[str, Any], entity_type: str | None, property_name: str | None) -> bool:
    if entity_type and payload.get("type") != entity_type:
        return False
    if property_name:
        changed = payload.get("properties")
        return payload.get("propertyName") == property_name or (
            isinstance(changed, dict) and property_name in changed)
    return True


def _matches(sub: WebhookSubscription, ev: OutboxEvent) -> bool:
    """Same org (guaranteed by the caller), wanted type, and not older than the subscription."""
    wanted = "*" in sub.event_types or ev.event_type in sub.event_types
    return wanted and as_aware(ev.created_at) >= as_aware(sub.created_at)

