"""RQ job: process one logged inbound event (the job id is the event id)."""

from __future__ import annotations

import logging
from typing import Any

from memrelay.connectors.base import InboundEvent as ConnectorEvent
from memrelay.engine.ingest.pipeline import handle_event
from memrelay.engine.stores.outbox import emit
from memrelay.worker.context import get_engine

log = logging.getLogger(__name__)


def process_event(event_id: str) -> dict[str, Any]:
    """Claim the event, apply it, record the outcome. Failures are recorded and re-raised for RQ."""
    eng = get_engine()
    ev = eng.events.claim(event_id)
    if ev is None:
        return {"eventId": event_id, "skipped": "already processed, dead, or leased"}
    try:
        src = eng.sources.lookup(ev.source_id)
        event = ConnectorEvent.model_validate(ev.payload)
        result = handle_event(eng, ev.org_id, src, event)
    except Exception as exc:
        status = eng.events.fail(event_id, f"{exc.__class__.__name__}: {exc}")
        if status == "dead":
            with eng.db.session() as s:
                emit(s, ev.org_id, "event.failed", {"eventId": event_id, "error": str(exc)[:500]})
        log.warning("event %s failed (%s): %s", event_id, status, exc)
        raise
    eng.events.complete(event_id, result)
    with eng.db.session() as s:
        emit(s, ev.org_id, "event.processed", {"eventId": event_id, "eventType": ev.event_type, "result": result})
    try:  # a workflow problem must not fail an event that has already taken effect
        from memrelay.workflows.triggers import on_event

        result["workflowRuns"] = on_event(eng, ev.org_id, src.connector, ev.event_type, result.get("recordId"),
                                          event.record)
    except Exception:
        log.exception("workflow triggers failed for event %s", event_id)
    return {"eventId": event_id, **result}
