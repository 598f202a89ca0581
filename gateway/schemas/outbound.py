"""Answers of the outbound webhooks API and the Zapier surface."""

from __future__ import annotations

from pydantic import BaseModel, Field, RootModel

from memrelay.gateway.schemas.common import OpenObject


class Subscription(BaseModel):
    id: str
    kind: str
    url: str
    eventTypes: list[str]
    description: str | None = None
    active: bool
    disabledReason: str | None = None
    createdAt: str | None = None
    updatedAt: str | None = None
    secret: str | None = Field(None, description="The whsec_ signing secret: only in the answer that creates it.")
    previousSecretExpiresAt: str | None = None


class RotatedSecret(Subscription):
    overlapSeconds: int = Field(description="How long the previous secret keeps signing too.")


class SubscriptionList(BaseModel):
    webhooks: list[Subscription]


class EventTypes(BaseModel):
    eventTypes: list[str]


class Allowlist(BaseModel):
    hosts: list[str]


class Attempt(BaseModel):
    attempt: int
    manual: bool
    statusCode: int | None = None
    responseSnippet: str | None = None
    durationMs: float | None = None
    error: str | None = None
    at: str | None = None


class Delivery(BaseModel):
    id: str
    subscriptionId: str
    eventId: str
    eventType: str
    status: str
    attempts: int
    nextAttemptAt: str | None = None
    lastStatusCode: int | None = None
    lastError: str | None = None
    createdAt: str | None = None
    completedAt: str | None = None
    log: list[Attempt]


class DeliveryPage(BaseModel):
    deliveries: list[Delivery]
    page: int
    pageSize: int
    total: int
    hasMore: bool


# --- Zapier (no envelope) -----------------------------------------------------------------------------
class HookSubscription(BaseModel):
    id: str
    event: str
    target_url: str
    secret: str | None = Field(None, description="The hook's signing secret, shown once.")


class HookSecret(BaseModel):
    id: str
    secret: str
    previousSecretExpiresAt: str | None = None


class TriggerItem(OpenObject):
    """An event as a Zapier item: the event's data with ``id``, ``event`` and ``created_at``."""

    id: str
    event: str
    created_at: str | None = None


class TriggerItems(RootModel[list[TriggerItem]]):
    """The bare array Zapier's polling triggers expect, newest first."""


class FeedPage(BaseModel):
    items: list[TriggerItem]
    nextCursor: str | None = None
    hasMore: bool


class FlatObject(OpenObject):
    """A flat JSON object (nested keys joined with ``__``), as Zapier actions answer."""


class FlatObjects(RootModel[list[FlatObject]]):
    """A bare array of flat objects, as Zapier searches answer (empty: nothing found)."""


# --- query strings ------------------------------------------------------------------------------------
class SubscriptionListQuery(BaseModel):
    kind: str | None = Field(None, description="'webhook' or 'zapier_hook'.")


class DeliveriesQuery(BaseModel):
    page: int = 1
    pageSize: int = 50


class TriggerQuery(BaseModel):
    limit: int = Field(50, description="Clamped to the feed's maximum.")
    cursor: str | None = Field(None, description="A cursor from /feed: pages to older events.")
    type: str | None = Field(None, description="Only events about records of this entity type.")
    property: str | None = Field(None, description="Only events that changed this property.")


class FeedQuery(TriggerQuery):
    eventTypes: str | None = Field(None, description="Comma-joined event types, or '*' (default).")


class FindRecordQuery(BaseModel):
    email: str | None = None
    website_url: str | None = None
    record_id: str | None = None
    customKeyName: str | None = None
    customKeyValue: str | None = None
    type: str | None = None
