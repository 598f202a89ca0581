"""Job ``run_workflow``: execute one workflow run (job id = run id)."""

from __future__ import annotations

from typing import Any

from memrelay.worker.context import JobContext


def run_workflow(ctx: JobContext, run_id: str) -> dict[str, Any]:
    """Execute a workflow run; a failing step fails the job after its state is recorded."""
    return ctx.services.workflow_runner.execute(run_id)
