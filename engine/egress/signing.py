"""Standard Webhooks signatures for outbound deliveries (the scheme Svix uses).

``webhook-signature: v1,<base64 HMAC-SHA256("{id}.{timestamp}.{body}")>`` keyed with the base64-decoded
secret after its ``whsec_`` prefix. Signing and verification are the ``standardwebhooks`` library's own.
During a secret rotation's overlap window a delivery carries one signature per live secret, space-separated
(``v1,<new> v1,<old>``); a receiver holding either secret verifies it (the spec's key rotation scheme).
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from memrelay.engine.core.errors import SignatureError

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A fresh ``whsec_``-prefixed secret (24 random bytes, base64), shown to the subscriber once."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes | str) -> str:
    """The ``v1,<base64>`` signature of one message."""
    data = body.decode() if isinstance(body, bytes) else body
    return Webhook(secret).sign(msg_id, datetime.fromtimestamp(timestamp, UTC), data)


def signed_headers(secret: str | Sequence[str], msg_id: str, body: bytes,
                   timestamp: int | None = None) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body`` (``webhook-id`` stays the same on retries).
    Several secrets (a rotation's overlap): one ``v1,`` signature each, space-separated, in the given order."""
    ts = int(time.time()) if timestamp is None else timestamp
    keys = [secret] if isinstance(secret, str) else list(dict.fromkeys(secret))
    if not keys:
        raise ValueError("at least one signing secret is needed")
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts),
            "webhook-signature": " ".join(sign(k, msg_id, ts, body) for k in keys)}


def verify(secret: str, headers: Mapping[str, str], body: bytes | str) -> Any:
    """Check a delivery as a receiver would (5-minute tolerance); returns the parsed JSON body."""
    try:
        return Webhook(secret).verify(body, dict(headers))
    except WebhookVerificationError as exc:
        raise SignatureError(f"invalid Standard Webhooks signature: {exc}") from None
