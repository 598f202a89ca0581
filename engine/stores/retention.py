"""Retention: old operational history is removed so tables do not grow without bound.

Kept: records, properties and their history, memories, the inbound event log (replay and dedup), audit
entries. Soft-deleted memories are purged once their recovery window (``purge_after``) has passed. Removed after ``days``: dispatched outbox events (with their webhook deliveries and attempts,
which cascade) and finished workflow runs (with their step runs). Guideline-session delivery marks are
removed after ``session_days`` (progressive delivery only looks back one day).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete

from memrelay.engine.core.util import utcnow
from memrelay.engine.stores.db.database import Database, rowcount
from memrelay.engine.stores.db.models import OutboxEvent
from memrelay.engine.stores.db.models_llm import GuidelineDelivery
from memrelay.engine.stores.db.models_workflows import WorkflowRun
from memrelay.engine.stores.memory_store import purge_deleted_memories

DEFAULT_DAYS = 30


def purge_history(db: Database, *, days: int = DEFAULT_DAYS, session_days: int = 1) -> dict[str, int]:
    """Delete expired operational rows; returns how many of each kind were removed."""
    now = utcnow()
    cutoff = now - timedelta(days=days)
    with db.session() as s:
        outbox = rowcount(s.execute(delete(OutboxEvent).where(OutboxEvent.dispatched_at.is_not(None),
                                                     OutboxEvent.dispatched_at < cutoff)))
        runs = rowcount(s.execute(delete(WorkflowRun).where(WorkflowRun.finished_at.is_not(None),
                                                   WorkflowRun.finished_at < cutoff)))
        sessions = rowcount(s.execute(delete(GuidelineDelivery).where(
            GuidelineDelivery.delivered_at < now - timedelta(days=session_days))))
        memories = purge_deleted_memories(s, now=now)
    return {"outbox": outbox, "workflowRuns": runs, "guidelineSessions": sessions, "deletedMemories": memories}
