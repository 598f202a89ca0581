"""RQ workers forked from `memrelay up`'s warm parent (issue 16: memory shared copy-on-write).

The fork machinery (:mod:`memrelay.supervise.forked`) behaves as the supervisor expects of a process; the
parent refuses to fork while a thread runs; what it preloads opens nothing and leaves no thread; and on
PostgreSQL + an external Redis, `memrelay up` with forked RQ and web workers serves requests
and processes jobs — also after a worker is killed and forked again."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from memrelay.engine.core.settings import Settings
from memrelay.supervise.forked import ForkedProcess, fork_child
from memrelay.supervise.supervisor import GATEWAY_PROCESS_NAME, WORKER_PROCESS_NAME
from memrelay.warmup import NotForkSafe, fork_safe_or_raise
from tests.support.processes import (
    alive,
    clean_env,
    comm,
    descendants,
    free_port,
    ppid,
    probe,
    readyz,
    start_memrelay,
    stop_up,
    wait_for,
)


def _log(path: Path) -> str:
    """The log without gunicorn's access lines."""
    return "\n".join(line for line in path.read_text().splitlines() if '" 200 ' not in line)[-4000:]


def test_a_forked_child_is_handled_like_a_process(tmp_path: Path) -> None:
    out = tmp_path / "out"

    def child() -> int:
        out.write_text(f"{os.getppid()} {os.environ['FORK_TEST']}")
        return 3

    done = fork_child("fork-test", child, env={"FORK_TEST": "from-env"})
    assert done.wait(30) == 3 and done.poll() == 3
    assert out.read_text() == f"{os.getpid()} from-env"
    assert "FORK_TEST" not in os.environ  # the environment was the child's alone

    sleeper = fork_child("fork-sleeper", lambda: time.sleep(60) or 0)
    assert wait_for(lambda: comm(sleeper.pid) == "fork-sleeper", 10)
    assert sleeper.poll() is None
    with pytest.raises(subprocess.TimeoutExpired):
        sleeper.wait(0.2)
    sleeper.terminate()
    assert sleeper.wait(10) == -signal.SIGTERM

    failing = fork_child("fork-fail", lambda: 1 // 0)
    assert failing.wait(30) == 1  # an exception is exit 1 (and a traceback), never a return into our code


def test_a_parent_with_a_running_thread_does_not_fork() -> None:
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, name="busy-helper")
    thread.start()
    try:
        with pytest.raises(NotForkSafe, match="busy-helper"):
            fork_safe_or_raise("fork a worker")
    finally:
        stop.set()
        thread.join()


PRELOAD_PROBE = """
import gc, json, os, sys, threading
from memrelay.engine.core.settings import Settings
from memrelay.warmup import preload_for_fork
steps = preload_for_fork(Settings(data_dir=sys.argv[1], redis_url="redis://127.0.0.1:9/0"))
from memrelay.engine.adapters.embedding import factory
fds = []
for fd in os.listdir("/proc/self/fd"):
    try:
        fds.append(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:  # the descriptor listdir itself used
        pass
print(json.dumps({"steps": sorted(steps), "threads": threading.active_count(), "frozen": gc.get_freeze_count(),
                  "embedders": sorted(factory._local_cache), "litellm": "litellm" in sys.modules,
                  "sockets": [f for f in fds if f.startswith("socket:")],
                  "db_files": [f for f in fds if f.endswith(".db")]}))
"""


def test_preloading_loads_what_workers_share_and_opens_nothing(tmp_path: Path) -> None:
    got = probe(PRELOAD_PROBE, str(tmp_path / "data"))
    assert got["steps"] == ["embedder", "modules", "tokenizer"]
    assert got["embedders"] == ["wordllama:256"] and got["frozen"] > 10_000
    assert got["threads"] == 1 and not got["litellm"]  # nothing a child could inherit half-done
    assert got["sockets"] == [] and got["db_files"] == []  # no connection to SQL or Redis crosses the fork


@pytest.mark.own_database
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
@pytest.mark.parametrize("redis_backend", ["external"], indirect=True)
def test_up_with_forked_workers_serves_and_processes_jobs_on_postgres(
    backend: str, redis_backend: str, settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    env = clean_env(
        MEMRELAY_PORT=str(port),
        MEMRELAY_WORKERS="2",
        MEMRELAY_WEB_WORKERS="2",
        MEMRELAY_DATABASE_URL=settings.sql_url,
        MEMRELAY_REDIS_URL=str(settings.redis_url),
        MEMRELAY_LOG_LEVEL="WARNING",
    )
    log_path = tmp_path / "up.log"
    proc = start_memrelay("up", tmp_path, env, log_path)
    family: set[int] = set()
    try:
        assert wait_for(lambda: readyz(port) == 200, 180), log_path.read_text()[-3000:]
        workers = [p for p in descendants(proc.pid) if comm(p) == WORKER_PROCESS_NAME]
        assert len(workers) == 2 and all(ppid(p) == proc.pid for p in workers)  # forked by `up` itself
        web = [p for p in descendants(proc.pid) if comm(p) == GATEWAY_PROCESS_NAME]
        assert len(web) == 2 and all(ppid(p) == proc.pid for p in web)  # so are the web workers
        key = (tmp_path / ".memrelay" / "admin_key").read_text().strip()
        base = f"http://127.0.0.1:{port}"
        auth = {"Authorization": f"Bearer {key}"}
        assert requests.get(f"{base}/api/v1/me", headers=auth, timeout=30).status_code == 200
        src = requests.post(
            f"{base}/api/v1/sources", json={"connector": "form"}, headers=auth, timeout=30
        ).json()
        path = src["data"]["webhookPath"]

        def delivered_and_processed(email: str) -> None:
            r = requests.post(f"{base}{path}", data={"email": email, "name": "Forked Worker"}, timeout=30)
            assert r.status_code == 202, r.text
            event_id = r.json()["eventIds"][0]

            def processed() -> bool:
                ev = requests.get(f"{base}/api/v1/events/{event_id}", headers=auth, timeout=30).json()["data"]
                assert ev["status"] not in ("failed", "dead"), ev
                return bool(ev["status"] == "processed")

            assert wait_for(processed, 120), f"{event_id} not processed:\n{_log(log_path)}"

        delivered_and_processed("first@forked.example")
        for victim in workers:  # each worker forked again from the warm parent
            os.kill(victim, signal.SIGKILL)
            assert wait_for(lambda v=victim: not alive(v), 10)  # type: ignore[misc]
        assert wait_for(
            lambda: (
                len(
                    [
                        p
                        for p in descendants(proc.pid)
                        if comm(p) == WORKER_PROCESS_NAME and alive(p) and p not in workers
                    ]
                )
                == 2
            ),
            60,
        ), _log(log_path)
        delivered_and_processed("second@forked.example")  # by a re-forked worker: the first ones are gone
        assert wait_for(lambda: readyz(port) == 200, 90)
        family = descendants(proc.pid)
    finally:
        family = stop_up(proc, family)
    assert wait_for(lambda: not [p for p in family if alive(p)], 15)
    assert proc.returncode == 0, log_path.read_text()[-3000:]
    assert "Traceback" not in log_path.read_text(), log_path.read_text()[-3000:]


def test_forked_process_reports_a_process_reaped_elsewhere() -> None:
    child = fork_child("fork-reaped", lambda: 0)
    os.waitpid(child.pid, 0)
    assert ForkedProcess(child.pid, "x").poll() == -1
