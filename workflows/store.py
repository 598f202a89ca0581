"""All SQL of workflows: runs, step runs, per-org enablement and the deferred-signals query."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from memrelay.engine.core.errors import NotFound
from memrelay.engine.core.util import iso, new_id, utcnow
from memrelay.engine.stores.db.database import Database
from memrelay.engine.stores.db.models import Memory, Org
from memrelay.engine.stores.db.models_workflows import WorkflowRun, WorkflowState, WorkflowStepRun
from memrelay.workflows.models import WorkflowDef

MAX_LOG_LINES = 200
FINAL = ("succeeded", "failed", "skipped")


def create_run(db: Database, org_id: str, wf: WorkflowDef, trigger_type: str, trigger: dict[str, Any],
               dedup_key: str | None = None) -> str | None:
    """Insert a queued run with a snapshot of its definition; None when ``dedup_key`` was already used."""
    run = WorkflowRun(id=new_id("wfr"), org_id=org_id, workflow_id=wf.id, trigger_type=trigger_type,
                      trigger=trigger, dedup_key=dedup_key, definition=wf.model_dump(mode="json", by_alias=True),
                      status="queued", created_at=utcnow())
    try:
        with db.session() as s:
            s.add(run)
    except IntegrityError:
        return None
    return run.id


def stale_queued_runs(db: Database, *, older_than_s: float, limit: int = 500) -> list[str]:
    """Ids of runs still ``queued`` ``older_than_s`` after they were created (oldest first)."""
    cutoff = utcnow() - timedelta(seconds=older_than_s)
    with db.read() as s:
        return list(s.scalars(select(WorkflowRun.id).where(WorkflowRun.status == "queued",
                                                           WorkflowRun.created_at < cutoff)
                              .order_by(WorkflowRun.created_at).limit(limit)))


def load_run(db: Database, run_id: str) -> WorkflowRun:
    with db.read() as s:
        run = s.get(WorkflowRun, run_id)
        if run is None:
            raise NotFound(f"workflow run {run_id} not found")
        s.expunge(run)
        return run


def set_run_status(db: Database, run_id: str, status: str, error: dict[str, Any] | None = None) -> None:
    with db.session() as s:
        run = s.get(WorkflowRun, run_id)
        if run is None:
            raise NotFound(f"workflow run {run_id} not found")
        run.status = status
        now = utcnow()
        if status == "running" and run.started_at is None:
            run.started_at = now
        if status in FINAL:
            run.finished_at, run.error = now, error


def step_rows(db: Database, run_id: str) -> dict[tuple[str, int], WorkflowStepRun]:
    with db.read() as s:
        rows = list(s.scalars(select(WorkflowStepRun).where(WorkflowStepRun.run_id == run_id)))
        for r in rows:
            s.expunge(r)
    return {(r.step_id, r.item_index): r for r in rows}


def save_step(db: Database, run_id: str, step_id: str, step_type: str, item: int, position: int, *,
              status: str, attempts: int = 0, output: Any = None, error: dict[str, Any] | None = None,
              log: list[str] | None = None) -> None:
    """Create or update one step run's row."""
    now = utcnow()
    with db.session() as s:
        row = s.scalar(select(WorkflowStepRun).where(WorkflowStepRun.run_id == run_id,
                                                     WorkflowStepRun.step_id == step_id,
                                                     WorkflowStepRun.item_index == item))
        if row is None:
            row = WorkflowStepRun(run_id=run_id, step_id=step_id, step_type=step_type, item_index=item,
                                  position=position, log=[])
            s.add(row)
        row.status, row.attempts, row.error = status, attempts, error
        if output is not None:
            row.output = output if isinstance(output, dict) else {"value": output}
        if log:
            row.log = (list(row.log or []) + log)[-MAX_LOG_LINES:]
        if status == "running" and row.started_at is None:
            row.started_at = now
        if status in FINAL:
            row.finished_at = now


