"""Outbound webhook subscriptions and their deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from memrelay_client.models._base import ApiModel


class Subscription(ApiModel):
    """A URL subscribed to event types (``secret`` only in the creation answer)."""

    id: str
    kind: str | None = None
    url: str
    event_types: list[str] = Field(default_factory=list)
    description: str = ""
    active: bool = True
    disabled_reason: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    secret: str | None = None


class DeliveryPage(ApiModel):
    """A page of deliveries, newest first, each with its attempts."""

    deliveries: list[dict[str, Any]] = Field(default_factory=list)
    page: int = 1
    page_size: int = 50
    total: int = 0
    has_more: bool = False

