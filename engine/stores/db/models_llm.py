"""SQL tables of the LLM layer: usage accounting, guidelines (with versions), guideline delivery
sessions (progressive delivery across gateway processes) and saved agents. Every row carries ``org_id``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from memrelay.engine.stores.db import models  # noqa: F401 - the tables our foreign keys name
from memrelay.engine.stores.db.base import Base, BigId


class LLMUsageRow(Base):
    """One public LLM call (its retries and repair attempts aggregated): who, what for, tokens and cost."""

    __tablename__ = "llm_usage"
    __table_args__ = (Index("ix_llm_usage_org_created", "org_id", "created_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(String(40))
    feature: Mapped[str] = mapped_column(String(60))
    run_id: Mapped[str | None] = mapped_column(String(60), nullable=True)
    model: Mapped[str] = mapped_column(String(200))
    calls: Mapped[int] = mapped_column(Integer, default=1)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    total_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime]


class Guideline(Base):
    """A governance guideline: markdown content routed to prompts by meaning, keywords and tags."""

    __tablename__ = "guidelines"
    __table_args__ = (Index("ix_guidelines_org_deleted", "org_id", "deleted_at"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    content: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[list[Any]] = mapped_column(JSON, default=list)
    trigger_keywords: Mapped[list[Any]] = mapped_column(JSON, default=list)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    deleted_at: Mapped[datetime | None] = mapped_column(nullable=True)


class GuidelineVersion(Base):
    """A snapshot of a guideline after each change (history and diffs)."""

    __tablename__ = "guideline_versions"
    __table_args__ = (UniqueConstraint("guideline_id", "version"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(String(40), index=True)
    guideline_id: Mapped[str] = mapped_column(ForeignKey("guidelines.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    actor: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime]


class GuidelineDelivery(Base):
    """A guideline section already delivered within a session (progressive delivery)."""

    __tablename__ = "guideline_deliveries"
    __table_args__ = (UniqueConstraint("org_id", "session_id", "section_hash"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(String(40))
    session_id: Mapped[str] = mapped_column(String(200))
    section_hash: Mapped[str] = mapped_column(String(64))
    guideline_id: Mapped[str] = mapped_column(String(40))
    tokens: Mapped[int] = mapped_column(Integer, default=0)
    delivered_at: Mapped[datetime]


class Agent(Base):
    """A saved prompt action: generation instructions with ``{{variables}}``, run on demand."""

    __tablename__ = "agents"
    __table_args__ = (UniqueConstraint("org_id", "name"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
