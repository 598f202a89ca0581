"""The connector registry: every entry is a complete package, its metadata agrees with its class, and
``parse`` accepts only what its own ``verify`` returned."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from deliver import deliver, fixture_bytes

from memrelay.connectors import (
    Connector,
    FetchingConnector,
    Verified,
    connector_info,
    connector_names,
    get_connector,
)
from memrelay.connectors.base import SourceConfig
from memrelay.connectors.mapping import load_default_mapping, load_mapping
from memrelay.connectors.registry import CONNECTORS, HUBSPOT_ACTIONS, HUBSPOT_OBJECTS
from memrelay.connectors.sync import build_pager
from memrelay.engine.core.errors import BadRequest, NotFound, SignatureError

NAMES = [info.name for info in CONNECTORS]


def test_names_are_the_known_connectors():
    assert connector_names() == sorted(
        ["hubspot", "salesforce", "stripe", "typeform", "webflow", "generic_hmac", "form", "generic"])
    assert len(set(NAMES)) == len(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_every_connector_is_a_complete_package(name):
    info = connector_info(name)
    connector = get_connector(name)
    assert isinstance(connector, Connector) and connector.name == name and connector is get_connector(name)
    assert (info.package_dir / "README.md").read_text().strip()
    assert (info.package_dir / "webhook.py").is_file()
    assert load_mapping(info.default_mapping).objects == load_default_mapping(name).objects
    fixtures = sorted((info.package_dir / "fixtures").glob("*"))
    assert fixtures and all(p.suffix in (".json", ".xml") for p in fixtures)
    assert info.events and info.display_name and info.auth


@pytest.mark.parametrize("name", NAMES)
def test_metadata_agrees_with_the_connector_class(name):
    info, connector = connector_info(name), get_connector(name)
    assert isinstance(connector, FetchingConnector) is info.supports_fetch
    assert getattr(connector, "api_key_auth", False) is info.accepts_api_key
    assert ("secret" in info.secret_fields) is info.uses_secret
    assert ("token" in info.secret_fields) is info.uses_token


@pytest.mark.parametrize("name", NAMES)
def test_only_sync_connectors_build_a_pager(name):
    info = connector_info(name)
    if info.supports_sync:
        return  # building a real pager needs API credentials; covered by test_*_api.py
    with pytest.raises(BadRequest, match="has no CRM sync"):
        build_pager(name, {}, load_default_mapping(name))


def test_hubspot_events_cover_every_object_and_action():
    from memrelay.connectors.hubspot import webhook

    assert set(HUBSPOT_OBJECTS) == webhook.OBJECT_TYPES and set(HUBSPOT_ACTIONS) == webhook.ACTIONS
    events = connector_info("hubspot").events
    assert "contact.privacyDeletion" in events and "ticket.merge" in events
    assert len(events) == 4 * len(HUBSPOT_ACTIONS)


def test_secret_fields():
    assert connector_info("hubspot").secret_fields == {"secret", "access_token"}
    assert connector_info("salesforce").secret_fields == {"token", "access_token"}
    assert connector_info("stripe").secret_fields == {"secret"}
    assert connector_info("form").secret_fields == {"token"}


def test_unknown_connector():
    with pytest.raises(NotFound) as info:
        get_connector("myspace")
    assert "hubspot" in info.value.details["known"]


# -- the verified value ---------------------------------------------------------------------------------


def test_verified_values_cannot_be_made_by_hand(make_source):
    with pytest.raises(TypeError, match="verify"):
        Verified(connector="generic", source=make_source("generic"), body=b"{}")


def test_verified_values_are_frozen(make_source):
    verified = deliver(make_source("generic"), b'{"email": "a@b.c"}')
    with pytest.raises(dataclasses.FrozenInstanceError):
        verified.body = b"{}"  # type: ignore[misc]


def test_parse_refuses_raw_bytes_and_another_connectors_verified(make_source):
    stripe = get_connector("stripe")
    with pytest.raises(TypeError, match="Verified"):
        stripe.parse(fixture_bytes("stripe", "invoice_paid.json"))  # type: ignore[arg-type]
    form_verified = deliver(make_source("form"), b'{"email": "a@b.c"}')
    with pytest.raises(TypeError, match="its own verify"):
        stripe.parse(form_verified)


def test_verified_carries_the_source_and_content_type(make_source):
    source = make_source("form", token="t-1")
    verified = get_connector("form").verify({"content-type": "application/x-www-form-urlencoded"}, b"email=a%40b.c",
                                            source=source, token="t-1")
    assert (verified.source, verified.content_type, verified.body) == (
        source, "application/x-www-form-urlencoded", b"email=a%40b.c")
    (event,) = get_connector("form").parse(verified)
    assert event.record["email"] == "a@b.c" and event.source_id == source.id


def test_api_key_stand_in_only_where_registered(make_source):
    generic = get_connector("generic")
    verified = generic.accept_authenticated({"Content-Type": "application/json"}, b'{"email": "a@b.c"}',
                                            source=make_source("generic", token="t"))
    assert generic.parse(verified)[0].record["email"] == "a@b.c"
    for name in NAMES:
        if not connector_info(name).accepts_api_key:
            with pytest.raises(SignatureError, match="requires its own signature"):
                get_connector(name).accept_authenticated({}, b"{}", source=SourceConfig(id="s", connector=name))


FIXTURES = [(info.name, path.name) for info in CONNECTORS for path in sorted((info.package_dir / "fixtures").glob("*"))]
CONTENT_TYPES = {".json": "application/json", ".xml": "text/xml"}


@pytest.mark.parametrize(("name", "fixture"), FIXTURES)
def test_every_fixture_verifies_parses_and_maps_with_the_default_mapping(name, fixture, make_source):
    from memrelay.connectors.mapping import map_event

    body = fixture_bytes(name, fixture)
    events = get_connector(name).parse(deliver(make_source(name), body, CONTENT_TYPES[Path(fixture).suffix]))
    mapping = load_default_mapping(name)
    for event in events:
        assert any(_matches(pattern, event.event_type) for pattern in connector_info(name).events)
        if mapping.object_for(event.source_object_type) is not None:
            map_event(mapping, event)  # raises on a mapping/payload mismatch


def _matches(pattern: str, event_type: str) -> bool:
    """``customer.*`` matches by prefix; ``<placeholder>`` patterns match any type."""
    if pattern.startswith("<"):
        return True
    return event_type.startswith(pattern[:-1]) if pattern.endswith("*") else event_type == pattern
