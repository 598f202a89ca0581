"""Worker liveness is truthful in both directions: a worker re-registers itself when Redis comes back
empty (``/readyz`` clears "no live RQ worker" without a new worker), and a killed worker stops counting
after a few missed beats, long before its Redis key expires."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from rq import Worker

from memrelay.composition import Services
from memrelay.engine.core.settings import Settings
from memrelay.queue.workers import STALE_AFTER_S, live_workers
from memrelay.supervise.embedded import EmbeddedRedis
from tests.worker.test_worker_runtime import Workers, wait_for


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A Redis only this test uses (it is flushed and restarted)."""
    r = EmbeddedRedis(tmp_path / "own-redis" / "redis.sock").start()
    yield r
    r.stop()


def _workers_check(client: Any) -> dict[str, Any]:
    """The workers check of /readyz (its detail is shown to an admin key only)."""
    headers = {"Authorization": f"Bearer {client.admin_key}"}
    return client.get("/readyz", headers=headers).get_json()["checks"]["workers"]


def test_worker_reregisters_after_redis_comes_back_empty_and_a_dead_one_stops_counting(
        settings: Settings, engine: Services, tmp_path: Path, own_redis: EmbeddedRedis) -> None:
    from memrelay.gateway.app import create_app

    s = settings.model_copy(update={"redis_url": own_redis.url})
    client = create_app(s, services=engine).test_client()
    org = engine.tenancy.get_or_create_org(f"liveness-{tmp_path.name}")
    client.admin_key = engine.tenancy.create_key(org.id, scopes=["admin"])[0]  # type: ignore[attr-defined]
    conn = redis.Redis.from_url(own_redis.url)
    workers = Workers(s, tmp_path)
    try:
        proc = workers.start("live-1")
        wait_for(lambda: _workers_check(client)["ok"], timeout=30, what="/readyz to see the worker")

        for _ in range(20):  # Redis came back without its data
            conn.flushall()
            assert live_workers(conn) == []
            ok = _workers_check(client)["ok"]
            if not live_workers(conn):  # the worker did not re-register while /readyz was answering: it must fail
                assert not ok
                break
        else:
            pytest.fail("the worker re-registered during every /readyz call: its absence was never observable")
        wait_for(lambda: _workers_check(client)["ok"], timeout=3 * STALE_AFTER_S,
                 what="the worker to register itself again")
        assert live_workers(conn) == ["live-1"]

        # a real restart of the server, without its AOF
        own_redis.stop()
        for f in (own_redis.dir / "appendonlydir").glob("*"):
            f.unlink()
        own_redis.start()
        wait_for(lambda: _workers_check(client)["ok"], timeout=3 * STALE_AFTER_S,
                 what="the worker to register again after a Redis restart")
        assert proc.poll() is None, workers.log("live-1")

        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert [w.name for w in Worker.all(connection=conn)] == ["live-1"]  # its key has not expired yet
        wait_for(lambda: not _workers_check(client)["ok"], timeout=3 * STALE_AFTER_S,
                 what="/readyz to stop counting the killed worker")
        assert "no live RQ worker" in _workers_check(client)["error"]
    finally:
        workers.stop_all()
