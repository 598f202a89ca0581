"""Job ``process_event``: process one logged inbound event (the job id is the event id)."""

from __future__ import annotations

import logging
from typing import Any

from memrelay.connectors.base import InboundEvent as ConnectorEvent
from memrelay.engine.stores.outbox import emit
from memrelay.queue.jobs import workflow_run_enqueuer
from memrelay.worker.context import JobContext
from memrelay.workflows.triggers import on_event

log = logging.getLogger(__name__)


def process_event(ctx: JobContext, event_id: str) -> dict[str, Any]:
    """Claim the event, apply it, record the outcome. Failures are recorded and re-raised for RQ; a worker
    stopped mid-event (cold shutdown) gives the lease back so the event is re-driven at once."""
    services = ctx.services
    ev = services.events.claim(event_id)
    if ev is None:
        return {"eventId": event_id, "skipped": "already processed, dead, or leased"}
    try:
        src = services.sources.lookup(ev.source_id)
        event = ConnectorEvent.model_validate(ev.payload)
        result = services.pipeline.handle(ev.org_id, src, event)
    except Exception as exc:
        status = services.events.fail(event_id, f"{exc.__class__.__name__}: {exc}")
        if status == "dead":
            with services.db.session() as s:
                emit(s, ev.org_id, "event.failed", {"eventId": event_id, "error": str(exc)[:500]})
        log.warning("event %s failed (%s): %s", event_id, status, exc)
        raise
    except BaseException:
        services.events.release([event_id])
        raise
    services.events.complete(event_id, result)
    with services.db.session() as s:
        emit(s, ev.org_id, "event.processed", {"eventId": event_id, "eventType": ev.event_type, "result": result})
    try:  # a workflow problem must not fail an event that has already taken effect
        result["workflowRuns"] = on_event(services, ev.org_id, src.connector, ev.event_type, result.get("recordId"),
                                          event.record, enqueue=workflow_run_enqueuer(ctx.redis))
    except Exception:
        log.exception("workflow triggers failed for event %s", event_id)
    return {"eventId": event_id, **result}
