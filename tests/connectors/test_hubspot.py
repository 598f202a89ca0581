"""HubSpot signatures (the spec's published vectors) and batched event parsing."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from deliver import deliver, fixture_bytes

from memrelay.connectors import get_connector
from memrelay.connectors.hubspot.webhook import (
    decode_v3_uri,
    signed_url,
    v1_signature,
    v2_signature,
    v3_signature,
)
from memrelay.engine.core.errors import BadRequest, SignatureError

SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
URL = "https://www.example.com/webhook_uri"
V1_BODY = (
    b'[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,'
    b'"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM",'
    b'"changeFlag":"NEW","appId":54321}]'
)
V1_SIG = "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"
V2_GET_SIG = "eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e"
V2_POST_BODY = b'{"example_field":"example_value"}'
V2_POST_SIG = "9569219f8ba981ffa6f6f16aa0f48637d35d728c7e4d93d0d52efaa512af7900"
V3_BODY = b"{'example_field':'example_value'}"
V3_TS = "1693657560000"
V3_SIG = "K36dawei4A+QBNolUOqo7s91KQDWQ5MXZ/QufNYuk/Y="
V3_NOW = 1693657560 + 60  # one minute after the vector's timestamp

hubspot = get_connector("hubspot")


@pytest.fixture
def source(make_source):
    return make_source("hubspot", secret=SECRET)


# -- published vectors -----------------------------------------------------------------------------


def test_vector_functions_reproduce_published_signatures():
    assert v1_signature(SECRET, V1_BODY) == V1_SIG
    assert v2_signature(SECRET, "GET", URL, b"") == V2_GET_SIG
    assert v2_signature(SECRET, "POST", URL, V2_POST_BODY) == V2_POST_SIG
    assert v3_signature(SECRET, "POST", URL, V3_BODY, V3_TS) == V3_SIG


def test_v1_vector_verifies(source):
    headers = {"X-HubSpot-Signature": V1_SIG, "X-HubSpot-Signature-Version": "v1"}
    hubspot.verify(headers, V1_BODY, source=source, method="POST", url=URL)


def test_v2_get_vector_verifies(source):
    headers = {"X-HubSpot-Signature": V2_GET_SIG, "X-HubSpot-Signature-Version": "v2"}
    hubspot.verify(headers, b"", source=source, method="GET", url=URL)


def test_v2_post_vector_verifies(source):
    headers = {"X-HubSpot-Signature": V2_POST_SIG, "X-HubSpot-Signature-Version": "v2"}
    hubspot.verify(headers, V2_POST_BODY, source=source, method="POST", url=URL)


def test_v3_vector_verifies(source):
    headers = {"X-HubSpot-Signature-v3": V3_SIG, "X-HubSpot-Request-Timestamp": V3_TS}
    hubspot.verify(headers, V3_BODY, source=source, method="POST", url=URL, now=V3_NOW)


def test_headers_are_case_insensitive(source):
    headers = {"x-hubspot-signature-V3": V3_SIG, "X-HUBSPOT-REQUEST-TIMESTAMP": V3_TS}
    hubspot.verify(headers, V3_BODY, source=source, method="post", url=URL, now=V3_NOW)
    headers = {"x-hubspot-signature": V1_SIG, "x-hubspot-signature-version": "V1"}
    hubspot.verify(headers, V1_BODY, source=source, method="POST", url=URL)


# -- failures ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "body", "method"),
    [
        ({"X-HubSpot-Signature": V1_SIG, "X-HubSpot-Signature-Version": "v1"}, V1_BODY + b" ", "POST"),
        (
            {"X-HubSpot-Signature": V2_POST_SIG, "X-HubSpot-Signature-Version": "v2"},
            b'{"example_field":"x"}',
            "POST",
        ),
        ({"X-HubSpot-Signature": V2_GET_SIG, "X-HubSpot-Signature-Version": "v2"}, b"", "POST"),
        ({"X-HubSpot-Signature-v3": V3_SIG, "X-HubSpot-Request-Timestamp": V3_TS}, V3_BODY + b"x", "POST"),
    ],
    ids=["v1-body", "v2-body", "v2-method", "v3-body"],
)
def test_tampered_requests_fail(source, headers, body, method):
    with pytest.raises(SignatureError, match="does not match"):
        hubspot.verify(headers, body, source=source, method=method, url=URL, now=V3_NOW)


def test_v3_tampered_timestamp_fails(source):
    headers = {"X-HubSpot-Signature-v3": V3_SIG, "X-HubSpot-Request-Timestamp": str(int(V3_TS) + 1000)}
    with pytest.raises(SignatureError, match="does not match"):
        hubspot.verify(headers, V3_BODY, source=source, method="POST", url=URL, now=V3_NOW)


def test_v3_wrong_url_fails(source):
    headers = {"X-HubSpot-Signature-v3": V3_SIG, "X-HubSpot-Request-Timestamp": V3_TS}
    with pytest.raises(SignatureError):
        hubspot.verify(headers, V3_BODY, source=source, method="POST", url=URL + "?x=1", now=V3_NOW)


@pytest.mark.parametrize("offset", [301, -301, 86400])
def test_v3_stale_or_future_timestamp_fails(source, offset):
    headers = {"X-HubSpot-Signature-v3": V3_SIG, "X-HubSpot-Request-Timestamp": V3_TS}
    with pytest.raises(SignatureError, match="seconds"):
        hubspot.verify(headers, V3_BODY, source=source, method="POST", url=URL, now=1693657560 + offset)


def test_v3_within_window_edge_passes(source):
    headers = {"X-HubSpot-Signature-v3": V3_SIG, "X-HubSpot-Request-Timestamp": V3_TS}
    hubspot.verify(headers, V3_BODY, source=source, method="POST", url=URL, now=1693657560 + 299)


@pytest.mark.parametrize("timestamp", ["", "abc", "1693657560000.5", "-1"])
def test_v3_malformed_timestamp_fails(source, timestamp):
    headers = {"X-HubSpot-Signature-v3": V3_SIG, "X-HubSpot-Request-Timestamp": timestamp}
    with pytest.raises(SignatureError):
        hubspot.verify(headers, V3_BODY, source=source, method="POST", url=URL, now=V3_NOW)


def test_wrong_secret_fails(make_source):
    other = make_source("hubspot", secret="zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz")
    headers = {"X-HubSpot-Signature-v3": V3_SIG, "X-HubSpot-Request-Timestamp": V3_TS}
    with pytest.raises(SignatureError) as info:
        hubspot.verify(headers, V3_BODY, source=other, method="POST", url=URL, now=V3_NOW)
    assert "zzzz" not in str(info.value) and SECRET not in str(info.value)
    assert V3_SIG not in str(info.value)


def test_previous_secret_still_accepted_during_rotation(make_source):
    rotated = make_source("hubspot", secret="new-secret", previous_secrets=[SECRET])
    headers = {"X-HubSpot-Signature-v3": V3_SIG, "X-HubSpot-Request-Timestamp": V3_TS}
    hubspot.verify(headers, V3_BODY, source=rotated, method="POST", url=URL, now=V3_NOW)


def test_missing_headers_and_secret_fail_closed(source, make_source):
    with pytest.raises(SignatureError, match="missing"):
        hubspot.verify({}, V1_BODY, source=source, url=URL)
    with pytest.raises(SignatureError, match="Version"):
        hubspot.verify({"X-HubSpot-Signature": V1_SIG}, V1_BODY, source=source, url=URL)
    headers = {"X-HubSpot-Signature": V1_SIG, "X-HubSpot-Signature-Version": "v1"}
    with pytest.raises(SignatureError, match="no signing secret"):
        hubspot.verify(headers, V1_BODY, source=make_source("hubspot"), url=URL)


def test_versions_can_be_restricted(make_source):
    strict = make_source("hubspot", secret=SECRET, options={"signature_versions": ["v3"]})
    headers = {"X-HubSpot-Signature": V1_SIG, "X-HubSpot-Signature-Version": "v1"}
    with pytest.raises(SignatureError, match="not accepted"):
        hubspot.verify(headers, V1_BODY, source=strict, url=URL)


def test_public_url_overrides_the_proxied_url(make_source):
    proxied = make_source("hubspot", secret=SECRET, public_url=URL)
    headers = {"X-HubSpot-Signature-v3": V3_SIG, "X-HubSpot-Request-Timestamp": V3_TS}
    hubspot.verify(
        headers, V3_BODY, source=proxied, method="POST", url="http://10.0.0.5:8080/webhook_uri", now=V3_NOW
    )
    assert signed_url(proxied, "http://internal/x?a=1&b=2") == URL + "?a=1&b=2"


def test_v3_uri_decoding_only_decodes_listed_escapes(make_source):
    assert (
        decode_v3_uri("https://x.com/a%3Ab%2Fc?q=%40me%2C%20you%25") == "https://x.com/a:b/c?q=@me,%20you%25"
    )
    assert decode_v3_uri("%2a%3b") == "*;"
    encoded = "https://www.example.com/webhook_uri?email=a%40b.com&x=%20"
    sig = v3_signature(
        SECRET, "POST", "https://www.example.com/webhook_uri?email=a@b.com&x=%20", b"{}", V3_TS
    )
    headers = {"X-HubSpot-Signature-v3": sig, "X-HubSpot-Request-Timestamp": V3_TS}
    hubspot.verify(headers, b"{}", source=make_source("hubspot", secret=SECRET), url=encoded, now=V3_NOW)


# -- parsing ----------------------------------------------------------------------------------------


def _event(**overrides):
    event = {
        "eventId": 100,
        "subscriptionId": 12345,
        "portalId": 62515,
        "appId": 54321,
        "occurredAt": 1564113600000,
        "subscriptionType": "contact.propertyChange",
        "attemptNumber": 0,
        "objectId": 123,
        "propertyName": "lifecyclestage",
        "propertyValue": "customer",
        "changeSource": "CRM",
    }
    event.update(overrides)
    return {k: v for k, v in event.items() if v is not None}


def test_parse_published_v1_body(source):
    (event,) = hubspot.parse(deliver(source, V1_BODY, "application/json"))
    assert event.event_type == "contact.creation"
    assert event.object_type == "contact" and event.source_object_type == "contact"
    assert event.object_id == "123"
    assert event.occurred_at == datetime(2019, 7, 26, 4, 0, tzinfo=UTC)
    assert event.dedup_key == "hubspot:62515:12345:1:123:1564113600000"
    assert event.payload["changeFlag"] == "NEW"
    assert event.connector == "hubspot" and event.source_id == source.id


def test_property_change_record_and_attributes(source):
    (event,) = hubspot.parse(deliver(source, json.dumps([_event()]).encode(), "application/json"))
    assert event.event_type == "contact.propertyChange"
    assert event.record == {"id": "123", "lifecyclestage": "customer"}
    assert event.attributes["property_name"] == "lifecyclestage"
    assert event.attributes["property_value"] == "customer"
    assert event.attributes["change_source"] == "CRM"


def test_event_type_field_is_accepted(source):
    item = _event(subscriptionType=None, eventType="deal.deletion", propertyName=None, propertyValue=None)
    (event,) = hubspot.parse(deliver(source, json.dumps([item]).encode(), ""))
    assert event.event_type == "deal.deletion" and event.object_type == "deal"


def test_all_object_types_and_actions(source):
    kinds = [
        f"{obj}.{action}"
        for obj in ("contact", "company", "deal", "ticket")
        for action in ("creation", "propertyChange", "deletion", "restore", "privacyDeletion")
    ]
    body = [_event(eventId=i, subscriptionType=kind) for i, kind in enumerate(kinds)]
    events = hubspot.parse(deliver(source, json.dumps(body).encode(), ""))
    assert [e.event_type for e in events] == kinds


def test_merge_event_uses_the_winner(source):
    item = _event(
        subscriptionType="contact.merge",
        objectId=None,
        primaryObjectId=111,
        mergedObjectIds=[222, 333],
        newObjectId=444,
        numberOfPropertiesMoved=5,
    )
    (event,) = hubspot.parse(deliver(source, json.dumps([item]).encode(), ""))
    assert event.event_type == "contact.merge"
    assert event.object_id == "444"
    assert event.attributes["merged_object_ids"] == [222, 333]
    assert event.attributes["primary_object_id"] == 111


def test_association_change_event(source):
    item = _event(
        subscriptionType="contact.associationChange",
        objectId=None,
        fromObjectId=1,
        toObjectId=2,
        associationType="CONTACT_TO_COMPANY",
        associationRemoved=False,
    )
    (event,) = hubspot.parse(deliver(source, json.dumps([item]).encode(), ""))
    assert event.object_id == "1"
    assert event.attributes["association_type"] == "CONTACT_TO_COMPANY"
    assert event.attributes["association_removed"] is False
    assert event.dedup_key.endswith(":1-2:1564113600000")


def test_generic_object_subscription_maps_type_id(source):
    item = _event(subscriptionType="object.creation", objectTypeId="0-2")
    (event,) = hubspot.parse(deliver(source, json.dumps([item]).encode(), ""))
    assert event.event_type == "company.creation"


def test_unsupported_types_are_skipped(source):
    body = [_event(subscriptionType="conversation.creation"), _event(subscriptionType="contact.somethingNew")]
    assert hubspot.parse(deliver(source, json.dumps(body).encode(), "")) == []


def test_dedup_key_stable_across_redeliveries(source):
    first = hubspot.parse(deliver(source, json.dumps([_event(attemptNumber=0)]).encode(), ""))[0]
    retry = hubspot.parse(deliver(source, json.dumps([_event(attemptNumber=3)]).encode(), ""))[0]
    other = hubspot.parse(deliver(source, json.dumps([_event(eventId=101)]).encode(), ""))[0]
    assert first.dedup_key == retry.dedup_key
    assert first.dedup_key != other.dedup_key


def test_batch_limit(source):
    hubspot.parse(deliver(source, json.dumps([_event(eventId=i) for i in range(100)]).encode(), ""))
    with pytest.raises(BadRequest, match="too many"):
        hubspot.parse(deliver(source, json.dumps([_event(eventId=i) for i in range(101)]).encode(), ""))


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"eventId": 1}',
        b"[1, 2]",
        b'[{"eventId": 1}]',
        json.dumps([_event(portalId=None)]).encode(),
        json.dumps([_event(occurredAt="yesterday")]).encode(),
        json.dumps([_event(objectId=None)]).encode(),
        b"\xff\xfe",
    ],
    ids=["not-json", "object", "scalars", "no-type", "no-portal", "bad-time", "no-object", "not-utf8"],
)
def test_malformed_bodies_are_bad_requests(source, body):
    with pytest.raises(BadRequest):
        hubspot.parse(deliver(source, body, "application/json"))


def test_event_is_json_serialisable(source):
    (event,) = hubspot.parse(deliver(source, V1_BODY, ""))
    data = event.model_dump(mode="json")
    assert json.loads(json.dumps(data))["occurred_at"] == "2019-07-26T04:00:00Z"
    assert type(event).model_validate(data) == event


# -- fixtures (connectors/hubspot/fixtures) -----------------------------------------------------------


def test_fixture_is_the_published_v1_vector_body(make_source):
    body = fixture_bytes("hubspot", "contact_creation.json")
    assert body == V1_BODY
    source = make_source("hubspot", secret=SECRET)
    verified = hubspot.verify({"X-HubSpot-Signature-Version": "v1", "X-HubSpot-Signature": V1_SIG}, body,
                              source=source, url=URL)
    (event,) = hubspot.parse(verified)
    assert (event.event_type, event.object_id, event.occurred_at) == (
        "contact.creation", "123", datetime(2019, 7, 26, 4, 0, tzinfo=UTC))
    assert event.attributes["change_flag"] == "NEW"


def test_fixture_batch_of_mixed_objects(make_source):
    events = hubspot.parse(deliver(make_source("hubspot"), fixture_bytes("hubspot", "batch.json")))
    assert [e.event_type for e in events] == [
        "contact.propertyChange", "company.creation", "deal.propertyChange", "ticket.deletion",
        "contact.privacyDeletion"]
    assert events[0].record == {"id": "1246965", "lifecyclestage": "customer"}
    assert events[2].record == {"id": "9001", "dealstage": "closedwon"}
    assert events[0].attributes["change_source_id"] == "userId:1234"
    assert len({e.dedup_key for e in events}) == 5


def test_fixture_merge_and_association(make_source):
    (merge,) = hubspot.parse(deliver(make_source("hubspot"), fixture_bytes("hubspot", "contact_merge.json")))
    assert merge.object_id == "1246980" and merge.attributes["merged_object_ids"] == [1246970, 1246971]
    (assoc,) = hubspot.parse(deliver(make_source("hubspot"), fixture_bytes("hubspot", "association_change.json")))
    assert assoc.object_id == "1246965" and ":1246965-5004:" in assoc.dedup_key
    assert assoc.attributes["association_type"] == "CONTACT_TO_COMPANY"
