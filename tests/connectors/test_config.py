"""Typed source configs: validation names the bad field (and never echoes a secret), redaction masks the
fields each model declares secret, and configs stored before the models existed still load."""

from __future__ import annotations

import pytest

from memrelay.connectors.config import LEGACY_SECRET_KEYS, MASK
from memrelay.connectors.generic.config import GenericConfig
from memrelay.connectors.hubspot.config import HubSpotConfig
from memrelay.connectors.registry import CONNECTORS, connector_info, redact_config, validate_config
from memrelay.connectors.salesforce.config import SalesforceConfig
from memrelay.engine.core.errors import NotFound, ValidationFailed

VALID = {
    "hubspot": {"public_url": "https://hooks.example.com/webhooks/hubspot/src_1", "fetch": False,
                "signature_versions": ["v3"], "api_base": "http://127.0.0.1:8080", "access_token": "pat-na1-123",
                "properties": {"contact": ["hs_lead_status"]}, "sync_objects": ["contact", "deal"],
                "max_retries": 2, "timeout_s": 5},
    "salesforce": {"allowed_org_ids": ["00D5g000004ABCD", "00D5g000004ABCDEAA"],
                   "instance_url": "https://acme.my.salesforce.com", "access_token": "00D!session",
                   "ca_bundle": "/etc/ssl/ca.pem", "api_version": "59.0", "fields": {"Contact": ["Department"]},
                   "bulk": True, "max_api_usage": 0.8, "page_size": 500},
    "generic": {"object_type": "deal"},
}


@pytest.mark.parametrize("name", [info.name for info in CONNECTORS])
def test_empty_config_is_valid_for_every_connector(name):
    validate_config(name, {})


@pytest.mark.parametrize("name", sorted(VALID))
def test_documented_options_are_valid(name):
    model = validate_config(name, VALID[name])
    assert model.model_extra == {}


@pytest.mark.parametrize(("name", "config", "field"), [
    ("hubspot", {"signature_versions": ["v4"]}, "signature_versions.0"),
    ("hubspot", {"public_url": "hooks.example.com/x"}, "public_url"),
    ("hubspot", {"fetch": "sometimes"}, "fetch"),
    ("hubspot", {"acess_token": "pat-secret-value"}, "acess_token"),  # a typo is unknown, not silently kept
    ("salesforce", {"allowed_org_ids": ["00D5g"]}, "allowed_org_ids.0"),
    ("salesforce", {"allowed_org_ids": "00D5g000004ABCD"}, "allowed_org_ids"),
    ("salesforce", {"max_api_usage": 1.5}, "max_api_usage"),
    ("generic", {"object_type": "Deal!"}, "object_type"),
    ("stripe", {"endpoint_secret": "whsec_x"}, "endpoint_secret"),
])
def test_bad_config_names_the_field(name, config, field):
    with pytest.raises(ValidationFailed) as info:
        validate_config(name, config)
    err = info.value
    assert err.http_status == 422
    assert field in [p["field"] for p in err.details["problems"]]
    assert field in err.message and name in err.message
    for value in config.values():
        if isinstance(value, str) and len(value) > 8:
            assert value not in str(err.message) + str(err.details)


def test_unknown_connector_is_not_found():
    with pytest.raises(NotFound):
        validate_config("myspace", {})


def test_secret_fields_are_declared_by_the_models():
    assert HubSpotConfig.secret_fields() == {"access_token"}
    assert SalesforceConfig.secret_fields() == {"access_token"}
    assert GenericConfig.secret_fields() == frozenset()
    assert connector_info("hubspot").config_model is HubSpotConfig


def test_redaction_masks_declared_and_legacy_secrets_only():
    shown = redact_config("salesforce", {**VALID["salesforce"], "password": "hunter2", "empty_token": ""})
    assert shown["access_token"] == MASK and shown["password"] == MASK
    assert shown["instance_url"] == "https://acme.my.salesforce.com"
    assert shown["allowed_org_ids"] == VALID["salesforce"]["allowed_org_ids"]
    assert redact_config("hubspot", {"access_token": ""}) == {"access_token": ""}  # nothing to hide
    assert redact_config("no-such-connector", {"api_key": "k", "x": 1}) == {"api_key": MASK, "x": 1}
    assert {"access_token", "api_key", "client_secret", "password", "session_id"} == LEGACY_SECRET_KEYS


def test_redaction_never_changes_the_stored_config():
    stored = dict(VALID["hubspot"])
    redact_config("hubspot", stored)
    validate_config("hubspot", stored)
    assert stored == VALID["hubspot"]


def test_configs_stored_before_the_models_still_load():
    old = {"fetch": True, "api_base": "http://127.0.0.1:1", "access_token": "t", "legacy_flag": 1}
    model = HubSpotConfig.model_validate(old)  # unknown keys are kept, not rejected, when loading
    assert model.model_extra == {"legacy_flag": 1}
    assert model.access_token is not None and model.access_token.get_secret_value() == "t"
    assert "t'" not in repr(model)


def test_source_config_repr_never_shows_credentials():
    from memrelay.connectors import SourceConfig

    source = SourceConfig(id="src_1", connector="hubspot", secret="client-secret-value", token="path-token-value",
                          options={"access_token": "pat-na1-secret", "api_base": "http://127.0.0.1:1"})
    for text in (repr(source), str(source)):
        assert "pat-na1-secret" not in text and "client-secret-value" not in text and "path-token-value" not in text
        assert "http://127.0.0.1:1" in text
    assert source.options["access_token"] == "pat-na1-secret"  # the connector still reads the real value
