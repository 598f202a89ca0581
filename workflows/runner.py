"""Execute one workflow run: steps in dependency order, per-step status, retries and a log in SQL.

A run resumes where it stopped: steps that already succeeded keep their stored output. A step is retried
under the ``workflow_steps`` policy (:mod:`memrelay.engine.core.backoff`, attempts = its ``retries`` + 1);
one that fails after its retries fails the run and the error is re-raised (the RQ job's failed registry sees it).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import requests

from memrelay.engine.core.backoff import WORKFLOW_STEPS
from memrelay.engine.core.errors import LLMNotConfigured, MemrelayError, ServiceUnavailable, UpstreamError
from memrelay.engine.stores.db.database import Database
from memrelay.workflows import store
from memrelay.workflows.delivery import DeliveryFailed
from memrelay.workflows.expressions import evaluate
from memrelay.workflows.models import ConditionStep, Step, WorkflowDef
from memrelay.workflows.steps import Steps

log = logging.getLogger(__name__)
RETRY_BASE_S = WORKFLOW_STEPS.base_s
RETRY_MAX_S = WORKFLOW_STEPS.max_s


def retryable(exc: BaseException) -> bool:
    if isinstance(exc, DeliveryFailed):
        return exc.retryable
    if isinstance(exc, LLMNotConfigured):
        return False
    return isinstance(exc, UpstreamError | ServiceUnavailable | requests.RequestException | ConnectionError
                      | TimeoutError)


def error_dict(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, MemrelayError):
        return {"code": exc.code, "message": exc.message, "details": exc.details}
    return {"code": "internal_error", "message": f"{exc.__class__.__name__}: {exc}"[:1000], "details": {}}


class Runner:
    """Runs workflow runs stored in ``db`` with ``steps``; ``retry_base_s`` scales the backoff between attempts."""

    def __init__(self, db: Database, steps: Steps, *, retry_base_s: float = RETRY_BASE_S):
        self.db, self.steps, self.retry_base_s = db, steps, retry_base_s

    def execute(self, run_id: str) -> dict[str, Any]:
        run = store.load_run(self.db, run_id)
        if run.status in ("succeeded", "skipped"):
            return store.get_run(self.db, run.org_id, run_id)
        wf = WorkflowDef.model_validate(run.definition)
        store.set_run_status(self.db, run_id, "running")
        done = store.step_rows(self.db, run_id)
        ctx: dict[str, Any] = {"trigger": run.trigger, "input": run.trigger.get("input", {}),
                               "run": {"id": run_id, "workflowId": wf.id}, "steps": {}}
        order = wf.order()
        try:
            if wf.foreach:
                first, rest = order[0], order[1:]
                outcome = self._steps(run.org_id, run_id, wf, [first], ctx, 0, done, {})
                items = evaluate(wf.foreach.strip().removeprefix("{{").removesuffix("}}"), ctx)
                for i, item in enumerate(items if isinstance(items, list) else []):
                    item_ctx = {**ctx, "item": item, "steps": dict(ctx["steps"])}
                    self._steps(run.org_id, run_id, wf, rest, item_ctx, i, done, dict(outcome))
            else:
                self._steps(run.org_id, run_id, wf, order, ctx, 0, done, {})
        except Exception as exc:
            store.set_run_status(self.db, run_id, "failed", error_dict(exc))
            raise
        store.set_run_status(self.db, run_id, "succeeded")
        return store.get_run(self.db, run.org_id, run_id)

    def _steps(self, org_id: str, run_id: str, wf: WorkflowDef, steps: list[Step], ctx: dict[str, Any],
               item: int, done: dict[tuple[str, int], Any], outcome: dict[str, str]) -> dict[str, str]:
        """Run ``steps`` for one item; ``outcome`` maps step id → passed | blocked (condition false/skipped)."""
        positions = {s.id: i for i, s in enumerate(wf.steps)}
        for step in steps:
            pos = positions[step.id]
            if any(outcome.get(d) == "blocked" for d in wf.needs(step)):
                outcome[step.id] = "blocked"
                store.save_step(self.db, run_id, step.id, step.type, item, pos, status="skipped",
                                log=["skipped: an earlier condition was false"])
                continue
            prev = done.get((step.id, item))
            if prev is not None and prev.status == "succeeded":
                output = prev.output or {}
            else:
                output = self._attempts(org_id, run_id, step, ctx, item, pos, prev.attempts if prev else 0)
            ctx["steps"][step.id] = output
            blocked = isinstance(step, ConditionStep) and not output.get("passed")
            outcome[step.id] = "blocked" if blocked else "passed"
        return outcome

    def _attempts(self, org_id: str, run_id: str, step: Step, ctx: dict[str, Any], item: int, pos: int,
                  attempts: int) -> dict[str, Any]:
        lines: list[str] = []
        first = attempts
        policy = WORKFLOW_STEPS.but(max_attempts=step.retries + 1, base_s=self.retry_base_s)
        while True:
            attempts += 1
            store.save_step(self.db, run_id, step.id, step.type, item, pos, status="running",
                            attempts=attempts, log=[f"attempt {attempts} started"])
            lines = []
            try:
                output = self.steps.run(org_id, step, ctx, lines.append)
            except Exception as exc:
                err = error_dict(exc)
                delay = policy.next_delay(attempts - first) if retryable(exc) else None
                again = delay is not None
                lines.append(f"attempt {attempts} failed: {err['code']}: {err['message']}")
                store.save_step(self.db, run_id, step.id, step.type, item, pos,
                                status="running" if again else "failed", attempts=attempts, error=err, log=lines)
                if delay is None:
                    log.warning("workflow run %s step %s failed: %s", run_id, step.id, err["message"])
                    raise
                time.sleep(delay)
                continue
            store.save_step(self.db, run_id, step.id, step.type, item, pos, status="succeeded",
                            attempts=attempts, output=output, log=lines)
            return output
