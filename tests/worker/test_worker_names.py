"""A worker name belongs to one live worker: a restart under the name of a worker killed with ``kill -9`` starts
at once (its leftover registration is cleared; test_batch_recovery restarts one mid-batch), while a second
worker under the name of a live one is refused and the live one keeps it. Real ``memrelay worker`` processes
and Redis; waits are bounded polls."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from memrelay.engine.core.settings import Settings
from tests.worker.test_worker_runtime import Workers


@pytest.fixture
def workers(settings: Settings, tmp_path: Path) -> Iterator[Workers]:
    w = Workers(settings, tmp_path)
    yield w
    w.stop_all()


def test_a_dead_workers_name_is_reused_at_once_and_a_live_workers_name_is_refused(
        workers: Workers, settings: Settings) -> None:
    conn = redis.Redis.from_url(str(settings.redis_url))
    first = workers.start("w-named")
    first.kill()  # SIGKILL: its registration stays in Redis with a fresh heartbeat
    first.wait(30)
    assert conn.hget("rq:worker:w-named", "pid") == str(first.pid).encode()

    second = workers.start("w-named")  # waits until *this* process registered under the name
    with pytest.raises(AssertionError):  # a third one under a live worker's name exits instead
        workers.start("w-named")
    assert workers.procs["w-named"].returncode not in (None, 0)
    assert "There exists an active worker named 'w-named' already" in workers.log("w-named")
    assert second.poll() is None
    assert conn.hget("rq:worker:w-named", "pid") == str(second.pid).encode()
    second.kill()
    second.wait(30)
