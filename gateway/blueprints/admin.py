"""Identity and key management for the calling org."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from pydantic import BaseModel, Field

from memrelay.engine.core.access import AccessScope
from memrelay.engine.core.util import iso
from memrelay.engine.stores.db.models import ApiKey
from memrelay.engine.stores.tenancy import KeyInfo
from memrelay.gateway.api import endpoint
from memrelay.gateway.schemas import admin as sch
from memrelay.gateway.state import state

bp = Blueprint("admin", __name__, url_prefix="/api/v1")


class PlanLimits(BaseModel):
    """The limits this deployment enforces (read from its Settings and request models, not a price list)."""

    maxApiCallsPerMinute: int
    maxApiCallsPerMonth: int | None = None
    maxRequestBytes: int
    llmConfigured: bool
    llmMonthlyBudgetUsd: float | None = None
    llmSpentThisMonthUsd: float
    batchMemorizeMaxRows: int
    batchMemorizeMaxChunkSize: int
    memorizeMaxContentChars: int
    searchMaxPageSize: int
    propertyHistoryMaxLimit: int
    softDeleteRecoveryDays: int


class Plan(BaseModel):
    id: str
    name: str
    description: str
    limits: PlanLimits
    features: list[str]


class MeResponse(BaseModel):
    org: dict[str, str]
    organization: dict[str, str]
    user: dict[str, str]
    key: dict[str, Any]
    rateLimit: dict[str, int]
    plan: Plan


class KeyCreate(BaseModel):
    """A new key; ``entityTypes`` / ``collections`` / ``guidelineTags`` restrict it to a department (omitted:
    not restricted on that dimension)."""

    name: str = Field("", max_length=200)
    scopes: list[str] = Field(default_factory=lambda: ["read", "write"], max_length=3)
    rateLimitPerMinute: int | None = Field(None, ge=1, le=1_000_000)
    entityTypes: list[str] | None = Field(None, max_length=50, description="Entity types the key may read and write.")
    collections: list[str] | None = Field(None, max_length=50,
                                          description="Collections (names or ids) whose properties the key sees.")
    guidelineTags: list[str] | None = Field(None, max_length=50,
                                            description="Guideline tags the key may read (and write only).")

    def access(self) -> AccessScope:
        return AccessScope.of(self.entityTypes, self.collections, self.guidelineTags)


def key_to_dict(k: ApiKey) -> dict[str, Any]:
    return {"id": k.id, "name": k.name, "prefix": k.prefix, "scopes": k.scopes, "access": k.access,
            "createdAt": iso(k.created_at), "revoked": k.revoked_at is not None}


def _field_max(model: type[BaseModel], name: str) -> int:
    """The declared upper bound (``le`` or ``max_length``) of a request model field."""
    for meta in model.model_fields[name].metadata:
        for attr in ("le", "max_length"):
            if getattr(meta, attr, None) is not None:
                return int(getattr(meta, attr))
    raise LookupError(f"{model.__name__}.{name} declares no maximum")


def plan_limits(auth: KeyInfo) -> PlanLimits:
    """The real limits of this deployment for the calling key (what ``client.me()`` callers size batches by)."""
    from memrelay.engine.memory.batch import BatchMemorizeRequest
    from memrelay.engine.memory.memories import MemorizeRequest
    from memrelay.engine.stores.records import MAX_HISTORY_PAGE
    from memrelay.engine.stores.search import MAX_PAGE_SIZE
    from memrelay.engine.stores.usage_store import org_budget_limit

    services, settings = state().services, state().settings
    spent = services.llm.store.spent_usd(auth.org_id) if settings.llm_configured else 0.0
    return PlanLimits(
        maxApiCallsPerMinute=auth.rate_limit_per_minute or settings.rate_limit_per_minute,
        maxRequestBytes=settings.max_request_bytes, llmConfigured=settings.llm_configured,
        llmMonthlyBudgetUsd=org_budget_limit(services.db, auth.org_id, settings.llm_monthly_budget_usd),
        llmSpentThisMonthUsd=round(spent, 8),
        batchMemorizeMaxRows=_field_max(BatchMemorizeRequest, "rows"),
        batchMemorizeMaxChunkSize=_field_max(BatchMemorizeRequest, "chunkSize"),
        memorizeMaxContentChars=_field_max(MemorizeRequest, "content"), searchMaxPageSize=MAX_PAGE_SIZE,
        propertyHistoryMaxLimit=MAX_HISTORY_PAGE, softDeleteRecoveryDays=settings.soft_delete_days)


@endpoint(bp, "/me", methods=("GET",), scope="read", response=MeResponse)
def me(auth: KeyInfo) -> MeResponse:
    """Who am I: org, key scopes, rate limits and ``plan.limits`` — the limits this deployment enforces
    (per-minute rate, request size, LLM budget, batch sizes); ``maxApiCallsPerMonth`` is null (no monthly cap)."""
    limits = plan_limits(auth)
    features = ["memory", "governance", "webhooks"] + (["llm"] if limits.llmConfigured else [])
    org = {"id": auth.org_id, "name": auth.org_name}
    return MeResponse(org=org, organization=org, user={"id": auth.key_id},
                      key={"id": auth.key_id, "scopes": list(auth.scopes), "scope": ",".join(auth.scopes),
                           "access": auth.access.to_json()},
                      rateLimit={"requestsPerMinute": limits.maxApiCallsPerMinute},
                      plan=Plan(id="self-hosted", name="memrelay self-hosted",
                                description="Limits of this memrelay deployment (its settings).",
                                limits=limits, features=features))


@endpoint(bp, "/keys", methods=("GET",), scope="admin", response=sch.ApiKeyList)
def list_keys(auth: KeyInfo) -> dict[str, Any]:
    """List the org's keys (never their secrets)."""
    keys = state().services.tenancy.list_keys(auth.org_id)
    return {"keys": [key_to_dict(k) for k, _ in keys]}


@endpoint(bp, "/keys", methods=("POST",), scope="admin", body=KeyCreate, response=sch.CreatedKey, status=201)
def create_key(auth: KeyInfo, body: KeyCreate) -> tuple[dict[str, Any], int]:
    """Create a key in the caller's org; the secret is returned once. ``entityTypes``, ``collections`` and
    ``guidelineTags`` make it a department key (see the README's "Security model")."""
    plaintext, row = state().services.tenancy.create_key(auth.org_id, scopes=body.scopes, name=body.name,
                                                         rate_limit_per_minute=body.rateLimitPerMinute,
                                                         access=body.access(), creator=auth)
    return {"id": row.id, "key": plaintext, "scopes": row.scopes, "prefix": row.prefix, "access": row.access}, 201


@endpoint(bp, "/keys/<key_id>", methods=("DELETE",), scope="admin", response=sch.RevokedKey)
def revoke_key(auth: KeyInfo, key_id: str) -> dict[str, Any]:
    """Revoke a key of the caller's org."""
    state().services.tenancy.revoke_key(key_id, org_id=auth.org_id)
    return {"id": key_id, "revoked": True}
