"""The request headers an inbound delivery is stored with: end-to-end headers only, bounded, secrets masked.

The event log keeps, next to each event, the headers of the delivery that carried it so an operator can see
what arrived (content type, provider ids, user agent, signature scheme). Nothing secret is stored: credentials
(``Authorization``, ``X-API-Key``, cookies, any header whose name holds token/secret/key/signature/password/
auth) keep their name and lose their value — all but a short prefix, or, for the headers the connector
verified, a note saying so. Values that look like a credential whatever the header's name are masked too.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable

MAX_TOTAL = 8 * 1024
"""Characters of names and values stored per delivery; further headers are left out (and counted)."""
MAX_VALUE = 1024
"""Characters of one stored value."""
OMITTED = "…"
"""Key under which the number of left-out headers is noted (no header name can contain it)."""
MASKED = "…(masked)"
VERIFIED = "(verified by memrelay; value not stored)"

# RFC 9110 §7.6.1 connection-specific headers, plus the proxy's credentials (hop-by-hop and secret)
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
                        "te", "trailer", "transfer-encoding", "upgrade"})
SECRET_NAME = re.compile(r"(?i)(authorization|token|secret|key|signature|cookie|passw(or)?d|auth|credential|session)")
NOT_SECRET = frozenset({"idempotency-key"})
SECRET_VALUE = re.compile(r"(?i)^\s*(bearer\s|basic\s|whsec_|sk_(live|test)_|rk_(live|test)_|mr_|pat-)")
_SCHEME = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_-]{0,20})\s+\S")  # "Bearer x", "Basic x", "HMAC x"


def is_secret_header(name: str) -> bool:
    lower = name.lower()
    return lower not in NOT_SECRET and bool(SECRET_NAME.search(lower))


def mask_value(value: str) -> str:
    """``value`` with all but a short prefix replaced: an auth scheme word (``Bearer``) stays whole, then at most
    4 characters and never more than a quarter of the secret."""
    scheme = _SCHEME.match(value)
    head, rest = (scheme.group(1) + " ", value[scheme.end(1):].strip()) if scheme else ("", value.strip())
    keep = min(4, len(rest) // 4)
    return f"{head}{rest[:keep]}{MASKED}"


def _mask_cookie(value: str) -> str:
    """Cookie names stay (they tell which session it was); every value is masked."""
    names = [part.split("=", 1)[0].strip() for part in value.split(";") if part.strip()]
    return "; ".join(f"{n}={MASKED}" for n in names if n) or MASKED


def masked(name: str, value: str, *, verified: bool = False) -> str:
    """What is stored for one header."""
    lower = name.lower()
    if verified:
        return VERIFIED
    if lower in ("cookie", "cookie2"):
        return _mask_cookie(value)
    if "signature" in lower:
        return MASKED  # a signature that was not the one verified: nothing of it is useful
    if is_secret_header(name) or SECRET_VALUE.match(value):
        return mask_value(value)
    return value


def capture_headers(pairs: Iterable[tuple[str, str]], *, verified: Collection[str] = ()) -> dict[str, str]:
    """The headers to store for a delivery: hop-by-hop ones dropped (and those its ``Connection`` names),
    repeated ones joined with ``", "``, secrets masked (``verified``: names of the headers whose check passed),
    at most :data:`MAX_TOTAL` characters; ``{"…": "N header(s) left out"}`` when some did not fit."""
    items = [(str(n).strip(), str(v)) for n, v in pairs]
    dropped = set(HOP_BY_HOP)
    for n, v in items:
        if n.lower() == "connection":
            dropped |= {t.strip().lower() for t in v.split(",") if t.strip()}
    ok = {v.lower() for v in verified}
    joined: dict[str, tuple[str, str]] = {}
    for n, v in items:
        if not n or n.lower() in dropped:
            continue
        key = n.lower()
        joined[key] = (joined[key][0], joined[key][1] + ", " + v) if key in joined else (n, v)
    out: dict[str, str] = {}
    total, left_out = 0, 0
    for key, (name, value) in joined.items():
        shown = masked(name, value, verified=key in ok)
        if len(shown) > MAX_VALUE:
            shown = shown[:MAX_VALUE] + "…(truncated)"
        size = len(name) + len(shown)
        if total + size > MAX_TOTAL:
            left_out += 1
            continue
        out[name] = shown
        total += size
    if left_out:
        out[OMITTED] = f"{left_out} header(s) left out ({MAX_TOTAL // 1024} KB limit)"
    return out
