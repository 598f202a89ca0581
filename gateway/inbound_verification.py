"""Which check let an inbound delivery in: the record stored next to its events (``InboundEvent.verification``).

The connector's ``verify`` either passed or raised; this names how it passed — the connector, a short scheme
id, the registry's description of it, and the request headers that carried the verified credential (stored
as "verified", never their value; see :mod:`memrelay.engine.core.delivery_headers`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from memrelay.connectors.registry import connector_info

TOKEN_HEADER = "X-Memrelay-Token"
# connector -> (scheme id, the header whose signature it checks), for the HMAC-signed providers
SIGNED: dict[str, tuple[str, str]] = {
    "stripe": ("stripe-signature", "Stripe-Signature"),
    "typeform": ("typeform-signature", "Typeform-Signature"),
    "webflow": ("webflow-signature", "X-Webflow-Signature"),
    "generic_hmac": ("hmac-sha256", "X-Signature"),
}


def _has(headers: Mapping[str, str], name: str) -> bool:
    wanted = name.lower()
    return any(k.lower() == wanted for k in headers)


def verification_record(connector: str, headers: Mapping[str, str], *, api_key_id: str | None = None,
                        path_token: bool = False, query_token: bool = False) -> dict[str, Any]:
    """How a delivery that passed verification was verified (call only after ``verify`` returned)."""
    info = connector_info(connector)
    out: dict[str, Any] = {"connector": connector, "description": info.auth, "verifiedHeaders": []}
    if api_key_id is not None:
        bearer = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        name = "Authorization" if bearer.lower().startswith("bearer ") else "X-API-Key"  # as api_key_from_request
        return {**out, "scheme": "api-key", "apiKeyId": api_key_id, "verifiedHeaders": [name]}
    if connector == "hubspot":
        if _has(headers, "X-HubSpot-Signature-v3"):
            return {**out, "scheme": "hubspot-signature-v3", "verifiedHeaders": ["X-HubSpot-Signature-v3"]}
        version = next((v for k, v in headers.items() if k.lower() == "x-hubspot-signature-version"), "")
        return {**out, "scheme": f"hubspot-signature-{version.strip().lower() or 'v1'}",
                "verifiedHeaders": ["X-HubSpot-Signature"]}
    if connector in SIGNED:
        scheme, header = SIGNED[connector]
        return {**out, "scheme": scheme, "verifiedHeaders": [header]}
    if path_token:
        return {**out, "scheme": "path-token"}
    if query_token:
        return {**out, "scheme": "query-token"}
    if _has(headers, TOKEN_HEADER):
        return {**out, "scheme": "header-token", "verifiedHeaders": [TOKEN_HEADER]}
    return {**out, "scheme": "none", "description": info.auth + " (this source has no token: not authenticated)"}
