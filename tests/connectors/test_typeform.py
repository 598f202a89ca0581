"""Typeform: the ``Typeform-Signature`` verifier, parsing, and its fixture.

Typeform publishes no complete vector (secret + body + signature); ``connector_samples.TYPEFORM_SIGNATURE``
was computed with the OpenSSL CLI from the documented algorithm.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from connector_samples import TYPEFORM_BODY, TYPEFORM_SECRET, TYPEFORM_SIGNATURE
from deliver import deliver, fixture_bytes

from memrelay.connectors import get_connector
from memrelay.engine.core.errors import BadRequest, SignatureError

typeform = get_connector("typeform")

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
    (event,) = typeform.parse(deliver(typeform_source, TYPEFORM_BODY, "application/json"))
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
    first = typeform.parse(deliver(typeform_source, TYPEFORM_BODY, ""))[0]
    again = typeform.parse(deliver(typeform_source, TYPEFORM_BODY, ""))[0]
    assert first.dedup_key == again.dedup_key


@pytest.mark.parametrize(
    "body",
    [b"nope", b"[]", b'{"event_type":"form_response"}', b'{"event_id":"x","event_type":"form_response"}',
     b'{"event_id":"x","event_type":"form_response","form_response":{"answers":[1]}}'],
    ids=["not-json", "array", "no-event-id", "no-response", "bad-answer"],
)  # fmt: skip
def test_typeform_malformed(typeform_source, body):
    with pytest.raises(BadRequest):
        typeform.parse(deliver(typeform_source, body, "application/json"))


# -- fixtures (connectors/typeform/fixtures) ----------------------------------------------------------


def test_fixture_verifies_with_the_vector_signature(typeform_source):
    body = fixture_bytes("typeform", "form_response.json")
    (event,) = typeform.parse(typeform.verify({"Typeform-Signature": TYPEFORM_SIGNATURE}, body,
                                              source=typeform_source))
    assert event.dedup_key == "typeform:01HZX7Q2K8" and event.record["email"] == "ann.lee@acme.com"
