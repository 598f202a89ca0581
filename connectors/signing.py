"""Signature primitives shared by every HMAC/token connector: one constant-time comparison path.

Failure reasons name what was wrong (missing header, stale timestamp, no match) and never include a
secret, a computed signature or the received one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Iterable, Mapping, Sequence

from pydantic import SecretStr

from memrelay.connectors.base import SourceConfig, header
from memrelay.engine.core.errors import SignatureError

DEFAULT_TOLERANCE_S = 300
TOKEN_HEADER = "X-Memrelay-Token"

Encoder = Callable[[bytes], str]


def hex_digest(digest: bytes) -> str:
    return digest.hex()


def b64_digest(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def hmac_sha256(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()


def sha256_hex(message: bytes) -> str:
    return hashlib.sha256(message).hexdigest()


def constant_time_equal(expected: str, received: str) -> bool:
    """``hmac.compare_digest`` on UTF-8 bytes (str arguments must be ASCII, bytes need not be)."""
    return hmac.compare_digest(expected.encode("utf-8"), received.encode("utf-8"))


def any_match(expected: Iterable[str], received: Sequence[str]) -> bool:
    """True if any expected value equals any received value, each compared in constant time."""
    matched = False
    for exp in expected:
        for got in received:
            matched |= constant_time_equal(exp, got)
    return matched


def require_secrets(source: SourceConfig) -> list[str]:
    """The source's signing secrets (current first); fail closed when none is configured."""
    secrets = source.signing_secrets()
    if not secrets:
        raise SignatureError("no signing secret is configured for this source")
    return secrets


def verify_hmac(
    source: SourceConfig,
    message: bytes,
    received: Sequence[str],
    *,
    encode: Encoder = hex_digest,
    what: str = "signature",
) -> None:
    """Check HMAC-SHA256(secret, message) against ``received`` for the current and previous secrets."""
    received = [r.strip() for r in received if r and r.strip()]
    if not received:
        raise SignatureError(f"missing {what}")
    expected = [encode(hmac_sha256(secret, message)) for secret in require_secrets(source)]
    if not any_match(expected, received):
        raise SignatureError(f"{what} does not match")


def parse_timestamp(value: str | None, *, what: str, unit_ms: bool = False) -> float:
    """Parse a unix timestamp header (seconds, or milliseconds when ``unit_ms``) into seconds."""
    if value is None or not value.strip():
        raise SignatureError(f"missing {what}")
    text = value.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 16:
        raise SignatureError(f"malformed {what}")
    number = int(text)
    return number / 1000.0 if unit_ms else float(number)


def check_fresh(
    timestamp_s: float, *, now: float | None = None, tolerance: float = DEFAULT_TOLERANCE_S
) -> None:
    """Reject timestamps more than ``tolerance`` seconds in the past (replay) or the future (skew)."""
    current = time.time() if now is None else now
    if timestamp_s < current - tolerance:
        raise SignatureError(f"timestamp is older than {int(tolerance)} seconds")
    if timestamp_s > current + tolerance:
        raise SignatureError(f"timestamp is more than {int(tolerance)} seconds in the future")


def parse_signature_pairs(value: str | None, *, what: str) -> tuple[str | None, list[str]]:
    """Split ``t=<ts>,v1=<sig>[,v1=<sig>...]`` into ``(t, [v1...])``; unknown schemes are ignored."""
    if value is None or not value.strip():
        raise SignatureError(f"missing {what} header")
    timestamp: str | None = None
    signatures: list[str] = []
    for part in value.split(","):
        key, sep, val = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            timestamp = val
        elif key == "v1":
            signatures.append(val)
    return timestamp, signatures


def provided_token(headers: Mapping[str, str], token: str | None) -> str | None:
    """The per-source token: the gateway-extracted URL token, else the ``X-Memrelay-Token`` header."""
    return token if token else header(headers, TOKEN_HEADER)


def verify_token(expected: SecretStr | None, provided: str | None) -> None:
    """Constant-time check of a per-source token; fail closed when the source has none."""
    if expected is None or not expected.get_secret_value():
        raise SignatureError("no token is configured for this source")
    if not provided:
        raise SignatureError("missing source token")
    if not constant_time_equal(expected.get_secret_value(), provided):
        raise SignatureError("source token does not match")
