"""Webflow: the ``x-webflow-signature`` verifier (5-minute window), parsing, and its fixture.

The vector in ``connector_samples`` was computed with the OpenSSL CLI from the documented algorithm.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from connector_samples import WEBFLOW_BODY, WEBFLOW_NOW, WEBFLOW_SECRET, WEBFLOW_SIGNATURE, WEBFLOW_TS
from deliver import deliver, fixture_bytes

from memrelay.connectors import get_connector
from memrelay.engine.core.errors import BadRequest, SignatureError

webflow = get_connector("webflow")

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
    (event,) = webflow.parse(deliver(webflow_source, WEBFLOW_BODY, "application/json"))
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
    assert webflow.parse(deliver(webflow_source, body, "")) == []


def test_webflow_malformed(webflow_source):
    with pytest.raises(BadRequest):
        webflow.parse(deliver(webflow_source, b'{"triggerType":"form_submission","payload":{"data":"x"}}', ""))


# -- fixtures (connectors/webflow/fixtures) -----------------------------------------------------------


def test_fixture_verifies_with_the_vector_signature(webflow_source):
    body = fixture_bytes("webflow", "form_submission.json")
    (event,) = webflow.parse(webflow.verify(webflow_headers(), body, source=webflow_source, now=WEBFLOW_NOW))
    assert event.record["email"] == "zaphod@heartofgold.ai" and event.record["site_id"] == "65427cf400e02b306eaa049c"
