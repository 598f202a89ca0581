"""Signed generic webhooks (``X-Signature: t=..,v1=..``).

The vector below was computed with ``printf '%s' "$T.$BODY" | openssl dgst -sha256 -hmac "$SECRET"``.
"""

from __future__ import annotations

import pytest
from deliver import deliver, fixture_bytes

from memrelay.connectors import get_connector
from memrelay.connectors.generic_hmac.webhook import signature_header
from memrelay.engine.core.errors import SignatureError

generic_hmac = get_connector("generic_hmac")

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
    (event,) = generic_hmac.parse(deliver(hmac_source, GENERIC_BODY, "application/json"))
    assert event.dedup_key == "generic_hmac:sub_42"
    assert event.record["fields"] == {"email": "bo@example.com", "first_name": "Bo"}
    assert event.record["email"] == "bo@example.com"


# -- fixtures (connectors/generic_hmac/fixtures) ------------------------------------------------------


def test_fixture_is_the_vector_body(hmac_source):
    body = fixture_bytes("generic_hmac", "submission.json")
    assert body == GENERIC_BODY
    headers = {"X-Signature": f"t=1700000000,v1={GENERIC_SIG}"}
    (event,) = generic_hmac.parse(generic_hmac.verify(headers, body, source=hmac_source, now=GENERIC_NOW))
    assert (event.dedup_key, event.record["email"]) == ("generic_hmac:sub_42", "bo@example.com")
