"""Starting runs: from processed inbound events (:func:`on_event`), schedules (:func:`tick`) and by hand
(:func:`start_manual`). Runs are written to SQL first, then enqueued on RQ (job id = run id)."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from memrelay.engine.core.util import utcnow
from memrelay.workflows import store
from memrelay.workflows.cron import due_slot
from memrelay.workflows.loader import registry
from memrelay.workflows.models import ScheduleTrigger, WebhookTrigger, WorkflowDef

if TYPE_CHECKING:
    from memrelay.composition import Services

log = logging.getLogger(__name__)
Enqueue = Callable[[str], Any]


def default_enqueue(engine: Services) -> Enqueue:
    """Enqueue on the configured Redis; on an outage the run stays 'queued' in SQL and is logged."""
    import redis

    from memrelay.queue.connection import connect
    from memrelay.worker.jobs.workflow import enqueue_run

    conn = connect(engine.settings)

    def enqueue(run_id: str) -> None:
        try:
            enqueue_run(conn, run_id)
        except redis.RedisError as exc:
            log.warning("could not enqueue workflow run %s: %s", run_id, exc)

    return enqueue


def _start(engine: Services, org_id: str, wf: WorkflowDef, trigger_type: str, trigger: dict[str, Any],
           dedup_key: str | None, enqueue: Enqueue | None) -> str | None:
    run_id = store.create_run(engine.db, org_id, wf, trigger_type, trigger, dedup_key)
    if run_id is not None:
        (enqueue or default_enqueue(engine))(run_id)
    return run_id


def on_event(engine: Services, org_id: str, source_connector: str, event_type: str, record_id: str | None,
             payload: dict[str, Any], *, enqueue: Enqueue | None = None) -> list[str]:
    """Start the org's enabled workflows whose webhook trigger matches this processed event."""
    enabled = store.enabled_workflows(engine.db, org_id)
    if not enabled:
        return []
    digest = hashlib.sha256(json.dumps([source_connector, event_type, record_id, payload], sort_keys=True,
                                       default=str).encode()).hexdigest()[:32]
    started: list[str] = []
    for wf in registry(engine.settings.data_dir).all():
        trig = wf.trigger
        if wf.id not in enabled or not isinstance(trig, WebhookTrigger):
            continue
        if source_connector not in trig.source or not fnmatch.fnmatchcase(event_type, trig.event):
            continue
        data = {"source": source_connector, "event_type": event_type, "record_id": record_id, "payload": payload}
        run_id = _start(engine, org_id, wf, "webhook", data, f"event:{digest}", enqueue)
        if run_id:
            started.append(run_id)
    return started


def tick(engine: Services, now: datetime | None = None, *, enqueue: Enqueue | None = None) -> list[str]:
    """Start each enabled schedule-triggered workflow whose slot is due (idempotent per slot)."""
    now = now or utcnow()
    started: list[str] = []
    for wf in registry(engine.settings.data_dir).all():
        trig = wf.trigger
        if not isinstance(trig, ScheduleTrigger):
            continue
        for org_id in store.orgs_enabling(engine.db, wf.id):
            slot = due_slot(trig.cron, trig.every, store.last_schedule_slot(engine.db, org_id, wf.id), now)
            if slot is None:
                continue
            run_id = _start(engine, org_id, wf, "schedule", {"slot": slot.isoformat()},
                            f"schedule:{slot.isoformat()}", enqueue)
            if run_id:
                started.append(run_id)
    return started


def start_manual(engine: Services, org_id: str, workflow_id: str, inputs: dict[str, Any] | None = None, *,
                 enqueue: Enqueue | None = None) -> str:
    """Start any workflow by hand (enabled or not); ``inputs`` become ``input`` / ``trigger.payload``."""
    wf = registry(engine.settings.data_dir).get(workflow_id)
    data = {"input": dict(inputs or {}), "payload": dict(inputs or {})}
    run_id = _start(engine, org_id, wf, "manual", data, None, enqueue)
    assert run_id is not None
    return run_id
