"""The token-guarded unsigned ``form`` connector and the shared form-record helpers.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from deliver import deliver, fixture_bytes

from memrelay.connectors import get_connector
from memrelay.connectors.form_record import field_key, find_email
from memrelay.engine.core.errors import BadRequest, SignatureError

form = get_connector("form")

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
    (event,) = form.parse(deliver(form_source, body, "application/x-www-form-urlencoded"))
    assert event.record["email"] == "cy@example.org"
    assert event.record["fields"]["first_name"] == "Cy"
    assert event.record["fields"]["company"] == {"name": "Initech"}
    assert event.record["fields"]["interests"] == ["a", "b"]
    assert event.dedup_key.startswith("form:sha256-")
    again = form.parse(deliver(form_source, body, "application/x-www-form-urlencoded"))[0]
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
    (event,) = form.parse(deliver(form_source, body, "application/json"))
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
        form.parse(deliver(form_source, body, content_type))


def test_field_helpers():
    assert field_key("E-mail Address ") == "e_mail_address"
    assert field_key("!!!") == "field"
    assert find_email({"name": "x", "contact": "not an email", "other": "z@z.io"}) == "z@z.io"
    assert find_email({"email": "bad", "work": "A@B.CO"}) == "a@b.co"


# -- fixtures (connectors/forms/fixtures) -------------------------------------------------------------


def test_fixture_contact_form(form_source):
    (event,) = form.parse(deliver(form_source, fixture_bytes("form", "contact_form.json")))
    assert (event.dedup_key, event.record["email"]) == ("form:sub_7f3a9c", "carla.diaz@initech.example")
    assert event.record["fields"]["message"] == "We need SSO for 300 seats."
    assert event.record["hidden"] == {"utm_source": "google", "utm_campaign": "sso"}
    assert event.occurred_at == datetime(2024, 5, 3, 14, 0, tzinfo=UTC)
