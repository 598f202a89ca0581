"""SQL tables of outbound webhooks: subscriptions (Standard Webhooks endpoints and Zapier REST hooks),
one delivery per (subscription, outbox event) and a log row per HTTP attempt. Every row carries ``org_id``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from memrelay.engine.stores.db import models  # noqa: F401 - the tables our foreign keys name
from memrelay.engine.stores.db.base import Base, BigId
from memrelay.engine.stores.db.encrypted import EncryptedText


class WebhookSubscription(Base):
    """An org's target URL for some (or all, ``["*"]``) outbox event types."""

    __tablename__ = "webhook_subscriptions"
    __table_args__ = (Index("ix_webhook_subs_org_active", "org_id", "active"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20), default="webhook")  # webhook | zapier_hook
    url: Mapped[str] = mapped_column(Text)
    event_types: Mapped[list[Any]] = mapped_column(JSON)
    description: Mapped[str] = mapped_column(Text, default="")
    secret: Mapped[str] = mapped_column(EncryptedText("webhook_subscriptions.secret", 100))  # encrypted at rest
    # after a rotation: the old secret, still signing (next to the new one) until the overlap window ends
    previous_secret: Mapped[str | None] = mapped_column(EncryptedText("webhook_subscriptions.previous_secret", 100),
                                                        nullable=True)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(300), nullable=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class WebhookDelivery(Base):
    """One outbox event to one subscription; retried on its own schedule until it succeeds or dies."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("subscription_id", "outbox_id"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(40))
    subscription_id: Mapped[str] = mapped_column(ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"))
    outbox_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"),
                                           ForeignKey("outbox.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(40))  # the outbox public id, sent as webhook-id
    event_type: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime]
    completed_at: Mapped[datetime | None] = mapped_column(nullable=True)


class WebhookAttempt(Base):
    """One HTTP attempt of a delivery: what the target answered (or why nothing was sent)."""

    __tablename__ = "webhook_attempts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(String(40))
    delivery_id: Mapped[str] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    manual: Mapped[bool] = mapped_column(Boolean, default=False)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    response_snippet: Mapped[str | None] = mapped_column(Text, nullable=True)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime]
