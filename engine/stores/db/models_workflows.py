"""SQL tables of workflows: runs, their step runs (status, attempts, output, log) and per-org enablement.

Definitions live in YAML files; a run keeps a snapshot of the definition it ran."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from memrelay.engine.stores.db import models  # noqa: F401 - the tables our foreign keys name
from memrelay.engine.stores.db.base import Base, BigId


class WorkflowRun(Base):
    """One execution of a workflow for an org; ``dedup_key`` makes event/schedule triggers idempotent."""

    __tablename__ = "workflow_runs"
    __table_args__ = (
        UniqueConstraint("org_id", "workflow_id", "dedup_key"),
        Index("ix_workflow_runs_org_wf_created", "org_id", "workflow_id", "created_at"),
        Index("ix_workflow_runs_status", "status"),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    workflow_id: Mapped[str] = mapped_column(String(80))
    trigger_type: Mapped[str] = mapped_column(String(20))
    trigger: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    dedup_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default="queued")
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)


class WorkflowStepRun(Base):
    """One step of a run (per fan-out item): status, attempts, output, error and log lines."""

    __tablename__ = "workflow_step_runs"
    __table_args__ = (UniqueConstraint("run_id", "step_id", "item_index"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("workflow_runs.id", ondelete="CASCADE"), index=True)
    step_id: Mapped[str] = mapped_column(String(80))
    step_type: Mapped[str] = mapped_column(String(30))
    item_index: Mapped[int] = mapped_column(Integer, default=0)
    position: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    output: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    log: Mapped[list[Any]] = mapped_column(JSON, default=list)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)


class WorkflowState(Base):
    """Whether event and schedule triggers of a workflow fire for an org (manual runs always work)."""

    __tablename__ = "workflow_states"
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True)
    workflow_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime]
