"""Identity and key management for the calling org."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from pydantic import BaseModel, Field

from memrelay.engine.core.util import iso
from memrelay.engine.stores.tenancy import KeyInfo
from memrelay.gateway.api import endpoint
from memrelay.gateway.state import state

bp = Blueprint("admin", __name__, url_prefix="/api/v1")


class MeResponse(BaseModel):
    org: dict[str, str]
    key: dict[str, Any]
    rateLimit: dict[str, int]


class KeyCreate(BaseModel):
    name: str = ""
    scopes: list[str] = Field(default_factory=lambda: ["read", "write"])
    rateLimitPerMinute: int | None = Field(None, ge=1)


@endpoint(bp, "/me", methods=("GET",), scope="read", response=MeResponse)
def me(auth: KeyInfo) -> dict[str, Any]:
    """Who am I: org, key scopes and rate limits (the Zapier/n8n connection test)."""
    limit = auth.rate_limit_per_minute or state().settings.rate_limit_per_minute
    return {"org": {"id": auth.org_id, "name": auth.org_name},
            "key": {"id": auth.key_id, "scopes": list(auth.scopes)},
            "rateLimit": {"requestsPerMinute": limit}}


@endpoint(bp, "/keys", methods=("GET",), scope="admin")
def list_keys(auth: KeyInfo) -> dict[str, Any]:
    """List the org's keys (never their secrets)."""
    keys = state().services.tenancy.list_keys(auth.org_id)
    return {"keys": [{"id": k.id, "name": k.name, "prefix": k.prefix, "scopes": k.scopes,
                      "createdAt": iso(k.created_at), "revoked": k.revoked_at is not None} for k, _ in keys]}


@endpoint(bp, "/keys", methods=("POST",), scope="admin", body=KeyCreate)
def create_key(auth: KeyInfo, body: KeyCreate) -> tuple[dict[str, Any], int]:
    """Create a key in the caller's org; the secret is returned once."""
    plaintext, row = state().services.tenancy.create_key(auth.org_id, scopes=body.scopes, name=body.name,
                                                         rate_limit_per_minute=body.rateLimitPerMinute)
    return {"id": row.id, "key": plaintext, "scopes": row.scopes, "prefix": row.prefix}, 201


@endpoint(bp, "/keys/<key_id>", methods=("DELETE",), scope="admin")
def revoke_key(auth: KeyInfo, key_id: str) -> dict[str, Any]:
    """Revoke a key of the caller's org."""
    state().services.tenancy.revoke_key(key_id, org_id=auth.org_id)
    return {"id": key_id, "revoked": True}
