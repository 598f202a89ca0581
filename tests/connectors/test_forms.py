"""Form connectors: Typeform, Webflow, generic HMAC and the token-guarded unsigned form.

Typeform/Webflow vectors live in ``connector_samples.py`` (computed with the OpenSSL CLI from the
documented algorithms, since neither provider publishes a complete vector); the generic HMAC vector
below was computed the same way: ``printf '%s' "$T.$BODY" | openssl dgst -sha256 -hmac "$SECRET"``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from connector_samples import (
    TYPEFORM_BODY,
    TYPEFORM_SECRET,
    TYPEFORM_SIGNATURE,
    WEBFLOW_BODY,
    WEBFLOW_NOW,
    WEBFLOW_SECRET,
    WEBFLOW_SIGNATURE,
    WEBFLOW_TS,
)

from memrelay.connectors.base import get_connector
from memrelay.connectors.forms import field_key, find_email
from memrelay.connectors.generic_hmac import signature_header
from memrelay.engine.core.errors import BadRequest, SignatureError

typeform = get_connector("typeform")
webflow = get_connector("webflow")
generic_hmac = get_connector("generic_hmac")
form = get_connector("form")

# -- Typeform ---------------------------------------------------------------------------------------


@pytest.fixture
def typeform_source(make_source):
    return make_source("typeform", secret=TYPEFORM_SECRET)


def test_typeform_vector_verifies(typeform_source):
    typeform.verify({"Typeform-Signature": TYPEFORM_SIGNATURE}, TYPEFORM_BODY, source=typeform_source)
    typeform.verify({"typeform-signature": TYPEFORM_SIGNATURE}, TYPEFORM_BODY, source=typeform_source)


@pytest.mark.parametrize(
    ("headers", "body", "reason"),
    [
        ({"Typeform-Signature": TYPEFORM_SIGNATURE}, TYPEFORM_BODY.replace(b"Ann", b"Eve"), "does not match"),
        ({"Typeform-Signature": TYPEFORM_SIGNATURE.replace("sha256=", "sha1=")}, TYPEFORM_BODY, "sha256="),
        ({"Typeform-Signature": "sha256="}, TYPEFORM_BODY, "missing"),
        ({}, TYPEFORM_BODY, "missing"),
    ],
    ids=["tampered", "wrong-scheme", "empty", "absent"],
)
def test_typeform_failures(typeform_source, headers, body, reason):
    with pytest.raises(SignatureError, match=reason):
        typeform.verify(headers, body, source=typeform_source)


def test_typeform_wrong_secret_and_rotation(make_source):
    with pytest.raises(SignatureError):
        typeform.verify(
            {"Typeform-Signature": TYPEFORM_SIGNATURE},
            TYPEFORM_BODY,
            source=make_source("typeform", secret="other"),
        )
    rotated = make_source("typeform", secret="new", previous_secrets=[TYPEFORM_SECRET])
    typeform.verify({"Typeform-Signature": TYPEFORM_SIGNATURE}, TYPEFORM_BODY, source=rotated)


def test_typeform_parse(typeform_source):
    (event,) = typeform.parse(TYPEFORM_BODY, "application/json", source=typeform_source)
    assert event.dedup_key == "typeform:01HZX7Q2K8"
    assert event.event_type == "form.submitted"
    assert event.object_type == "contact" and event.source_object_type == "form_submission"
    assert event.occurred_at == datetime(2024, 5, 1, 10, 15, 30, tzinfo=UTC)
    record = event.record
    assert record["email"] == "ann.lee@acme.com"
    assert record["form_name"] == "Book a demo" and record["form_id"] == "lT4Z3j"
    assert record["submission_id"] == "a3a12ec67a1365927098a606107fac15"
    assert record["fields"] == {
        "first_name": "Ann",
        "work_email": "Ann.Lee@Acme.com",
        "company_size": "51-200",
        "stack": ["Postgres", "Redis"],
        "a5": 3,
        "newsletter": True,
        "message": "We are migrating off MySQL this quarter.",
    }
    assert record["hidden"] == {"utm_source": "newsletter"}
    assert record["score"] == 9


def test_typeform_redelivery_dedups(typeform_source):
    first = typeform.parse(TYPEFORM_BODY, "", source=typeform_source)[0]
    again = typeform.parse(TYPEFORM_BODY, "", source=typeform_source)[0]
    assert first.dedup_key == again.dedup_key


@pytest.mark.parametrize(
    "body",
    [b"nope", b"[]", b'{"event_type":"form_response"}', b'{"event_id":"x","event_type":"form_response"}',
     b'{"event_id":"x","event_type":"form_response","form_response":{"answers":[1]}}'],
    ids=["not-json", "array", "no-event-id", "no-response", "bad-answer"],
)  # fmt: skip
def test_typeform_malformed(typeform_source, body):
    with pytest.raises(BadRequest):
        typeform.parse(body, "application/json", source=typeform_source)


# -- Webflow ----------------------------------------------------------------------------------------


@pytest.fixture
def webflow_source(make_source):
    return make_source("webflow", secret=WEBFLOW_SECRET)


def webflow_headers(signature=WEBFLOW_SIGNATURE, timestamp=WEBFLOW_TS):
    return {"X-Webflow-Timestamp": timestamp, "X-Webflow-Signature": signature}


def test_webflow_vector_verifies(webflow_source):
    webflow.verify(webflow_headers(), WEBFLOW_BODY, source=webflow_source, now=WEBFLOW_NOW)
    lower = {k.lower(): v for k, v in webflow_headers().items()}
    webflow.verify(lower, WEBFLOW_BODY, source=webflow_source, now=WEBFLOW_NOW)


def test_webflow_failures(webflow_source, make_source):
    with pytest.raises(SignatureError, match="does not match"):
        webflow.verify(webflow_headers(), WEBFLOW_BODY + b" ", source=webflow_source, now=WEBFLOW_NOW)
    with pytest.raises(SignatureError, match="does not match"):
        webflow.verify(
            webflow_headers(timestamp="1663849649734"), WEBFLOW_BODY, source=webflow_source, now=WEBFLOW_NOW
        )
    with pytest.raises(SignatureError, match="older than 300"):
        webflow.verify(webflow_headers(), WEBFLOW_BODY, source=webflow_source, now=WEBFLOW_NOW + 300)
    with pytest.raises(SignatureError, match="missing"):
        webflow.verify(
            {"X-Webflow-Signature": WEBFLOW_SIGNATURE}, WEBFLOW_BODY, source=webflow_source, now=WEBFLOW_NOW
        )
    with pytest.raises(SignatureError):
        webflow.verify(
            webflow_headers(), WEBFLOW_BODY, source=make_source("webflow", secret="x"), now=WEBFLOW_NOW
        )


def test_webflow_parse(webflow_source):
    (event,) = webflow.parse(WEBFLOW_BODY, "application/json", source=webflow_source)
    assert event.dedup_key == "webflow:6321ca84df3949bfc6752327"
    assert event.occurred_at == datetime(2022, 9, 14, 12, 35, 16, 117000, tzinfo=UTC)
    assert event.record["fields"] == {
        "first_name": "Zaphod",
        "last_name": "Beeblebrox",
        "email": "zaphod@heartofgold.ai",
        "phone_number": 15550000000,
    }
    assert event.record["email"] == "zaphod@heartofgold.ai"
    assert event.record["form_name"] == "Contact Us"


def test_webflow_other_triggers_are_ignored(webflow_source):
    body = json.dumps({"triggerType": "site_publish", "payload": {}}).encode()
    assert webflow.parse(body, "", source=webflow_source) == []


def test_webflow_malformed(webflow_source):
    with pytest.raises(BadRequest):
        webflow.parse(b'{"triggerType":"form_submission","payload":{"data":"x"}}', "", source=webflow_source)


# -- generic HMAC ------------------------------------------------------------------------------------

GENERIC_SECRET = "generic_secret_for_tests"
GENERIC_BODY = b'{"email":"bo@example.com","first_name":"Bo","submission_id":"sub_42"}'
GENERIC_SIG = "4ce344de07c2a6624aaa1fd427f2f2adaf4be70f5d28a7de7361d64b338b5b45"  # openssl, t=1700000000
GENERIC_NOW = 1_700_000_010


@pytest.fixture
def hmac_source(make_source):
    return make_source("generic_hmac", secret=GENERIC_SECRET)


def test_generic_hmac_vector(hmac_source):
    assert signature_header(GENERIC_SECRET, GENERIC_BODY, 1_700_000_000) == f"t=1700000000,v1={GENERIC_SIG}"
    headers = {"x-signature": f"t=1700000000,v1={GENERIC_SIG}"}
    generic_hmac.verify(headers, GENERIC_BODY, source=hmac_source, now=GENERIC_NOW)


def test_generic_hmac_multiple_v1(hmac_source):
    other = signature_header("some-other-secret", GENERIC_BODY, 1_700_000_000).split(",")[1]
    headers = {"X-Signature": f"t=1700000000,{other},v1={GENERIC_SIG}"}
    generic_hmac.verify(headers, GENERIC_BODY, source=hmac_source, now=GENERIC_NOW)


def test_generic_hmac_failures(hmac_source):
    good = {"X-Signature": f"t=1700000000,v1={GENERIC_SIG}"}
    with pytest.raises(SignatureError, match="does not match"):
        generic_hmac.verify(good, GENERIC_BODY.replace(b"Bo", b"Al"), source=hmac_source, now=GENERIC_NOW)
    with pytest.raises(SignatureError, match="older"):
        generic_hmac.verify(good, GENERIC_BODY, source=hmac_source, now=GENERIC_NOW + 600)
    with pytest.raises(SignatureError, match="does not match"):
        generic_hmac.verify(
            {"X-Signature": f"t=1700000001,v1={GENERIC_SIG}"},
            GENERIC_BODY,
            source=hmac_source,
            now=GENERIC_NOW,
        )
    with pytest.raises(SignatureError, match="missing"):
        generic_hmac.verify(
            {"X-Signature": "t=1700000000"}, GENERIC_BODY, source=hmac_source, now=GENERIC_NOW
        )
    with pytest.raises(SignatureError, match="missing"):
        generic_hmac.verify({}, GENERIC_BODY, source=hmac_source, now=GENERIC_NOW)


def test_generic_hmac_parse(hmac_source):
    (event,) = generic_hmac.parse(GENERIC_BODY, "application/json", source=hmac_source)
    assert event.dedup_key == "generic_hmac:sub_42"
    assert event.record["fields"] == {"email": "bo@example.com", "first_name": "Bo"}
    assert event.record["email"] == "bo@example.com"


# -- unsigned form guarded by a token ---------------------------------------------------------------


@pytest.fixture
def form_source(make_source):
    return make_source("form", token="form-token-123")


def test_token_form_accepts_token_from_url_or_header(form_source):
    form.verify({}, b"", source=form_source, token="form-token-123")
    form.verify({"X-MEMRELAY-TOKEN": "form-token-123"}, b"", source=form_source)


def test_token_form_rejects_wrong_missing_or_unconfigured(form_source, make_source):
    with pytest.raises(SignatureError, match="does not match"):
        form.verify({}, b"", source=form_source, token="form-token-124")
    with pytest.raises(SignatureError, match="missing"):
        form.verify({}, b"", source=form_source)
    with pytest.raises(SignatureError, match="no token"):
        form.verify({}, b"", source=make_source("form"), token="anything")


def test_token_form_parses_urlencoded_fields(form_source):
    body = b"Email+Address=Cy%40Example.org&First+Name=Cy&company__name=Initech&interests=a&interests=b"
    (event,) = form.parse(body, "application/x-www-form-urlencoded", source=form_source)
    assert event.record["email"] == "cy@example.org"
    assert event.record["fields"]["first_name"] == "Cy"
    assert event.record["fields"]["company"] == {"name": "Initech"}
    assert event.record["fields"]["interests"] == ["a", "b"]
    assert event.dedup_key.startswith("form:sha256-")
    again = form.parse(body, "application/x-www-form-urlencoded", source=form_source)[0]
    assert again.dedup_key == event.dedup_key


def test_token_form_meta_keys(form_source):
    body = json.dumps(
        {
            "form_id": "f1",
            "submission_id": "s1",
            "submitted_at": "2024-01-02T03:04:05Z",
            "fields": {"Email": "d@e.fr"},
        }
    ).encode()
    (event,) = form.parse(body, "application/json", source=form_source)
    assert event.dedup_key == "form:s1"
    assert event.occurred_at == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert event.record["form_id"] == "f1" and event.record["email"] == "d@e.fr"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"[1,2]", "application/json"),
        (b"{bad", "application/json"),
        (b"a=1&a__b=2", ""),
        (b"--x", "multipart/form-data"),
    ],
    ids=["array", "bad-json", "conflict", "multipart"],
)
def test_token_form_malformed(form_source, body, content_type):
    with pytest.raises(BadRequest):
        form.parse(body, content_type, source=form_source)


def test_field_helpers():
    assert field_key("E-mail Address ") == "e_mail_address"
    assert field_key("!!!") == "field"
    assert find_email({"name": "x", "contact": "not an email", "other": "z@z.io"}) == "z@z.io"
    assert find_email({"email": "bad", "work": "A@B.CO"}) == "a@b.co"
