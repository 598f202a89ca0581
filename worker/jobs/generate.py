"""Jobs of the ``generate`` queue: ``run_prompt`` and ``run_agent`` (``async: true`` API calls)."""

from __future__ import annotations

from typing import Any

from memrelay.engine.guidance.agents import AgentRun
from memrelay.engine.guidance.generation import PromptRequest
from memrelay.worker.context import JobContext


def run_prompt(ctx: JobContext, org_id: str, payload: dict[str, Any], run_id: str | None = None) -> dict[str, Any]:
    """POST /prompt as a job."""
    return ctx.services.generation.generate(org_id, PromptRequest.model_validate(payload), run_id=run_id)


def run_agent(ctx: JobContext, org_id: str, agent_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    """POST /agents/<id>/run as a job."""
    return ctx.services.agents.run(org_id, agent_id, AgentRun.model_validate(payload))
