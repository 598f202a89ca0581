"""Answers of the generation API (prompt, agents, jobs, usage) and of its Personize v1.1 views."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from memrelay.engine.guidance.agents import AgentRun


class GenerationResult(BaseModel):
    """A prompt run: the named ``outputs`` (each also as a top-level key, hence open), the steps, channel
    and guardrail reports, evaluation and what was memorized back."""

    model_config = ConfigDict(extra="allow")

    runId: str
    text: Any = None
    outputs: dict[str, Any]
    metadata: dict[str, Any]
    steps: list[dict[str, Any]]
    channel: dict[str, Any] | None = None
    guardrails: dict[str, Any]
    review_required: bool
    reviewReasons: list[str]
    evaluation: dict[str, Any] | None = None
    context: dict[str, Any]
    memorized: dict[str, Any] | None = None


class AgentRunResult(GenerationResult):
    agentId: str


class Queued(BaseModel):
    """Accepted for background processing (``async: true``); poll ``statusUrl``."""

    jobId: str
    status: str
    statusUrl: str


class Agent(BaseModel):
    id: str
    name: str
    description: str | None = None
    spec: dict[str, Any] = Field(description="The saved /prompt body.")
    variables: list[str]
    version: int
    createdAt: str | None = None
    updatedAt: str | None = None


class AgentList(BaseModel):
    agents: list[Agent]


class JobStatus(BaseModel):
    jobId: str
    status: str
    enqueuedAt: str | None = None
    endedAt: str | None = None
    result: Any = None
    error: str | None = None


class FeatureUsage(BaseModel):
    calls: int
    totalTokens: int
    costUsd: float


class Usage(BaseModel):
    byFeature: dict[str, FeatureUsage] = Field(description="This month's LLM usage per feature.")
    spentUsd: float
    monthlyBudgetUsd: float | None = None


# --- Personize v1.1 -----------------------------------------------------------------------------------
class AgentRunInputs(AgentRun):
    """``POST /api/v1.1/agents/{id}/run``: Personize's ``inputs`` (merged over ``variables``); top-level
    ``email``, ``websiteUrl`` and ``recordId`` become variables too."""

    inputs: dict[str, Any] | None = None
    email: str | None = None
    websiteUrl: str | None = None
    recordId: str | None = None


class AgentPayload(BaseModel):
    name: str | None = None
    description: str | None = None
    instructions: list[Any]
    actions: list[Any]
    aiConfig: dict[str, Any]


class DocumentedAgent(Agent):
    type: str
    payload: AgentPayload
    expectedInputs: list[str]


class DocumentedAgentList(BaseModel):
    agents: list[Agent]
    actions: list[DocumentedAgent]
    count: int
    nextToken: str | None = None
