"""Stripe: verification through stripe-python's WebhookSignature, parsing and minor-unit amounts."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
from deliver import deliver, fixture_bytes
from stripe import WebhookSignature

from memrelay.connectors import get_connector
from memrelay.connectors.money import amount_major, currency_exponent, format_amount
from memrelay.engine.core.errors import BadRequest, SignatureError

SECRET = "whsec_test_secret_0123456789"
OLD_SECRET = "whsec_old_secret_9876543210"

stripe_connector = get_connector("stripe")


def invoice_event(**overrides):
    event = {
        "id": "evt_1NG8Du2eZvKYlo2CUI79vXWy",
        "object": "event",
        "api_version": "2024-06-20",
        "created": 1717243200,
        "livemode": False,
        "type": "invoice.paid",
        "data": {
            "object": {
                "id": "in_1NG8Dt2eZvKYlo2C",
                "object": "invoice",
                "customer": "cus_NffrFeUfNV2Hib",
                "customer_email": "  Ann.Lee@Acme.COM ",
                "customer_name": "Ann Lee",
                "customer_address": {"city": "Berlin", "country": "DE"},
                "amount_due": 1999,
                "amount_paid": 1999,
                "total": 1999,
                "currency": "usd",
                "status": "paid",
                "number": "A1B2-0001",
                "created": 1717243100,
            }
        },
    }
    event.update(overrides)
    return event


def body_of(event) -> bytes:
    return json.dumps(event).encode()


@pytest.fixture
def source(make_source):
    return make_source("stripe", secret=SECRET)


def signed(body: bytes, secret: str = SECRET, timestamp: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else timestamp
    return {"Stripe-Signature": WebhookSignature.generate_signature_header(body.decode(), secret, ts)}


# -- verification -----------------------------------------------------------------------------------


def test_valid_signature_passes(source):
    body = body_of(invoice_event())
    stripe_connector.verify(signed(body), body, source=source)


def test_header_name_is_case_insensitive(source):
    body = body_of(invoice_event())
    headers = {"stripe-signature": signed(body)["Stripe-Signature"]}
    stripe_connector.verify(headers, body, source=source)


def test_injected_clock(source):
    body = body_of(invoice_event())
    stripe_connector.verify(signed(body, timestamp=1_700_000_000), body, source=source, now=1_700_000_100)


def test_stale_timestamp_fails(source):
    body = body_of(invoice_event())
    with pytest.raises(SignatureError, match="older than 300"):
        stripe_connector.verify(signed(body, timestamp=int(time.time()) - 301), body, source=source)


def test_far_future_timestamp_fails(source):
    body = body_of(invoice_event())
    with pytest.raises(SignatureError, match="future"):
        stripe_connector.verify(signed(body, timestamp=int(time.time()) + 3600), body, source=source)


def test_wrong_secret_fails_without_leaking_it(source):
    body = body_of(invoice_event())
    with pytest.raises(SignatureError) as info:
        stripe_connector.verify(signed(body, secret="whsec_attacker"), body, source=source)
    assert SECRET not in str(info.value) and "whsec" not in str(info.value)


def test_tampered_body_fails(source):
    body = body_of(invoice_event())
    headers = signed(body)
    with pytest.raises(SignatureError):
        stripe_connector.verify(headers, body.replace(b"1999", b"9999"), source=source)


def test_multiple_v1_during_stripe_secret_roll(source):
    """Stripe sends one v1 per active secret while a roll is in progress; any match is enough."""
    body = body_of(invoice_event())
    ts = int(time.time())
    ours = WebhookSignature.generate_signature_header(body.decode(), SECRET, ts).split(",")[1]
    other = WebhookSignature.generate_signature_header(body.decode(), "whsec_other", ts).split(",")[1]
    header_value = f"t={ts},{other},{ours}"
    stripe_connector.verify({"Stripe-Signature": header_value}, body, source=source)


def test_previous_secret_accepted_during_our_rotation(make_source):
    rotated = make_source("stripe", secret=SECRET, previous_secrets=[OLD_SECRET])
    body = body_of(invoice_event())
    stripe_connector.verify(signed(body, secret=OLD_SECRET), body, source=rotated)
    stripe_connector.verify(signed(body, secret=SECRET), body, source=rotated)


@pytest.mark.parametrize(
    "header_value",
    ["", "garbage", "t=abc,v1=00", "t=123", "v1=deadbeef"],
)
def test_malformed_headers_fail(source, header_value):
    body = body_of(invoice_event())
    with pytest.raises(SignatureError):
        stripe_connector.verify({"Stripe-Signature": header_value}, body, source=source)


def test_missing_header_and_missing_secret(source, make_source):
    body = body_of(invoice_event())
    with pytest.raises(SignatureError, match="missing"):
        stripe_connector.verify({}, body, source=source)
    with pytest.raises(SignatureError, match="no signing secret"):
        stripe_connector.verify(signed(body), body, source=make_source("stripe"))


# -- amounts ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [(1999, "usd", 19.99), (1999, "USD", 19.99), (500, "jpy", 500), (500, "JPY", 500), (12345, "kwd", 12.345),
     (0, "eur", 0.0), (-250, "gbp", -2.5), (100000, "krw", 100000), (1000, "isk", 10.0)],
)  # fmt: skip
def test_amount_major(amount, currency, expected):
    result = amount_major(amount, currency)
    assert result == expected
    assert type(result) is type(expected)


def test_amount_helpers():
    assert currency_exponent("bhd") == 3 and currency_exponent("xof") == 0 and currency_exponent("eur") == 2
    assert format_amount(1999, "usd") == "19.99 USD"
    assert format_amount(500, "jpy") == "500 JPY"
    with pytest.raises(ValueError):
        amount_major(19.99, "usd")  # type: ignore[arg-type]


# -- parsing ----------------------------------------------------------------------------------------


def test_parse_invoice_paid(source):
    (event,) = stripe_connector.parse(deliver(source, body_of(invoice_event()), "application/json"))
    assert event.dedup_key == "stripe:evt_1NG8Du2eZvKYlo2CUI79vXWy"
    assert event.event_type == "invoice.paid"
    assert event.object_type == "contact"
    assert event.source_object_type == "invoice"
    assert event.object_id == "cus_NffrFeUfNV2Hib"
    assert event.occurred_at == datetime.fromtimestamp(1717243200, UTC)
    record = event.record
    assert record["customer_email"] == "ann.lee@acme.com"
    assert record["amount"] == 19.99 and record["amount_minor"] == 1999
    assert record["currency"] == "USD" and record["amount_display"] == "19.99 USD"
    assert record["city"] == "Berlin" and record["country"] == "DE"
    assert event.attributes["customer_email"] == "ann.lee@acme.com"


def test_parse_zero_decimal_checkout(source):
    event = invoice_event(
        id="evt_checkout",
        type="checkout.session.completed",
        data={
            "object": {
                "id": "cs_test_a1",
                "object": "checkout.session",
                "customer": None,
                "customer_details": {"email": "KEN@example.jp", "name": "Ken", "address": {"country": "JP"}},
                "amount_total": 5000,
                "currency": "jpy",
            }
        },
    )
    (parsed,) = stripe_connector.parse(deliver(source, body_of(event), ""))
    assert parsed.record["amount"] == 5000
    assert parsed.record["amount_display"] == "5000 JPY"
    assert parsed.record["customer_email"] == "ken@example.jp"
    assert parsed.object_id is None


def test_parse_customer_and_subscription(source):
    customer = invoice_event(
        id="evt_cus",
        type="customer.created",
        data={
            "object": {
                "id": "cus_1",
                "object": "customer",
                "email": "Bo@Example.com",
                "name": "Bo",
                "created": 1,
            }
        },
    )
    (event,) = stripe_connector.parse(deliver(source, body_of(customer), ""))
    assert event.object_id == "cus_1" and event.record["customer_email"] == "bo@example.com"
    assert "amount" not in event.record

    subscription = invoice_event(
        id="evt_sub",
        type="customer.subscription.created",
        data={
            "object": {
                "id": "sub_1",
                "object": "subscription",
                "customer": "cus_1",
                "status": "active",
                "currency": "eur",
                "items": {
                    "data": [
                        {"quantity": 3, "price": {"unit_amount": 1500, "currency": "eur", "nickname": "Team",
                                                  "recurring": {"interval": "month"}}}
                    ]
                },
            }
        },
    )  # fmt: skip
    (event,) = stripe_connector.parse(deliver(source, body_of(subscription), ""))
    assert event.source_object_type == "subscription"
    assert event.record["amount"] == 45.0
    assert event.record["plan_name"] == "Team" and event.record["interval"] == "month"


def test_payment_intent_succeeded(source):
    event = invoice_event(
        id="evt_pi",
        type="payment_intent.succeeded",
        data={"object": {"id": "pi_1", "object": "payment_intent", "customer": {"id": "cus_9", "email": "x@y.io"},
                         "amount": 1000, "amount_received": 1000, "currency": "gbp", "receipt_email": None}},
    )  # fmt: skip
    (parsed,) = stripe_connector.parse(deliver(source, body_of(event), ""))
    assert parsed.object_id == "cus_9"
    assert parsed.record["customer_email"] == "x@y.io"
    assert parsed.record["amount"] == 10.0


def test_unsupported_event_types_yield_nothing(source):
    event = invoice_event(type="charge.dispute.created")
    assert stripe_connector.parse(deliver(source, body_of(event), "")) == []


def test_dedup_key_stable_across_redeliveries(source):
    """Stripe re-signs retries with a fresh t; the body and event id are unchanged."""
    body = body_of(invoice_event())
    first = stripe_connector.parse(deliver(source, body, ""))[0]
    stripe_connector.verify(signed(body, timestamp=int(time.time()) - 10), body, source=source)
    stripe_connector.verify(signed(body), body, source=source)
    again = stripe_connector.parse(deliver(source, body, ""))[0]
    assert first.dedup_key == again.dedup_key


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        body_of({k: v for k, v in invoice_event().items() if k != "id"}),
        body_of(invoice_event(created="yesterday")),
        body_of(invoice_event(data={"object": "nope"})),
        body_of(invoice_event(data=None)),
    ],
    ids=["not-json", "array", "no-id", "bad-created", "object-not-dict", "no-data"],
)
def test_malformed_bodies(source, body):
    with pytest.raises(BadRequest):
        stripe_connector.parse(deliver(source, body, "application/json"))


# -- fixtures (connectors/stripe/fixtures) ------------------------------------------------------------


def test_fixture_invoice_paid_signed_with_the_sdk_helper(source):
    body = fixture_bytes("stripe", "invoice_paid.json")
    now = 1717243260
    header = WebhookSignature.generate_signature_header(body.decode(), SECRET, now - 30)
    (event,) = stripe_connector.parse(stripe_connector.verify({"Stripe-Signature": header}, body, source=source,
                                                              now=now))
    assert (event.event_type, event.dedup_key, event.object_id) == (
        "invoice.paid", "stripe:evt_1NG8Du2eZvKYlo2CUI79vXWy", "cus_NffrFeUfNV2Hib")
    assert (event.record["amount"], event.record["currency"], event.record["customer_email"]) == (
        19.99, "EUR", "ann.lee@acme.com")


def test_fixture_checkout_in_a_zero_decimal_currency(source):
    (event,) = stripe_connector.parse(deliver(source, fixture_bytes("stripe", "checkout_session_completed.json")))
    assert (event.record["amount"], event.record["amount_display"]) == (120000, "120000 JPY")
    assert event.record["customer_email"] == "bo@globex.example"


def test_fixture_customer_created(source):
    (event,) = stripe_connector.parse(deliver(source, fixture_bytes("stripe", "customer_created.json")))
    assert event.source_object_type == "customer" and event.record["customer_phone"] == "+49 30 1234567"


def test_fixture_of_an_unsupported_type_yields_no_event(source):
    assert stripe_connector.parse(deliver(source, fixture_bytes("stripe", "charge_refunded.json"))) == []
