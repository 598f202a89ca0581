"""Answers of the webhook receiver, the sources API and the inbound event log."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Source(BaseModel):
    id: str
    connector: str
    name: str | None = None
    active: bool
    webhookPath: str
    config: dict[str, Any] = Field(description="The source's configuration, secrets masked.")
    hasCustomMapping: bool
    syncCursor: dict[str, Any] | None = None
    createdAt: str | None = None
    updatedAt: str | None = None
    tokenHeader: str | None = Field(None, description="Header that may carry the path token instead.")
    secret: str | None = Field(None, description="Signing secret: only on create, reveal and rotate-token.")
    token: str | None = Field(None, description="Path token: only on create, reveal and rotate-token.")
    webhookUrl: str | None = Field(None, description="Absolute URL with the token (create, reveal, rotate-token).")


class SourceList(BaseModel):
    sources: list[Source]


class EventVerification(BaseModel):
    connector: str
    scheme: str = Field(description="api-key | hubspot-signature-v1/v2/v3 | stripe-signature | typeform-signature | "
                                    "webflow-signature | hmac-sha256 | path-token | query-token | header-token")
    description: str = Field("", description="The connector's authentication, as the registry describes it.")
    verifiedHeaders: list[str] = Field(default_factory=list,
                                       description="Headers that carried the verified credential.")
    apiKeyId: str | None = Field(None, description="The org API key that authenticated it (scheme api-key).")


class InboundEvent(BaseModel):
    id: str
    sourceId: str
    connector: str
    dedupKey: str
    eventType: str
    objectType: str | None = None
    objectId: str | None = None
    occurredAt: str | None = None
    status: str
    attempts: int
    lastError: str | None = None
    result: Any = None
    receivedAt: str | None = None
    processedAt: str | None = None
    nextAttemptAt: str | None = None
    payload: Any = Field(None, description="The parsed event (GET /events/{id} only).")
    headers: dict[str, str] | None = Field(
        None, description="GET /events/{id} only: the request headers of the delivery that carried the event, "
                          "hop-by-hop ones dropped, at most 8 KB; credentials (Authorization, X-API-Key, cookies, "
                          "any *token*/*secret*/*key*/*signature* header) keep their name, their value is masked "
                          "(the verified signature shows as verified); null for events stored before they were "
                          "recorded.")
    verification: EventVerification | None = Field(
        None, description="GET /events/{id} only: which check let the delivery in.")


class EventList(BaseModel):
    events: list[InboundEvent]
    counts: dict[str, int] = Field(description="Events per status.")


class EventListQuery(BaseModel):
    status: str | None = Field(None, description="received | processing | processed | failed | dead")
    source: str | None = Field(None, description="A source id.")
    limit: int = Field(50, description="1-500 (clamped).")
