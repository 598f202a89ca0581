"""Endpoints that need the job queue answer 503 ``queue_unavailable`` while Redis is down and write nothing
(no batch run, no workflow run stays ``queued`` with no job); once Redis is back they work again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from memrelay.composition import Services
from memrelay.engine.core.settings import Settings
from memrelay.engine.stores.db.models import BatchRun
from memrelay.engine.stores.db.models_workflows import WorkflowRun
from memrelay.supervise.embedded import EmbeddedRedis
from tests.conftest import make_api

BATCH = {"source": "csv", "mapping": {"entityType": "contact", "email": "Email",
                                      "properties": {"job_title": {"sourceField": "Title"}}},
         "rows": [{"Email": "ann@example.com", "Title": "CTO"}]}


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    r = EmbeddedRedis(tmp_path / "own-redis" / "redis.sock").start()
    yield r
    r.stop()


def _count(engine: Services, model: type) -> int:
    with engine.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_queue_endpoints_refuse_with_503_and_write_nothing_while_redis_is_down(
        settings: Settings, engine: Services, own_redis: EmbeddedRedis, backend: str) -> None:
    from memrelay.gateway.app import create_app

    app = create_app(settings.model_copy(update={"redis_url": own_redis.url}), services=engine)
    api = make_api(app, engine)
    runs_before, wf_before = _count(engine, BatchRun), _count(engine, WorkflowRun)
    own_redis.stop()

    r = api.post("/api/v1/batch-memorize", json=BATCH)
    assert r.status_code == 503 and r.get_json()["error"]["code"] == "queue_unavailable", r.get_json()
    r = api.post("/api/v1/workflows/daily-deferred-digest/run", json={})
    assert r.status_code == 503 and r.get_json()["error"]["code"] == "queue_unavailable", r.get_json()
    r = api.get("/api/v1/jobs/some-job")
    assert r.status_code == 503 and r.get_json()["error"]["code"] == "queue_unavailable", r.get_json()
    assert (_count(engine, BatchRun), _count(engine, WorkflowRun)) == (runs_before, wf_before)
    ready = app.test_client().get("/readyz", headers={"Authorization": f"Bearer {api.key}"})
    assert ready.status_code == 503 and not ready.get_json()["checks"]["redis"]["ok"]
    # reads that need only SQL keep working
    assert api.get("/api/v1/me").status_code == 200

    own_redis.start()
    r = api.post("/api/v1/batch-memorize", json=BATCH)
    assert r.status_code == 202, r.get_json()
    assert api.post("/api/v1/workflows/daily-deferred-digest/run", json={}).status_code == 202
    assert (_count(engine, BatchRun), _count(engine, WorkflowRun)) == (runs_before + 1, wf_before + 1)
