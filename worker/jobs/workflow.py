"""Jobs of workflows: execute one run (job id = run id), and the schedule tick."""

from __future__ import annotations

from typing import Any

import redis

from memrelay.queue.connection import queue
from memrelay.worker.context import get_engine

RUN_TIMEOUT_S = 1800
RESULT_TTL_S = 7 * 86400


def run_workflow(run_id: str) -> dict[str, Any]:
    """Execute a workflow run; a failing step fails the job after its state is recorded."""
    from memrelay.workflows.runner import Runner

    return Runner(get_engine()).execute(run_id)


def schedule_tick() -> list[str]:
    """Start every schedule-triggered run that is due (call every minute, e.g. from the sweeper)."""
    from memrelay.workflows.triggers import tick

    return tick(get_engine())


def enqueue_run(conn: redis.Redis, run_id: str) -> str:
    queue(conn, "default").enqueue_call(run_workflow, args=(run_id,), job_id=run_id, timeout=RUN_TIMEOUT_S,
                                        result_ttl=RESULT_TTL_S, failure_ttl=RESULT_TTL_S,
                                        description=f"workflow run {run_id}")
    return run_id
