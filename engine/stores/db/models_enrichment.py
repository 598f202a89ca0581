"""SQL tables of proactive enrichment (``memrelay.engine.enrichment``): whole-collection runs and their chunks,
stale marks of inferred properties, and each org's change-feed cursor. Every row carries ``org_id``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from memrelay.engine.stores.db import models  # noqa: F401 - the tables our foreign keys name
from memrelay.engine.stores.db.base import Base, BigId


class EnrichmentRun(Base):
    """One run of one inferred property over a collection's records (or a search's matches)."""

    __tablename__ = "enrichment_runs"
    __table_args__ = (Index("ix_enrichment_runs_org", "org_id", "created_at"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    entity_type: Mapped[str] = mapped_column(String(100))
    property: Mapped[str] = mapped_column(String(128))
    mode: Mapped[str] = mapped_column(String(16))  # llm | offline
    status: Mapped[str] = mapped_column(String(16))  # queued | running | completed | failed
    query: Mapped[Any] = mapped_column(JSON, nullable=True)
    total: Mapped[int] = mapped_column(Integer, default=0)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    chunks_total: Mapped[int] = mapped_column(Integer, default=0)
    chunks_done: Mapped[int] = mapped_column(Integer, default=0)
    estimate_usd: Mapped[float] = mapped_column(Float, default=0.0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)


class EnrichmentChunk(Base):
    """A slice of a run's records, fixed when the run starts (so a resumed run does exactly the rest)."""

    __tablename__ = "enrichment_chunks"
    __table_args__ = (UniqueConstraint("run_id", "chunk_index"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("enrichment_runs.id", ondelete="CASCADE"))
    chunk_index: Mapped[int] = mapped_column(Integer)
    record_ids: Mapped[list[Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | done | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[datetime]


class EnrichmentStale(Base):
    """An inferred property of one record whose evidence changed since it was computed."""

    __tablename__ = "enrichment_stale"
    __table_args__ = (UniqueConstraint("record_id", "property"), Index("ix_enrichment_stale_due", "org_id", "due_at"))
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(String(40))
    record_id: Mapped[str] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"))
    property: Mapped[str] = mapped_column(String(128))
    policy: Mapped[str] = mapped_column(String(20))
    reasons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    marks: Mapped[int] = mapped_column(Integer, default=1)  # changes seen; a refresh keeps a mark that moved on
    marked_at: Mapped[datetime]  # the first change since the value was computed
    due_at: Mapped[datetime | None] = mapped_column(nullable=True)  # None: manual policy, never automatic


class EnrichmentCursor(Base):
    """How far an org's change feed (memories by ``updated_at``, property history by id) has been read."""

    __tablename__ = "enrichment_cursors"
    org_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    memory_ts: Mapped[datetime | None] = mapped_column(nullable=True)
    history_id: Mapped[int] = mapped_column(BigId, default=0)
    updated_at: Mapped[datetime]
