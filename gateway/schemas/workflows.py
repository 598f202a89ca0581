"""Answers of the workflows API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class WorkflowStepInfo(BaseModel):
    id: str
    type: str
    name: str | None = None


class Workflow(BaseModel):
    id: str
    name: str | None = None
    description: str | None = None
    enabled: bool
    trigger: dict[str, Any]
    foreach: Any = None
    steps: list[WorkflowStepInfo]


class WorkflowList(BaseModel):
    workflows: list[Workflow]


class StepRun(BaseModel):
    stepId: str
    type: str
    item: int | None = None
    status: str
    attempts: int
    output: Any = None
    error: Any = None
    log: Any = None
    startedAt: str | None = None
    finishedAt: str | None = None


class WorkflowRun(BaseModel):
    runId: str
    workflowId: str
    status: str
    trigger: dict[str, Any]
    error: Any = None
    createdAt: str | None = None
    startedAt: str | None = None
    finishedAt: str | None = None
    steps: list[StepRun] | None = None


class WorkflowRuns(BaseModel):
    workflowId: str
    runs: list[WorkflowRun]


class RunQueued(BaseModel):
    runId: str
    status: str
    statusUrl: str


class Signal(BaseModel):
    record_id: str
    signals: list[Any]
    keys: dict[str, Any] | None = None
    email: str | None = None


class Signals(BaseModel):
    items: list[Signal]
    count: int


class RunsQuery(BaseModel):
    limit: int = Field(20, ge=1, le=200)


class SignalsQuery(BaseModel):
    tag: str = Field("deferred", description="Memory tag to look for.")
    sinceHours: int = Field(24, ge=1, le=24 * 90)
    type: str = Field("contact", description="Entity type.")
    limit: int = Field(100, ge=1, le=1000)
