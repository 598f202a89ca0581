"""Workflows API: list definitions, enable them per org, start a manual run, read runs and signals."""

from __future__ import annotations

from typing import Any

import redis
from flask import Blueprint, request
from pydantic import BaseModel, Field

from memrelay.engine.core.errors import BadRequest, QueueUnavailable
from memrelay.engine.stores.tenancy import KeyInfo
from memrelay.gateway.api import endpoint
from memrelay.gateway.schemas import workflows as sch
from memrelay.gateway.state import state
from memrelay.queue.connection import require_queue
from memrelay.queue.jobs import enqueue
from memrelay.workflows import store
from memrelay.workflows.loader import registry
from memrelay.workflows.models import WorkflowDef
from memrelay.workflows.steps import find_signals
from memrelay.workflows.triggers import start_manual

bp = Blueprint("workflows", __name__, url_prefix="/api/v1")


class RunRequest(BaseModel):
    input: dict[str, Any] = Field(default_factory=dict, description="Becomes `input` and `trigger.payload`.")


def describe(wf: WorkflowDef, enabled: bool) -> dict[str, Any]:
    return {"id": wf.id, "name": wf.name, "description": wf.description, "enabled": enabled,
            "trigger": wf.trigger.model_dump(mode="json"), "foreach": wf.foreach,
            "steps": [{"id": s.id, "type": s.type, "name": s.title} for s in wf.steps]}


def _int_arg(name: str, default: int, lo: int, hi: int) -> int:
    raw = request.args.get(name, str(default))
    if not raw.isdigit() or not lo <= int(raw) <= hi:
        raise BadRequest(f"'{name}' must be an integer from {lo} to {hi}")
    return int(raw)


@endpoint(bp, "/workflows", methods=("GET",), scope="read", response=sch.WorkflowList)
def list_workflows(auth: KeyInfo) -> dict[str, Any]:
    """Workflow definitions, with whether their event/schedule triggers are enabled for this org."""
    enabled = store.enabled_workflows(state().services.db, auth.org_id)
    return {"workflows": [describe(wf, wf.id in enabled) for wf in registry(state().settings.data_dir).all()]}


@endpoint(bp, "/workflows/<workflow_id>", methods=("GET",), scope="read", response=sch.Workflow)
def get_workflow(auth: KeyInfo, workflow_id: str) -> dict[str, Any]:
    """One workflow definition."""
    wf = registry(state().settings.data_dir).get(workflow_id)
    return describe(wf, wf.id in store.enabled_workflows(state().services.db, auth.org_id))


def _set_enabled(auth: KeyInfo, workflow_id: str, enabled: bool) -> dict[str, Any]:
    wf = registry(state().settings.data_dir).get(workflow_id)
    store.set_enabled(state().services.db, auth.org_id, wf.id, enabled)
    return describe(wf, enabled)


@endpoint(bp, "/workflows/<workflow_id>/enable", scope="admin", response=sch.Workflow)
def enable_workflow(auth: KeyInfo, workflow_id: str) -> dict[str, Any]:
    """Let this workflow's event or schedule trigger start runs for this org."""
    return _set_enabled(auth, workflow_id, True)


@endpoint(bp, "/workflows/<workflow_id>/disable", scope="admin", response=sch.Workflow)
def disable_workflow(auth: KeyInfo, workflow_id: str) -> dict[str, Any]:
    """Stop this workflow's event or schedule trigger for this org."""
    return _set_enabled(auth, workflow_id, False)


@endpoint(bp, "/workflows/<workflow_id>/run", scope="write", body=RunRequest, response=sch.RunQueued, status=202)
def run_workflow(auth: KeyInfo, body: RunRequest, workflow_id: str) -> tuple[dict[str, Any], int]:
    """Start a run by hand (queued; poll /workflow-runs/<runId>)."""
    conn, db = state().redis, state().services.db
    require_queue(conn)  # refuse (503) before the run exists

    def enqueue_or_fail(run_id: str) -> None:
        """Redis went away between the check and the enqueue: the run is recorded failed, never left queued."""
        try:
            enqueue(conn, "run_workflow", run_id, job_id=run_id)
        except redis.RedisError as exc:
            store.set_run_status(db, run_id, "failed", error={"code": "queue_unavailable", "message": str(exc)})
            raise QueueUnavailable(f"the job queue (Redis) is unavailable: {exc.__class__.__name__}") from exc

    run_id = start_manual(state().services, auth.org_id, workflow_id, body.input, enqueue=enqueue_or_fail)
    return {"runId": run_id, "status": "queued", "statusUrl": f"/api/v1/workflow-runs/{run_id}"}, 202


@endpoint(bp, "/workflows/<workflow_id>/runs", methods=("GET",), scope="read", response=sch.WorkflowRuns,
          query=sch.RunsQuery)
def list_runs(auth: KeyInfo, workflow_id: str) -> dict[str, Any]:
    """Recent runs of a workflow, newest first, with per-step status, output, error and log."""
    wf = registry(state().settings.data_dir).get(workflow_id)
    limit = _int_arg("limit", 20, 1, 200)
    return {"workflowId": wf.id, "runs": store.list_runs(state().services.db, auth.org_id, wf.id, limit=limit)}


@endpoint(bp, "/workflow-runs/<run_id>", methods=("GET",), scope="read", response=sch.WorkflowRun)
def get_run(auth: KeyInfo, run_id: str) -> dict[str, Any]:
    """One run with its steps."""
    return store.get_run(state().services.db, auth.org_id, run_id)


@endpoint(bp, "/signals", methods=("GET",), scope="read", response=sch.Signals, query=sch.SignalsQuery)
def signals(auth: KeyInfo) -> dict[str, Any]:
    """Records with memories tagged ``tag`` (default ``deferred``) in the last ``sinceHours`` hours."""
    items = find_signals(state().services.db, auth.org_id, tag=request.args.get("tag", "deferred"),
                         since_hours=_int_arg("sinceHours", 24, 1, 24 * 90),
                         entity_type=request.args.get("type", "contact"), limit=_int_arg("limit", 100, 1, 1000))
    return {"items": items, "count": len(items)}
