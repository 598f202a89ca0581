"""Memorize-side controls agents expect from mem0: chat-message input, per-memory metadata and expiry.

* ``messages: [{role, content, name?}]`` — a conversation. Each message is memorized with its author as
  the memory's ``speaker`` (the ``name`` when given, else the role); ``system`` messages are instructions to a
  model, not facts about the record, and are skipped. The joined transcript ("name: text" per line) is the
  request's ``content``, which is what an LLM extractor reads.
* ``metadata`` — a JSON object stored on every memory the call creates (smart recall filters on it).
* ``expiresAt`` (ISO datetime, or a date = its start, UTC; aliases ``expires_at``, ``expiration_date``) or
  ``ttl`` (seconds; alias ``ttlSeconds``) — after it, the
  memories are hidden from recall unless ``includeExpired: true``.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import ColumnElement, or_

from memrelay.engine.core.util import as_aware, utcnow
from memrelay.engine.stores.db.models import Memory

MAX_METADATA_BYTES = 16_000
MAX_MESSAGES = 500
SKIPPED_ROLES = frozenset({"system"})


class ChatMessage(BaseModel):
    """One chat message (OpenAI / mem0 shape)."""

    model_config = ConfigDict(extra="ignore")

    role: Literal["user", "assistant", "system", "tool"] | str = Field(min_length=1, max_length=50)
    content: str = Field(max_length=100_000)
    name: str | None = Field(None, max_length=200)

    @field_validator("content", mode="before")
    @classmethod
    def _text_parts(cls, v: Any) -> Any:
        """``content`` may be a list of parts (``[{type: "text", text}]``): the text parts joined."""
        if isinstance(v, list):
            return "\n".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in v).strip()
        return v

    @property
    def author(self) -> str:
        return (self.name or self.role).strip()


def transcript(messages: list[ChatMessage]) -> str:
    """The conversation as "author: text" lines (system messages left out)."""
    return "\n".join(f"{m.author}: {m.content.strip()}" for m in memorable(messages))


def memorable(messages: list[ChatMessage]) -> list[ChatMessage]:
    """Messages that carry facts: not system prompts, not empty."""
    return [m for m in messages if m.role not in SKIPPED_ROLES and m.content.strip()]


def check_metadata(value: Any) -> dict[str, Any] | None:
    """A JSON object of bounded size (None passes)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError("'metadata' must be a JSON object, e.g. {\"channel\": \"email\", \"priority\": 2}")
    size = len(json.dumps(value, default=str))
    if size > MAX_METADATA_BYTES:
        raise ValueError(f"'metadata' is {size} bytes serialized; at most {MAX_METADATA_BYTES}")
    return value


def expiry(expires_at: datetime | date | None, ttl_s: float | None, now: datetime) -> datetime | None:
    """When memories expire: ``expiresAt`` (a bare date means the start of that day, UTC, as mem0's
    ``expiration_date``) or now + ``ttl``."""
    if expires_at is not None:
        if not isinstance(expires_at, datetime):
            return datetime(expires_at.year, expires_at.month, expires_at.day, tzinfo=UTC)
        return as_aware(expires_at)
    if ttl_s is not None:
        return now + timedelta(seconds=ttl_s)
    return None


def unexpired(now: datetime | None = None) -> ColumnElement[bool]:
    """SQL condition: the memory has no expiry or expires after ``now`` (digests and ``/recall`` listings)."""
    return or_(Memory.expires_at.is_(None), Memory.expires_at > (now or utcnow()))
