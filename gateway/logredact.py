"""Credentials never reach a log line: webhook path tokens, ``?token=`` and key headers are masked.

Used by gunicorn's access log (:class:`memrelay.gateway.gunicorn_conf.RedactingLogger`); pure functions,
importable in the gunicorn master (no app, no connections)."""

from __future__ import annotations

import re
from typing import Any

MASK = "***"
_QUERY_SECRET = re.compile(r"(?i)((?:^|[?&;])(?:token|api_key|apikey|key|secret|signature)=)[^&;\s]*")
_PATH_TOKEN = re.compile(r"(/webhooks/[^/?\s]+/[^/?\s]+/)[^/?\s]+")
SECRET_HEADERS = frozenset({"authorization", "x-api-key", "x-memrelay-token", "cookie"})


def redact_url(text: str) -> str:
    """A path, query string or request line with webhook path tokens and secret query values masked."""
    return _QUERY_SECRET.sub(rf"\g<1>{MASK}", _PATH_TOKEN.sub(rf"\g<1>{MASK}", text))


def redact_atoms(atoms: dict[str, Any]) -> dict[str, Any]:
    """gunicorn access-log atoms with the request line, path, query, URI variables and key headers masked."""
    out = dict(atoms)
    for name in ("r", "U", "q", "{raw_uri}e", "{request_uri}e", "{path_info}e", "{query_string}e"):
        if isinstance(out.get(name), str):
            out[name] = redact_url(out[name])
    for header in SECRET_HEADERS:
        if out.get(f"{{{header}}}i"):
            out[f"{{{header}}}i"] = MASK
    return out
