"""Job ``process_event``: process one logged inbound event (the job id is the event id)."""

from __future__ import annotations

import logging
from typing import Any

from memrelay.connectors.base import InboundEvent as ConnectorEvent
from memrelay.engine.stores.event_log import LeaseLost
from memrelay.queue.jobs import workflow_run_enqueuer
from memrelay.worker.context import JobContext
from memrelay.workflows.store import enabled_workflows_in
from memrelay.workflows.triggers import on_event, webhook_workflows

log = logging.getLogger(__name__)


def process_event(ctx: JobContext, event_id: str) -> dict[str, Any]:
    """Claim the event (a lease fenced by its attempt number), fetch what the connector needs, then apply it
    and complete it in ONE transaction that also writes its ``event.processed`` notification: the effect,
    the status and the notification commit together or not at all. A lease lost meanwhile to a newer attempt
    rolls the effect back. Failures are recorded (fenced) and re-raised for RQ; a worker stopped mid-event
    (cold shutdown) gives its lease back so the event is re-driven at once."""
    services = ctx.services
    ev = services.events.claim(event_id)
    if ev is None:
        return {"eventId": event_id, "skipped": "already processed, dead, or leased"}
    try:
        src = services.sources.lookup(ev.source_id)
        event = services.pipeline.fetch(src, ConnectorEvent.model_validate(ev.payload))
        could_start = _workflows_could_match(ctx, src.connector, ev.event_type)
        with services.db.unit_of_work() as s:
            result = services.pipeline.apply(ev.org_id, src, event)
            if not services.events.complete(s, ev, result):
                raise LeaseLost(f"event {event_id}: attempt {ev.attempts} lost its lease")
            # the org's enabled workflows, read in this transaction (none of its own), and only if one could match
            enabled = enabled_workflows_in(s, ev.org_id) if could_start else set()
    except LeaseLost as exc:
        log.warning("%s; its writes were rolled back", exc.message)
        return {"eventId": event_id, "skipped": "lease lost to a newer attempt"}
    except Exception as exc:
        status = services.events.fail(event_id, f"{exc.__class__.__name__}: {exc}", attempt=ev.attempts)
        log.warning("event %s failed (%s): %s", event_id, status, exc)
        raise
    except BaseException:
        services.events.give_back(event_id, ev.attempts)
        raise
    try:  # a workflow problem must not fail an event that has already taken effect
        result["workflowRuns"] = on_event(services, ev.org_id, src.connector, ev.event_type, result.get("recordId"),
                                          event.record, enqueue=workflow_run_enqueuer(ctx.redis), enabled=enabled)
    except Exception:
        log.exception("workflow triggers failed for event %s", event_id)
    return {"eventId": event_id, **result}


def _workflows_could_match(ctx: JobContext, connector: str, event_type: str) -> bool:
    """Whether any defined workflow's webhook trigger matches (no SQL). A definition that does not load must
    not fail the event: :func:`on_event` reports it once the event has taken effect."""
    try:
        return bool(webhook_workflows(ctx.services, connector, event_type))
    except Exception:
        return False
