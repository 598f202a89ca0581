"""Zapier-style generic connector and the reusable form-data helpers."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from deliver import deliver, fixture_bytes

from memrelay.connectors import get_connector
from memrelay.connectors.formdata import as_list, parse_body, parse_fields, unflatten
from memrelay.engine.core.errors import BadRequest, SignatureError

generic = get_connector("generic")


# -- formdata helpers -------------------------------------------------------------------------------


def test_unflatten_nested_keys():
    assert unflatten({"contact__email": "a"}) == {"contact": {"email": "a"}}
    assert unflatten({"contact__email": "a", "contact__name": "b", "x": 1}) == {
        "contact": {"email": "a", "name": "b"},
        "x": 1,
    }


def test_unflatten_numeric_segments_become_lists():
    flat = {"items__1__sku": "B", "items__0__sku": "A", "items__0__qty": "2", "tags__0": "x", "tags__1": "y"}
    assert unflatten(flat) == {"items": [{"sku": "A", "qty": "2"}, {"sku": "B"}], "tags": ["x", "y"]}


def test_unflatten_closes_gaps_and_never_allocates_huge_lists():
    assert unflatten({"a__5": "x", "a__99999999999": "y"}) == {"a": ["x", "y"]}


def test_unflatten_keeps_odd_keys_literal():
    assert unflatten({"__typename": "T", "a____b": 1, "trailing__": 2, "0__x": 3}) == {
        "__typename": "T",
        "a____b": 1,
        "trailing__": 2,
        "0": {"x": 3},
    }


@pytest.mark.parametrize(
    "flat",
    [{"a": "1", "a__b": "2"}, {"a__b": "2", "a": "1"}, {"a__b": "1", "a__b__c": "2"}],
    ids=["value-then-group", "group-then-value", "nested"],
)
def test_unflatten_conflicts_are_bad_requests(flat):
    with pytest.raises(BadRequest, match="both a value and a group"):
        unflatten(flat)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, []),
        ("a, b,,c ", ["a", "b", "c"]),
        ("", []),
        (["a", "b"], ["a", "b"]),
        (("a",), ["a"]),
        ('["x", "y, z"]', ["x", "y, z"]),
        ("[not json", ["[not json"]),
        (5, [5]),
    ],
)
def test_as_list(value, expected):
    assert as_list(value) == expected


def test_as_list_custom_separator():
    assert as_list("Postgres;Redis", ";") == ["Postgres", "Redis"]


def test_parse_body_sniffs_json_without_content_type():
    assert parse_body(b' {"a": 1}', "") == {"a": 1}
    assert parse_body(b"a=1&b=2", "text/plain") == {"a": "1", "b": "2"}
    assert parse_body(b'{"a": 1}', "application/vnd.api+json; charset=utf-8") == {"a": 1}


def test_parse_fields_form_encoded():
    body = b"contact__email=a%40b.com&contact__tags=x%2Cy&items__0__name=Pro&empty="
    assert parse_fields(body, "application/x-www-form-urlencoded") == {
        "contact": {"email": "a@b.com", "tags": "x,y"},
        "items": [{"name": "Pro"}],
        "empty": "",
    }


# -- connector --------------------------------------------------------------------------------------


def test_verify_is_a_noop_without_token_and_checks_it_when_configured(make_source):
    generic.verify({}, b"{}", source=make_source("generic"))
    guarded = make_source("generic", token="zap-token")
    generic.verify({"X-Memrelay-Token": "zap-token"}, b"{}", source=guarded)
    with pytest.raises(SignatureError):
        generic.verify({}, b"{}", source=guarded, token="wrong")


def test_parse_json_record(make_source):
    body = json.dumps(
        {"object_type": "company", "id": "ext-1", "name": "Acme", "technologies": "Postgres, Redis",
         "occurred_at": "2024-03-01T00:00:00Z"}
    ).encode()  # fmt: skip
    (event,) = generic.parse(deliver(make_source("generic"), body, "application/json"))
    assert event.object_type == "company" and event.source_object_type == "company"
    assert event.event_type == "company.upsert"
    assert event.dedup_key == "generic:ext-1"
    assert event.object_id == "ext-1"
    assert event.occurred_at == datetime(2024, 3, 1, tzinfo=UTC)
    assert event.record["technologies"] == "Postgres, Redis"


def test_parse_form_encoded_with_flattened_keys(make_source):
    body = b"email=z%40zap.io&contact__first_name=Zed&event_type=contact.signup"
    (event,) = generic.parse(deliver(make_source("generic"), body, "application/x-www-form-urlencoded"))
    assert event.object_type == "contact"
    assert event.event_type == "contact.signup"
    assert event.record == {
        "email": "z@zap.io",
        "contact": {"first_name": "Zed"},
        "event_type": "contact.signup",
    }


def test_default_object_type_from_source_options(make_source):
    source = make_source("generic", options={"object_type": "deal"})
    (event,) = generic.parse(deliver(source, b'{"deal_name": "Big"}', "application/json"))
    assert event.object_type == "deal"


def test_batch_of_records(make_source):
    body = json.dumps([{"email": f"u{i}@x.io"} for i in range(3)]).encode()
    events = generic.parse(deliver(make_source("generic"), body, "application/json"))
    assert len(events) == 3 and len({e.dedup_key for e in events}) == 3
    with pytest.raises(BadRequest, match="too many"):
        generic.parse(deliver(make_source("generic"), json.dumps([{"a": i} for i in range(101)]).encode(), ""))


def test_content_hash_dedup_is_stable_and_key_order_independent(make_source):
    source = make_source("generic")
    one = generic.parse(deliver(source, b'{"email": "a@b.c", "name": "A"}', "application/json"))[0]
    two = generic.parse(deliver(source, b'{"name": "A", "email": "a@b.c"}', "application/json"))[0]
    three = generic.parse(deliver(source, b"email=a%40b.c&name=A", "application/x-www-form-urlencoded"))[0]
    assert one.dedup_key == two.dedup_key == three.dedup_key


def test_long_ids_are_hashed_into_the_key(make_source):
    body = json.dumps({"id": "x" * 1000}).encode()
    (event,) = generic.parse(deliver(make_source("generic"), body, "application/json"))
    assert len(event.dedup_key) <= 256 and event.dedup_key.startswith("generic:sha256-")


@pytest.mark.parametrize(
    "body",
    [b"[]", b"[1]", b'{"object_type": "Bad Type!"}', b'{"occurred_at": "not a date"}', b"{oops", b"\xff"],
    ids=["empty-batch", "scalar-item", "bad-object-type", "bad-time", "bad-json", "not-utf8"],
)
def test_malformed(make_source, body):
    with pytest.raises(BadRequest):
        generic.parse(deliver(make_source("generic"), body, "application/json"))


# -- the connector contract shared by all connectors -------------------------------------------------


def test_registry_returns_protocol_conformant_shared_instances():
    from memrelay.connectors import Connector, connector_names

    assert connector_names() == sorted(
        ["form", "generic", "generic_hmac", "hubspot", "salesforce", "stripe", "typeform", "webflow"]
    )
    for name in connector_names():
        connector = get_connector(name)
        assert isinstance(connector, Connector)
        assert connector.name == name and connector is get_connector(name)


def test_unknown_connector_is_not_found():
    from memrelay.engine.core.errors import NotFound

    with pytest.raises(NotFound) as info:
        get_connector("myspace")
    assert "hubspot" in info.value.details["known"]


def test_source_config_keeps_secrets_out_of_reprs(make_source):
    source = make_source("stripe", secret="whsec_current", previous_secrets=["whsec_old", ""], token="tok")
    assert source.signing_secrets() == ["whsec_current", "whsec_old"]
    for text in (repr(source), str(source), source.model_dump_json()):
        assert "whsec_current" not in text and "whsec_old" not in text and "tok'" not in text
    with pytest.raises(ValueError):
        make_source("stripe", unknown_field=1)


def test_default_ack_is_none(make_source):
    assert generic.ack_response([]) is None


# -- fixtures (connectors/generic/fixtures) -----------------------------------------------------------


def test_fixture_zapier_contact_with_flattened_keys(make_source):
    (event,) = generic.parse(deliver(make_source("generic"), fixture_bytes("generic", "zapier_contact.json")))
    assert (event.dedup_key, event.event_type) == ("generic:zap_01HZY3M4N5", "contact.upsert")
    assert event.record["company"] == {"name": "Umbrella", "domain": "umbrella.example"}
    assert event.occurred_at == datetime(2024, 5, 4, 9, 0, tzinfo=UTC)


def test_fixture_batch(make_source):
    company, deal = generic.parse(deliver(make_source("generic"), fixture_bytes("generic", "batch.json")))
    assert (company.event_type, company.object_type, company.object_id) == ("company.enriched", "company", "co_1")
    assert (deal.event_type, deal.object_id) == ("deal.upsert", "deal_9")
