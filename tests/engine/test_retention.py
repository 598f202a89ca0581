"""Retention removes old operational history and keeps memory, the event log and recent rows."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from memrelay.engine.core.util import utcnow
from memrelay.engine.stores.db.models import OutboxEvent, PropertyHistory
from memrelay.engine.stores.db.models_llm import GuidelineDelivery
from memrelay.engine.stores.identity import Identifiers
from memrelay.engine.stores.properties import Provenance
from memrelay.engine.stores.retention import purge_history


@pytest.mark.usefixtures("backend")
def test_purge_history_removes_only_expired_rows(engine):
    org = engine.tenancy.create_org("retention").id
    for title in ("A", "B", "C"):
        engine.records.upsert(org, Identifiers(email="r@x.io"), {"job_title": title}, Provenance())
    now = utcnow()
    with engine.db.session() as s:
        events = s.scalars(select(OutboxEvent).where(OutboxEvent.org_id == org).order_by(OutboxEvent.id)).all()
        assert len(events) >= 3
        events[0].dispatched_at = now - timedelta(days=40)  # old and delivered: goes
        events[1].dispatched_at = now - timedelta(days=2)  # recent: stays
        # events[2] never dispatched: stays whatever its age
        events[2].created_at = now - timedelta(days=90)
        s.add_all([GuidelineDelivery(org_id=org, session_id="s1", section_hash="h1", guideline_id="g",
                                     tokens=10, delivered_at=now - timedelta(days=3)),
                   GuidelineDelivery(org_id=org, session_id="s1", section_hash="h2", guideline_id="g",
                                     tokens=10, delivered_at=now)])
        kept_ids = {events[1].id, events[2].id}
    out = purge_history(engine.db)
    assert out["outbox"] == 1 and out["guidelineSessions"] == 1
    with engine.db.read() as s:
        left = set(s.scalars(select(OutboxEvent.id).where(OutboxEvent.org_id == org)))
        assert kept_ids <= left and events[0].id not in left
        assert s.scalar(select(func.count()).select_from(PropertyHistory).where(PropertyHistory.org_id == org)) == 3
        assert [d.section_hash for d in s.scalars(select(GuidelineDelivery).where(GuidelineDelivery.org_id == org))] == ["h2"]
