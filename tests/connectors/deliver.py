"""Sign a body the way each provider does and run it through the connector's real ``verify``.

Parsing tests use :func:`deliver` to obtain the :class:`Verified` value ``parse`` requires, so every parsed
body has passed the same verification the gateway runs. A source without the secret, token or organization
allowlist the scheme needs gets test values for them (same id, so events keep their ``source_id``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from stripe import WebhookSignature

from memrelay.connectors import SourceConfig, Verified, connector_info, get_connector
from memrelay.connectors.generic_hmac.webhook import signature_header
from memrelay.connectors.hubspot.webhook import v1_signature

TEST_SECRET = "test-signing-secret"
TEST_TOKEN = "test-source-token"
_ORG_ID = re.compile(rb"<OrganizationId>\s*([A-Za-z0-9]+)\s*</OrganizationId>")


def _hmac(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def _with_credentials(source: SourceConfig, body: bytes) -> SourceConfig:
    update: dict[str, Any] = {}
    if source.secret is None:
        update["secret"] = SecretStr(TEST_SECRET)
    if source.token is None:
        update["token"] = SecretStr(TEST_TOKEN)
    if source.connector == "salesforce" and not source.allowed_org_ids and (match := _ORG_ID.search(body)):
        update["allowed_org_ids"] = [match.group(1).decode()]
    return source.model_copy(update=update) if update else source


def signed_headers(source: SourceConfig, body: bytes, *, now: float) -> dict[str, str]:
    """Headers a real sender would attach for ``source`` (secret: ``source.secret``)."""
    secret = source.secret.get_secret_value() if source.secret else ""
    name = source.connector
    if name == "hubspot":
        return {"X-HubSpot-Signature-Version": "v1", "X-HubSpot-Signature": v1_signature(secret, body)}
    if name == "stripe":
        return {"Stripe-Signature": WebhookSignature.generate_signature_header(body.decode(), secret, int(now))}
    if name == "typeform":
        return {"Typeform-Signature": "sha256=" + base64.b64encode(_hmac(secret, body)).decode()}
    if name == "webflow":
        ts = str(int(now * 1000))
        return {"x-webflow-timestamp": ts, "x-webflow-signature": _hmac(secret, ts.encode() + b":" + body).hex()}
    if name == "generic_hmac":
        return {"X-Signature": signature_header(secret, body, int(now))}
    return {}  # token connectors: the token is passed as the URL token


def deliver(source: SourceConfig, body: bytes, content_type: str = "application/json", *,
            now: float | None = None) -> Verified:
    """``body`` as verified by ``source``'s connector (signed, or with the source token)."""
    now = time.time() if now is None else now
    source = _with_credentials(source, body)
    headers = {"Content-Type": content_type, **signed_headers(source, body, now=now)}
    token = source.token.get_secret_value() if source.token else None
    return get_connector(source.connector).verify(headers, body, source=source, method="POST",
                                                  url="https://memrelay.test/webhooks", token=token, now=now)


def fixture_path(connector: str, name: str) -> Path:
    """A provider payload fixture shipped in the connector's package."""
    return connector_info(connector).package_dir / "fixtures" / name


def fixture_bytes(connector: str, name: str) -> bytes:
    """A provider payload fixture's raw bytes (signature vectors depend on every byte)."""
    return fixture_path(connector, name).read_bytes()


def fixture_json(connector: str, name: str) -> Any:
    return json.loads(fixture_bytes(connector, name))
