"""Generation API: prompt runs, saved agents, background job status and LLM usage."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from rq.exceptions import NoSuchJobError
from rq.job import Job

from memrelay.engine.core.errors import NotFound
from memrelay.engine.guidance.agents import AgentCreate, AgentPatch, AgentRun
from memrelay.engine.guidance.generation import PromptRequest
from memrelay.engine.stores.metered_llm import ensure_configured
from memrelay.engine.stores.tenancy import KeyInfo
from memrelay.gateway.api import endpoint, request_payload
from memrelay.gateway.schemas import common
from memrelay.gateway.schemas import generation as sch
from memrelay.gateway.state import state
from memrelay.queue.jobs import enqueue

bp = Blueprint("generation", __name__, url_prefix="/api/v1")


def _queued(job: Job) -> tuple[dict[str, Any], int]:
    return {"jobId": job.id, "status": "queued", "statusUrl": f"/api/v1/jobs/{job.id}"}, 202


@endpoint(bp, "/prompt", scope="write", body=PromptRequest, response=sch.GenerationResult, also={202: sch.Queued},
          errors=(402, 404, 502))
def prompt(auth: KeyInfo, body: PromptRequest) -> Any:
    """Multi-step generation with named outputs, channel rules, guardrails, evaluation and memorize-back."""
    if body.run_async:
        ensure_configured(state().settings, "generation")
        payload = request_payload()
        payload.pop("async", None)
        return _queued(enqueue(state().redis, "run_prompt", auth.org_id, payload, meta={"org_id": auth.org_id}))
    return state().services.generation.generate(auth.org_id, body)


@endpoint(bp, "/agents", methods=("GET",), scope="read", response=sch.AgentList)
def list_agents(auth: KeyInfo) -> dict[str, Any]:
    """Saved prompt actions."""
    return {"agents": state().services.agents.list(auth.org_id)}


@endpoint(bp, "/agents", methods=("POST",), scope="write", body=AgentCreate, response=sch.Agent, status=201,
          errors=(409,))
def create_agent(auth: KeyInfo, body: AgentCreate) -> tuple[dict[str, Any], int]:
    """Save a prompt action (a /prompt body that may use ``{{input}}`` and other variables)."""
    return state().services.agents.create(auth.org_id, body), 201


@endpoint(bp, "/agents/<agent_id>", methods=("GET",), scope="read", response=sch.Agent)
def get_agent(auth: KeyInfo, agent_id: str) -> dict[str, Any]:
    """One agent."""
    return state().services.agents.get(auth.org_id, agent_id)


@endpoint(bp, "/agents/<agent_id>", methods=("PUT",), scope="write", body=AgentCreate, response=sch.Agent,
          errors=(409,))
def replace_agent(auth: KeyInfo, body: AgentCreate, agent_id: str) -> dict[str, Any]:
    """Replace an agent."""
    return state().services.agents.update(auth.org_id, agent_id, body)


@endpoint(bp, "/agents/<agent_id>", methods=("PATCH",), scope="write", body=AgentPatch, response=sch.Agent,
          errors=(409,))
def patch_agent(auth: KeyInfo, body: AgentPatch, agent_id: str) -> dict[str, Any]:
    """Change some fields of an agent."""
    return state().services.agents.update(auth.org_id, agent_id, body)


@endpoint(bp, "/agents/<agent_id>", methods=("DELETE",), scope="write", response=common.Deleted)
def delete_agent(auth: KeyInfo, agent_id: str) -> dict[str, Any]:
    """Delete an agent."""
    return state().services.agents.delete(auth.org_id, agent_id)


@endpoint(bp, "/agents/<agent_id>/run", scope="write", body=AgentRun, response=sch.AgentRunResult,
          also={202: sch.Queued}, errors=(402, 502))
def run_agent(auth: KeyInfo, body: AgentRun, agent_id: str) -> Any:
    """Run an agent with its variables filled in (``async: true`` queues it)."""
    agents = state().services.agents
    if body.run_async:
        agents.prompt_request(auth.org_id, agent_id, body)  # 404/422 now, not inside the job
        ensure_configured(state().settings, "agents")
        payload = body.model_dump(exclude={"run_async"})
        return _queued(enqueue(state().redis, "run_agent", auth.org_id, agent_id, payload,
                                meta={"org_id": auth.org_id}))
    return agents.run(auth.org_id, agent_id, body)


@endpoint(bp, "/jobs/<job_id>", methods=("GET",), scope="read", response=sch.JobStatus)
def job_status(auth: KeyInfo, job_id: str) -> dict[str, Any]:
    """Status of a background generation/extraction job, with its result or error."""
    try:
        job = Job.fetch(job_id, connection=state().redis)
    except (NoSuchJobError, ValueError):  # rq refuses ids outside [A-Za-z0-9_-] with ValueError
        raise NotFound(f"job {job_id} not found") from None
    if job.meta.get("org_id") != auth.org_id:
        raise NotFound(f"job {job_id} not found")
    status = job.get_status()
    out: dict[str, Any] = {"jobId": job.id, "status": str(status.value if status else "unknown"),
                           "enqueuedAt": job.enqueued_at.isoformat() if job.enqueued_at else None,
                           "endedAt": job.ended_at.isoformat() if job.ended_at else None}
    latest = job.latest_result()
    if latest is not None and latest.return_value is not None:
        out["result"] = latest.return_value
    if latest is not None and latest.exc_string:
        out["error"] = latest.exc_string.strip().splitlines()[-1]
    return out


@endpoint(bp, "/usage", methods=("GET",), scope="read", response=sch.Usage)
def usage(auth: KeyInfo) -> dict[str, Any]:
    """This month's LLM usage by feature, spending and the org's budget."""
    from memrelay.engine.stores.usage_store import org_budget_limit

    services = state().services
    store = services.llm.store
    return {"byFeature": store.summary(auth.org_id), "spentUsd": round(store.spent_usd(auth.org_id), 8),
            "monthlyBudgetUsd": org_budget_limit(services.db, auth.org_id, services.settings.llm_monthly_budget_usd)}
