"""Starting runs: from processed inbound events (:func:`on_event`), schedules (:func:`tick`) and by hand
(:func:`start_manual`). Runs are written to SQL first, then handed to the caller's ``enqueue`` (job id = run id)."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
from datetime import datetime
from typing import Any, Protocol

from memrelay.engine.core.settings import Settings
from memrelay.engine.core.util import utcnow
from memrelay.engine.stores.db.database import Database
from memrelay.workflows import store
from memrelay.workflows.cron import due_slot
from memrelay.workflows.loader import registry
from memrelay.workflows.models import ScheduleTrigger, WebhookTrigger, WorkflowDef

log = logging.getLogger(__name__)


class TriggerServices(Protocol):
    """What starting runs needs of the process's services: the SQL store and the settings (workflow dir)."""

    db: Database
    settings: Settings


class RunEnqueuer(Protocol):
    """Queues a run already written to SQL (job id = run id). The edge that starts runs passes one in —
    ``memrelay.queue.jobs.workflow_run_enqueuer(conn)`` — so this package never imports the queue."""

    def __call__(self, run_id: str, /) -> object: ...


def _start(engine: TriggerServices, org_id: str, wf: WorkflowDef, trigger_type: str, trigger: dict[str, Any],
           dedup_key: str | None, enqueue: RunEnqueuer) -> str | None:
    run_id = store.create_run(engine.db, org_id, wf, trigger_type, trigger, dedup_key)
    if run_id is not None:
        enqueue(run_id)
    return run_id


def webhook_workflows(engine: TriggerServices, source_connector: str, event_type: str) -> list[WorkflowDef]:
    """The defined workflows (enabled or not) whose webhook trigger matches an event; no SQL. Usually none
    does, and then nothing about the event's org needs to be read."""
    out: list[WorkflowDef] = []
    for wf in registry(engine.settings.data_dir).all():
        trig = wf.trigger
        if isinstance(trig, WebhookTrigger) and source_connector in trig.source \
                and fnmatch.fnmatchcase(event_type, trig.event):
            out.append(wf)
    return out


def on_event(engine: TriggerServices, org_id: str, source_connector: str, event_type: str, record_id: str | None,
             payload: dict[str, Any], *, enqueue: RunEnqueuer, enabled: set[str] | None = None) -> list[str]:
    """Start the org's enabled workflows whose webhook trigger matches this processed event.

    ``enabled``: the org's enabled workflow ids when the caller already read them (in its own transaction);
    otherwise they are read here — and only when some defined workflow matches the event at all."""
    matching = webhook_workflows(engine, source_connector, event_type)
    if not matching:
        return []
    if enabled is None:
        enabled = store.enabled_workflows(engine.db, org_id)
    if not enabled:
        return []
    digest = hashlib.sha256(json.dumps([source_connector, event_type, record_id, payload], sort_keys=True,
                                       default=str).encode()).hexdigest()[:32]
    started: list[str] = []
    for wf in matching:
        if wf.id not in enabled:
            continue
        data = {"source": source_connector, "event_type": event_type, "record_id": record_id, "payload": payload}
        run_id = _start(engine, org_id, wf, "webhook", data, f"event:{digest}", enqueue)
        if run_id:
            started.append(run_id)
    return started


def tick(engine: TriggerServices, now: datetime | None = None, *, enqueue: RunEnqueuer) -> list[str]:
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


def start_manual(engine: TriggerServices, org_id: str, workflow_id: str, inputs: dict[str, Any] | None = None, *,
                 enqueue: RunEnqueuer) -> str:
    """Start any workflow by hand (enabled or not); ``inputs`` become ``input`` / ``trigger.payload``."""
    wf = registry(engine.settings.data_dir).get(workflow_id)
    data = {"input": dict(inputs or {}), "payload": dict(inputs or {})}
    run_id = _start(engine, org_id, wf, "manual", data, None, enqueue)
    assert run_id is not None
    return run_id
