"""Generic signed webhooks for any system that can HMAC: ``X-Signature: t=<unix s>,v1=<hex>[,v1=...]``.

The signature is hex HMAC-SHA256(secret, ``"{t}.{raw body}"``); several ``v1`` entries are allowed so a
sender can sign with old and new secrets during a rotation; timestamps outside 5 minutes are rejected.
Bodies are parsed as form submissions (JSON or form-encoded, see :mod:`memrelay.connectors.form_record`).
"""

from __future__ import annotations

from collections.abc import Mapping

from memrelay.connectors.base import BaseConnector, InboundEvent, SourceConfig, Verified, header
from memrelay.connectors.form_record import parse_generic_form
from memrelay.connectors.signing import (
    check_fresh,
    hex_digest,
    hmac_sha256,
    parse_signature_pairs,
    parse_timestamp,
    verify_hmac,
)

SIGNATURE_HEADER = "X-Signature"
TOLERANCE_S = 300


def signature_header(secret: str, raw_body: bytes, timestamp: int) -> str:
    """Build an ``X-Signature`` value (for senders and tests)."""
    digest = hmac_sha256(secret, f"{timestamp}.".encode() + raw_body)
    return f"t={timestamp},v1={hex_digest(digest)}"


class GenericHmacConnector(BaseConnector):
    name = "generic_hmac"

    def verify(
        self,
        headers: Mapping[str, str],
        raw_body: bytes,
        *,
        source: SourceConfig,
        method: str = "POST",
        url: str = "",
        token: str | None = None,
        now: float | None = None,
    ) -> Verified:
        timestamp, signatures = parse_signature_pairs(
            header(headers, SIGNATURE_HEADER), what=SIGNATURE_HEADER
        )
        check_fresh(
            parse_timestamp(timestamp, what=f"{SIGNATURE_HEADER} timestamp"), now=now, tolerance=TOLERANCE_S
        )
        message = (timestamp or "").strip().encode("ascii") + b"." + raw_body
        verify_hmac(
            source, message, [s.lower() for s in signatures], encode=hex_digest, what=SIGNATURE_HEADER
        )
        return self.verified(source, raw_body, headers)

    def parse(self, verified: Verified) -> list[InboundEvent]:
        """One ``form.submitted`` event per request."""
        return [parse_generic_form(self, self.opened(verified))]