def run_dict(run: WorkflowRun, steps: list[WorkflowStepRun] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"runId": run.id, "workflowId": run.workflow_id, "status": run.status,
                           "trigger": {"type": run.trigger_type, **run.trigger}, "error": run.error,
                           "createdAt": iso(run.created_at), "startedAt": iso(run.started_at),
                           "finishedAt": iso(run.finished_at)}
    if steps is not None:
        out["steps"] = [{"stepId": r.step_id, "type": r.step_type, "item": r.item_index, "status": r.status,
                         "attempts": r.attempts, "output": r.output, "error": r.error, "log": r.log,
                         "startedAt": iso(r.started_at), "finishedAt": iso(r.finished_at)}
                        for r in sorted(steps, key=lambda r: (r.item_index, r.position))]
    return out


def get_run(db: Database, org_id: str, run_id: str) -> dict[str, Any]:
    with db.read() as s:
        run = s.get(WorkflowRun, run_id)
        if run is None or run.org_id != org_id:
            raise NotFound(f"workflow run {run_id} not found")
        steps = list(s.scalars(select(WorkflowStepRun).where(WorkflowStepRun.run_id == run_id)))
        return run_dict(run, steps)


def list_runs(db: Database, org_id: str, workflow_id: str, *, limit: int = 20,
              with_steps: bool = True) -> list[dict[str, Any]]:
    with db.read() as s:
        runs = list(s.scalars(select(WorkflowRun).where(WorkflowRun.org_id == org_id,
                                                        WorkflowRun.workflow_id == workflow_id)
                              .order_by(WorkflowRun.created_at.desc(), WorkflowRun.id).limit(limit)))
        steps: dict[str, list[WorkflowStepRun]] = {r.id: [] for r in runs}
        if with_steps and runs:
            for row in s.scalars(select(WorkflowStepRun).where(WorkflowStepRun.run_id.in_(list(steps)))):
                steps[row.run_id].append(row)
        return [run_dict(r, steps[r.id] if with_steps else None) for r in runs]


# --- enablement -----------------------------------------------------------------------------------
def set_enabled(db: Database, org_id: str, workflow_id: str, enabled: bool) -> None:
    with db.session() as s:
        row = s.get(WorkflowState, (org_id, workflow_id))
        if row is None:
            s.add(WorkflowState(org_id=org_id, workflow_id=workflow_id, enabled=enabled, updated_at=utcnow()))
        else:
            row.enabled, row.updated_at = enabled, utcnow()


def enabled_workflows(db: Database, org_id: str) -> set[str]:
    with db.read() as s:
        return enabled_workflows_in(s, org_id)


def enabled_workflows_in(s: Session, org_id: str) -> set[str]:
    """The org's enabled workflow ids, read in the caller's transaction."""
    return set(s.scalars(select(WorkflowState.workflow_id).where(WorkflowState.org_id == org_id,
                                                                 WorkflowState.enabled.is_(True))))


def orgs_enabling(db: Database, workflow_id: str) -> list[str]:
    with db.read() as s:
        return list(s.scalars(select(WorkflowState.org_id).join(Org, Org.id == WorkflowState.org_id)
                              .where(WorkflowState.workflow_id == workflow_id, WorkflowState.enabled.is_(True))))


def last_schedule_slot(db: Database, org_id: str, workflow_id: str) -> datetime | None:
    with db.read() as s:
        trig = s.scalar(select(WorkflowRun.trigger).where(
            WorkflowRun.org_id == org_id, WorkflowRun.workflow_id == workflow_id,
            WorkflowRun.trigger_type == "schedule").order_by(WorkflowRun.created_at.desc()).limit(1))
    return datetime.fromisoformat(trig["slot"]) if trig and trig.get("slot") else None


# --- signals --------------------------------------------------------------------------------------
def records_with_tag(db: Database, org_id: str, tag: str, since: datetime, entity_type: str,
                     limit: int) -> list[dict[str, Any]]:
    """Records of ``entity_type`` with live memories tagged ``tag`` since ``since`` (newest first)."""
    found: dict[str, dict[str, Any]] = {}
    with db.read() as s:
        rows = s.execute(select(Memory.record_id, Memory.text, Memory.tags).where(
            Memory.org_id == org_id, Memory.entity_type == entity_type, Memory.ts >= since,
            Memory.superseded_by.is_(None)).order_by(Memory.ts.desc()))
        for record_id, text, tags in rows:
            if tag not in (tags or []):
                continue
            entry = found.setdefault(record_id, {"record_id": record_id, "signals": []})
            entry["signals"].append(text)
            if len(found) > limit:
                found.pop(record_id)
                break
    return list(found.values())
