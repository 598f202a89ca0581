"""The webhook accept path (issue 16): a 202 means the event is committed and its job is in the queue;
concurrent deliveries of a process share enqueue round trips; with Redis down a delivery is still accepted
(durable in SQL, ``received``) and the sweeper's re-drive finds it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rq.job import Job

from memrelay.composition import Services
from memrelay.engine.core.settings import Settings
from memrelay.supervise.embedded import EmbeddedRedis
from tests.conftest import make_api


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    r = EmbeddedRedis(tmp_path / "own-redis" / "redis.sock").start()
    yield r
    r.stop()


def test_concurrent_deliveries_are_each_committed_and_enqueued_before_their_202(
    app: Any, engine: Services
) -> None:
    api = make_api(app, engine)
    src = api.post("/api/v1/sources", json={"connector": "form"}).json["data"]
    st = app.extensions["memrelay"]
    accepted: list[str] = []
    lock = threading.Lock()

    def deliver(t: int) -> None:
        client = app.test_client()
        for i in range(6):
            r = client.post(
                src["webhookPath"],
                data={"email": f"p{t}-{i}@accept.example"},
                environ_base={"REMOTE_ADDR": f"203.0.113.{t}"},
            )
            assert r.status_code == 202, r.get_json()
            (event_id,) = r.get_json()["eventIds"]
            # at the moment of the 202: durable in SQL, and its job queued (job id = event id)
            assert engine.events.get(api.org_id, event_id).status in ("received", "processing", "processed")
            assert Job.exists(event_id, connection=st.redis)
            with lock:
                accepted.append(event_id)

    threads = [threading.Thread(target=deliver, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(accepted)) == 48
    enqueuer = st.extras["enqueue_events"]
    assert 1 <= enqueuer.batches <= 48  # one Redis round trip per batch of deliveries waiting together


def test_with_redis_down_a_delivery_is_still_accepted_and_stays_received(
    settings: Settings, engine: Services, own_redis: EmbeddedRedis
) -> None:
    from memrelay.gateway.app import create_app

    app = create_app(settings.model_copy(update={"redis_url": own_redis.url}), services=engine)
    api = make_api(app, engine)
    src = api.post("/api/v1/sources", json={"connector": "form"}).json["data"]
    own_redis.stop()
    r = app.test_client().post(src["webhookPath"], data={"email": "down@accept.example"})
    assert r.status_code == 202, r.get_json()  # the limiter and the enqueue fail open; the commit does not
    (event_id,) = r.get_json()["eventIds"]
    assert engine.events.get(api.org_id, event_id).status == "received"  # the sweeper re-drives it
