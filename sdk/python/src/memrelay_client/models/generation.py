"""Generation: prompt runs, saved agents, background jobs and LLM usage."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AliasChoices, Field

from memrelay_client.models._base import ApiModel, RequestModel


class Instruction(RequestModel):
    """One generation step (``max_steps``: LLM calls it may use, answer plus regenerations)."""

    prompt: str
    max_steps: int | None = None


class OutputSpec(RequestModel):
    """A named output the generation must produce."""

    name: str
    description: str = ""


class PromptResult(ApiModel):
    """A generation: the final text, named outputs, steps, guardrails, evaluation and usage."""

    text: str = Field("", validation_alias=AliasChoices("text", "output"))
    outputs: dict[str, Any] = Field(default_factory=dict)
    run_id: str | None = None
    agent_id: str | None = None
    steps: list[dict[str, Any]] = Field(default_factory=list)
    guardrails: dict[str, Any] | None = None
    evaluation: Any = None
    memorized: Any = None
    usage: dict[str, Any] | None = None


class QueuedJob(ApiModel):
    """A generation queued with ``run_async=True``: poll ``jobs`` with ``job_id``."""

    job_id: str
    status: str
    status_url: str | None = None


class JobStatus(ApiModel):
    """A background job's status and, once finished, its result or error."""

    job_id: str
    status: str
    enqueued_at: datetime | None = None
    ended_at: datetime | None = None
    result: Any = None
    error: str | None = None


class Agent(ApiModel):
    """A saved prompt action: a /prompt body whose strings are templates (``variables`` they read)."""

    id: str
    name: str
    description: str = ""
    spec: dict[str, Any] = Field(default_factory=dict)
    variables: list[str] = Field(default_factory=list)
    version: int = 1
    created_at: datetime | None = None
    updated_at: datetime | None = None


class Usage(ApiModel):
    """This month's LLM usage by feature, spending and the org's budget."""

    by_feature: dict[str, Any] = Field(default_factory=dict)
    spent_usd: float = 0.0
    monthly_budget_usd: float | None = None
