"""Stripe webhooks: ``Stripe-Signature`` verification via stripe-python and customer-centric parsing.

The signature itself is checked by ``stripe.WebhookSignature.verify_header`` (any ``v1`` may match, so
Stripe's own secret rolls work) for the source's current and previous secrets; the 300 s timestamp
window is then enforced by the shared :func:`memrelay.connectors.signing.check_fresh` so the clock can be
injected in tests (the library's own tolerance check always reads ``time.time()``).

Every supported event is about a person, so ``object_type`` is ``contact``; ``record`` carries a
normalised ``customer_email`` and amounts in major units (see :func:`memrelay.connectors.money.amount_major`,
re-exported here).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stripe import SignatureVerificationError, WebhookSignature

from memrelay.connectors.base import (
    BaseConnector,
    InboundEvent,
    SourceConfig,
    Verified,
    as_dict,
    as_id,
    header,
    load_json,
)
from memrelay.connectors.money import amount_major, format_amount
from memrelay.connectors.signing import check_fresh, parse_signature_pairs, parse_timestamp, require_secrets
from memrelay.connectors.timeutil import from_epoch
from memrelay.engine.core.errors import BadRequest, SignatureError

__all__ = ["StripeConnector", "amount_major", "format_amount", "stripe_record"]

TOLERANCE_S = 300

EXACT_TYPES = frozenset({"checkout.session.completed", "payment_intent.succeeded"})
PREFIX_TYPES = ("customer.", "invoice.")  # customer.* includes customer.subscription.*


def normalise_email(value: Any) -> str | None:
    if not isinstance(value, str) or "@" not in value:
        return None
    return value.strip().lower() or None


class StripeConnector(BaseConnector):
    name = "stripe"

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
        sig_header = header(headers, "Stripe-Signature")
        timestamp, signatures = parse_signature_pairs(sig_header, what="Stripe-Signature")
        if not signatures:
            raise SignatureError("Stripe-Signature has no v1 signature")
        try:
            payload = raw_body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRequest("body is not valid UTF-8") from exc
        for secret in require_secrets(source):
            try:
                WebhookSignature.verify_header(payload, sig_header, secret, tolerance=None)
            except SignatureVerificationError:
                continue
            check_fresh(
                parse_timestamp(timestamp, what="Stripe-Signature timestamp"), now=now, tolerance=TOLERANCE_S
            )
            return self.verified(source, raw_body, headers)
        raise SignatureError("no Stripe-Signature v1 signature matches")

    def parse(self, verified: Verified) -> list[InboundEvent]:
        """One Stripe event per request; unsupported event types yield no events (still acknowledged)."""
        source = self.opened(verified).source
        event = load_json(verified.body)
        if not isinstance(event, dict):
            raise BadRequest("Stripe webhook body must be a JSON object")
        event_id, event_type, created = event.get("id"), event.get("type"), event.get("created")
        obj = (event.get("data") or {}).get("object") if isinstance(event.get("data"), dict) else None
        if not isinstance(event_id, str) or not event_id:
            raise BadRequest("Stripe event has no id")
        if not isinstance(event_type, str) or not isinstance(obj, dict):
            raise BadRequest("Stripe event has no type or data.object")
        if isinstance(created, bool) or not isinstance(created, int):
            raise BadRequest("Stripe event has no integer created timestamp")
        if not (event_type in EXACT_TYPES or event_type.startswith(PREFIX_TYPES)):
            return []

        record = stripe_record(obj)
        attributes = {
            key: event[key] for key in ("livemode", "api_version", "account") if event.get(key) is not None
        }
        attributes.update(
            {k: record[k] for k in ("customer_email", "amount", "currency") if record.get(k) is not None}
        )
        return [
            self.new_event(
                source,
                dedup_key=f"stripe:{event_id}",
                event_type=event_type,
                object_type="contact",
                source_object_type=str(obj.get("object") or event_type.rsplit(".", 1)[0]),
                object_id=record.get("customer_id"),
                occurred_at=from_epoch(created),
                payload=event,
                record=record,
                attributes=attributes,
            )
        ]


# -- record extraction --------------------------------------------------------------------------------


def _customer_id(obj: Mapping[str, Any]) -> str | None:
    if obj.get("object") == "customer":
        return as_id(obj.get("id"))
    customer = obj.get("customer")
    if isinstance(customer, dict):  # expanded
        return as_id(customer.get("id"))
    return as_id(customer)


def _contact_details(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Email, name, phone and address wherever this object type keeps them."""
    kind = obj.get("object")
    details = as_dict(obj.get("customer_details"))
    expanded = as_dict(obj.get("customer"))
    if kind == "customer":
        email, name, phone, address = obj.get("email"), obj.get("name"), obj.get("phone"), obj.get("address")
    elif kind == "invoice":
        email, name = obj.get("customer_email"), obj.get("customer_name")
        phone, address = obj.get("customer_phone"), obj.get("customer_address")
    elif kind == "checkout.session":
        email = details.get("email") or obj.get("customer_email")
        name, phone, address = details.get("name"), details.get("phone"), details.get("address")
    elif kind == "payment_intent":
        email, name, phone, address = obj.get("receipt_email"), None, None, None
    else:
        email, name, phone, address = None, None, None, None
    email = email or expanded.get("email")
    name = name or expanded.get("name")
    address = as_dict(address)
    return {
        "customer_email": normalise_email(email),
        "customer_name": name.strip() if isinstance(name, str) and name.strip() else None,
        "customer_phone": phone or None,
        "city": address.get("city") or None,
        "country": address.get("country") or None,
    }


