"""Redaction follows each connector's config model (secret fields) plus suffix rules, at any depth."""

from __future__ import annotations

from memrelay.connectors.registry import redact_config


def test_declared_legacy_and_suffix_named_secrets_are_masked_at_any_depth():
    shown = redact_config("hubspot", {
        "access_token": "pat-1", "refresh_token": "r-2", "private_app_token": "p-3", "fetch": True,
        "page_size": 100, "max_tokens": 5, "nested": {"client_secret": "c-4", "items": [{"smtp_password": "s-5"}]},
    })
    text = repr(shown)
    for secret in ("pat-1", "r-2", "p-3", "c-4", "s-5"):
        assert secret not in text
    assert shown["fetch"] is True and shown["page_size"] == 100 and shown["max_tokens"] == 5


def test_unknown_connector_still_masks_by_name():
    assert redact_config("nope", {"api_key": "k", "webhook_secret": "w", "name": "n"}) == {
        "api_key": "***", "webhook_secret": "***", "name": "n"}
