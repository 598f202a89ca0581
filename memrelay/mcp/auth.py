"""Authorising an MCP tool call: the API key (HTTP header, or ``MEMRELAY_API_KEY`` on stdio), its org and
scopes, checked by the same tenancy store the REST gateway uses."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

from memrelay.engine.core.errors import MemrelayError
from memrelay.engine.stores.tenancy import KeyInfo, Tenancy

API_KEY_ENV = "MEMRELAY_API_KEY"


def key_from_headers(headers: Mapping[str, str]) -> str | None:
    """The key of ``Authorization: Bearer <key>`` or ``X-API-Key: <key>`` (as the REST gateway reads it)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    auth = lowered.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return lowered.get("x-api-key") or None


def presented_key(ctx: Context[Any, Any]) -> str | None:
    """The caller's key: from the HTTP request's headers, or from the environment on stdio."""
    headers = ctx.headers
    if headers is not None:
        return key_from_headers(headers)
    return os.environ.get(API_KEY_ENV) or None


def authorise(tenancy: Tenancy, ctx: Context[Any, Any], scope: str) -> KeyInfo:
    """The caller's key, if it exists and holds ``scope``; a tool error saying why not otherwise."""
    try:
        info = tenancy.authenticate(presented_key(ctx))
    except MemrelayError as exc:
        raise ToolError(f"{exc.code}: {exc.message} (stdio: set {API_KEY_ENV})") from None
    if not info.allows(scope):
        raise ToolError(f"forbidden: this key lacks the '{scope}' scope (it has: {', '.join(info.scopes)})")
    return info