def _amount_minor(obj: Mapping[str, Any]) -> int | None:
    kind = obj.get("object")
    candidates: tuple[str, ...]
    if kind == "invoice":
        candidates = (
            ("amount_paid", "amount_due", "total") if obj.get("status") == "paid" else ("amount_due", "total")
        )
    elif kind == "checkout.session":
        candidates = ("amount_total",)
    elif kind == "payment_intent":
        candidates = ("amount_received", "amount")
    elif kind == "subscription":
        return _subscription_amount(obj)
    else:
        candidates = ("amount",)
    for key in candidates:
        value = obj.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _subscription_items(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    items = obj.get("items")
    data = items.get("data") if isinstance(items, dict) else None
    return [item for item in data or [] if isinstance(item, dict)]


def _subscription_amount(obj: Mapping[str, Any]) -> int | None:
    total, seen = 0, False
    for item in _subscription_items(obj):
        price = as_dict(item.get("price"))
        unit = price.get("unit_amount")
        if isinstance(unit, int):
            total += unit * int(item.get("quantity") or 1)
            seen = True
    return total if seen else None


def _subscription_plan(obj: Mapping[str, Any]) -> dict[str, Any]:
    items = _subscription_items(obj)
    if not items:
        return {}
    price = as_dict(items[0].get("price"))
    recurring = as_dict(price.get("recurring"))
    product = price.get("product")
    product_name = product.get("name") if isinstance(product, dict) else None
    return {
        "plan_name": price.get("nickname")
        or product_name
        or as_id(product if isinstance(product, str) else None),
        "interval": recurring.get("interval"),
        "currency": price.get("currency"),
    }


def stripe_record(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The mapping input for one Stripe object: ids, contact details, amounts; ``None`` values dropped."""
    record: dict[str, Any] = {
        "id": as_id(obj.get("id")),
        "object": obj.get("object"),
        "customer_id": _customer_id(obj),
        "status": obj.get("status"),
        "number": obj.get("number"),
        "description": obj.get("description"),
        "created": from_epoch(obj["created"]).isoformat() if isinstance(obj.get("created"), int) else None,
        **_contact_details(obj),
    }
    if obj.get("object") == "subscription":
        record.update(_subscription_plan(obj))
    currency = obj.get("currency") or record.get("currency")
    minor = _amount_minor(obj)
    if isinstance(currency, str) and currency:
        record["currency"] = currency.upper()
        if minor is not None:
            record["amount_minor"] = minor
            record["amount"] = amount_major(minor, currency)
            record["amount_display"] = format_amount(minor, currency)
    record["data"] = dict(obj)
    return {key: value for key, value in record.items() if value is not None}
