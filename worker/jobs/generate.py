"""Jobs of the ``generate`` queue: generation, agent runs and AI extraction for webhooks and workflows.

Each takes ids and plain JSON, makes one engine call and lets failures raise (RQ records them).
"""

from __future__ import annotations

from typing import Any

import redis
from rq.job import Job

from memrelay.queue.connection import queue
from memrelay.worker.context import get_engine

RESULT_TTL_S = 24 * 3600
JOB_TIMEOUT_S = 600


def run_prompt(org_id: str, payload: dict[str, Any], run_id: str | None = None) -> dict[str, Any]:
    """POST /prompt as a job."""
    from memrelay.engine.guidance.generation import PromptRequest, get_generation

    return get_generation(get_engine()).generate(org_id, PromptRequest.model_validate(payload), run_id=run_id)


def run_agent(org_id: str, agent_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    """POST /agents/<id>/run as a job."""
    from memrelay.engine.guidance.agents import AgentRun, get_agents

    return get_agents(get_engine()).run(org_id, agent_id, AgentRun.model_validate(payload))


def extract_memories(org_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Enhanced (LLM) memorize of one piece of content, e.g. a call transcript arriving by webhook."""
    from memrelay.engine.memory.memories import MemorizeRequest

    return get_engine().memories.memorize(org_id, MemorizeRequest.model_validate({**payload, "enhanced": True}))


def enqueue(conn: redis.Redis, org_id: str, func: str, *args: Any) -> Job:
    """Put ``memrelay.worker.jobs.generate.<func>(org_id, *args)`` on the generate queue, owned by ``org_id``."""
    return queue(conn, "generate").enqueue(f"memrelay.worker.jobs.generate.{func}", org_id, *args,
                                           job_timeout=JOB_TIMEOUT_S, result_ttl=RESULT_TTL_S,
                                           failure_ttl=RESULT_TTL_S, meta={"org_id": org_id})
