"""Outbox helpers for tests that dispatch."""

from __future__ import annotations

from sqlalchemy import select, update

from memrelay.engine.core.util import utcnow
from memrelay.engine.stores.db.database import Database
from memrelay.engine.stores.db.models import OutboxEvent
from memrelay.engine.stores.db.models_outbound import WebhookSubscription


def skip_unsubscribed_backlog(db: Database) -> int:
    """Mark dispatched, in one statement, the undispatched outbox rows of every org with no active subscription —
    what the dispatcher does with them (they fan out to nothing), minus its ticks; the number of rows marked.

    A test process's PostgreSQL schema keeps every earlier test's outbox rows (hundreds of thousands after the bulk
    tests); a test that dispatches the whole backlog tick by tick outlasted the test timeout in CI."""
    with db.session() as s:
        done = s.execute(update(OutboxEvent).where(
            OutboxEvent.dispatched_at.is_(None),
            OutboxEvent.org_id.not_in(select(WebhookSubscription.org_id).where(WebhookSubscription.active.is_(True))))
            .values(dispatched_at=utcnow()), execution_options={"synchronize_session": False})
        return int(done.rowcount or 0)
