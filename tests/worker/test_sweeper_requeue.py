"""The sweeper re-enqueues work that SQL says is queued but Redis no longer holds (Redis was down when it was
started, or came back empty): workflow runs here; batch chunks in test_batch_recovery, events in
test_exactly_once. Real SQL (SQLite and PostgreSQL) and the test's private Redis."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import redis
from rq.job import Job
from sqlalchemy import update

from memrelay.composition import Services
from memrelay.engine.core.settings import Settings
from memrelay.engine.core.util import utcnow
from memrelay.engine.stores.db.models_workflows import WorkflowRun
from memrelay.queue.connection import queue
from memrelay.worker.sweeper import requeue_workflow_runs
from memrelay.workflows import store
from memrelay.workflows.loader import registry


def test_a_queued_workflow_run_missing_from_redis_is_enqueued_again_once(
        api: Any, engine: Services, settings: Settings, backend: str) -> None:
    conn = redis.Redis.from_url(str(settings.redis_url))
    wf = registry(settings.data_dir).get("form-lead-slack")
    lost = store.create_run(engine.db, api.org_id, wf, "manual", {"input": {}}, None)
    fresh = store.create_run(engine.db, api.org_id, wf, "manual", {"input": {}}, None)
    assert lost and fresh
    with engine.db.session() as s:  # started a minute ago, while Redis was down: no job was ever queued
        s.execute(update(WorkflowRun).where(WorkflowRun.id == lost).values(created_at=utcnow() - timedelta(minutes=1)))

    assert requeue_workflow_runs(engine, conn) >= 1
    assert lost in queue(conn, "default").job_ids and fresh not in queue(conn, "default").job_ids
    assert Job.fetch(lost, connection=conn).args == (lost,)
    requeue_workflow_runs(engine, conn)  # its job is waiting now: not enqueued twice
    assert queue(conn, "default").job_ids.count(lost) == 1
    for run_id in store.stale_queued_runs(engine.db, older_than_s=30):  # leave the shared Redis as it was
        queue(conn, "default").remove(run_id)
