"""`memrelay up` has one warm parent (issue 16: memory shared, not loaded twice): the web workers (gunicorn's
worker class, no gunicorn master) and the RQ workers are forked from the supervisor, which preloaded the modules,
the embedder's weights, the token encoding and what the services import. A killed web worker is forked again
while the other serves; one whose heartbeat stops is aborted and replaced; only web workers hold the listening
socket; a forked child shows its own command line; preloading opens nothing a child could inherit;
`memrelay serve` (gunicorn's own warm master) serves on PostgreSQL + Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from memrelay.composition import Services
from memrelay.engine.core.settings import Settings
from memrelay.supervise.forked import fork_child
from memrelay.supervise.gunicorn_warm import WORKER_TITLE
from memrelay.supervise.supervisor import GATEWAY_PROCESS_NAME, WORKER_PROCESS_NAME
from tests.support.processes import (
    alive,
    clean_env,
    cmdline,
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


def test_a_forked_child_shows_its_title_as_command_line(tmp_path: Path) -> None:
    own = cmdline(os.getpid())
    child = fork_child("title-test", lambda: time.sleep(30) or 0, title="gunicorn: master [title test]")
    try:
        assert wait_for(lambda: cmdline(child.pid).strip() == "gunicorn: master [title test]", 10), cmdline(
            child.pid
        )
        assert comm(child.pid) == "title-test"
        assert cmdline(os.getpid()) == own  # the parent's is untouched
    finally:
        child.terminate()
        child.wait(10)


PRELOAD_PROBE = """
import gc, json, os, sys, threading
from memrelay.engine.core.settings import Settings
from memrelay.supervise import warm_parent
settings = Settings(data_dir=sys.argv[1], redis_url="redis://127.0.0.1:9/0")
steps = warm_parent.preload_parent(settings)
again = warm_parent.preload_parent(settings)
fds = []
for fd in os.listdir("/proc/self/fd"):
    try:
        fds.append(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        pass
print(json.dumps({"steps": sorted(steps), "again": again, "threads": threading.active_count(),
                  "frozen": gc.get_freeze_count(), "litellm": "litellm" in sys.modules,
                  "services_imported": all(m in sys.modules for m in (
                      "memrelay.engine.ingest.backfill", "memrelay.engine.enrichment.service",
                      "memrelay.engine.memory.similar")),
                  "app_built": "memrelay.gateway.wsgi" in sys.modules,
                  "sockets": [f for f in fds if f.startswith("socket:")],
                  "db_files": [f for f in fds if ".db" in f]}))
"""


def test_the_warm_parent_imports_what_services_import_and_opens_nothing(tmp_path: Path) -> None:
    got = probe(PRELOAD_PROBE, str(tmp_path / "data"))
    assert got["steps"] == ["embedder", "modules", "services", "tokenizer"]
    assert got["again"] == {}  # a second call (a gunicorn master forked from a warm `up`) loads nothing again
    assert got["services_imported"] and not got["app_built"] and not got["litellm"]
    assert got["threads"] == 1 and got["frozen"] > 10_000
    assert got["sockets"] == [] and got["db_files"] == []  # no SQL, Redis or Milvus connection crosses a fork


def _web_workers(up: int) -> list[int]:
    return [p for p in descendants(up) if alive(p) and ppid(p) == up and comm(p) == GATEWAY_PROCESS_NAME]


def test_up_forks_web_workers_from_its_warm_parent_and_forks_one_again_when_killed(tmp_path: Path) -> None:
    port = free_port()
    env = clean_env(
        MEMRELAY_PORT=str(port), MEMRELAY_WORKERS="1", MEMRELAY_WEB_WORKERS="2", MEMRELAY_LOG_LEVEL="WARNING"
    )
    log_path = tmp_path / "up.log"
    proc = start_memrelay("up", tmp_path, env, log_path)
    family: set[int] = set()
    try:
        assert wait_for(lambda: readyz(port) == 200, 180), log_path.read_text()[-3000:]
        web = _web_workers(proc.pid)
        assert len(web) == 2  # gunicorn's worker class, forked by `up` itself: no gunicorn master in between
        assert all(cmdline(p).strip() == WORKER_TITLE for p in web)
        assert not [p for p in descendants(proc.pid) if "master" in cmdline(p)]
        rq = [p for p in descendants(proc.pid) if comm(p) == WORKER_PROCESS_NAME]
        assert len(rq) == 1 and ppid(rq[0]) == proc.pid  # the RQ worker shares the same parent
        assert not [fd for fd in os.listdir(f"/proc/{rq[0]}/fd") if _is_listener(rq[0], fd, port)]
        assert all(any(_is_listener(p, fd, port) for fd in os.listdir(f"/proc/{p}/fd")) for p in web)
        key = (tmp_path / ".memrelay" / "admin_key").read_text().strip()
        me = f"http://127.0.0.1:{port}/api/v1/me"
        assert requests.get(me, headers={"Authorization": f"Bearer {key}"}, timeout=30).status_code == 200

        victim, survivor = web
        os.kill(victim, signal.SIGKILL)
        # the other web worker keeps serving on the shared socket while the killed one is forked again
        assert requests.get(me, headers={"Authorization": f"Bearer {key}"}, timeout=30).status_code == 200
        assert wait_for(lambda: len(_web_workers(proc.pid)) == 2 and victim not in _web_workers(proc.pid), 60), \
            log_path.read_text()[-3000:]
        assert survivor in _web_workers(proc.pid)
        assert wait_for(lambda: readyz(port) == 200, 120), log_path.read_text()[-3000:]
        for _ in range(8):  # both serve (the kernel spreads the accepts over them)
            assert requests.get(me, headers={"Authorization": f"Bearer {key}"}, timeout=30).status_code == 200
        family = descendants(proc.pid)
    finally:
        family = stop_up(proc, family)
    assert wait_for(lambda: not [p for p in family if alive(p)], 15), [cmdline(p) for p in family if alive(p)]
    assert proc.returncode == 0, log_path.read_text()[-3000:]
    out = log_path.read_text()
    assert "restarting web-" in out and "Traceback" not in out, out[-3000:]


def _is_listener(pid: int, fd: str, port: int) -> bool:
    """Whether ``fd`` of ``pid`` is the socket listening on ``port`` (by inode, from ``/proc/net/tcp``)."""
    try:
        target = os.readlink(f"/proc/{pid}/fd/{fd}")
    except OSError:
        return False
    if not target.startswith("socket:["):
        return False
    inode = target[len("socket:["):-1]
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        cols = line.split()
        if cols[9] == inode and cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
            return True
    return False


def _up_with_one_web_worker(tmp_path: Path, port: int, **env: str) -> tuple[subprocess.Popen[bytes], Path]:
    """`memrelay up` with one web worker and one RQ worker on ``port`` (``env``: more variables); its log's path."""
    log_path = tmp_path / "up.log"
    env = clean_env(MEMRELAY_PORT=str(port), MEMRELAY_WORKERS="1", MEMRELAY_WEB_WORKERS="1",
                    MEMRELAY_LOG_LEVEL="WARNING", **env)
    return start_memrelay("up", tmp_path, env, log_path), log_path


def test_up_aborts_and_replaces_a_web_worker_whose_heartbeat_stops(tmp_path: Path) -> None:
    """A web worker that stops notifying its heartbeat (here: stopped with SIGSTOP) for gunicorn's ``timeout`` is
    aborted by `up` and forked again, as gunicorn's arbiter would (the timeout is set as gunicorn reads it)."""
    port = free_port()
    proc, log_path = _up_with_one_web_worker(tmp_path, port, GUNICORN_CMD_ARGS="--timeout 3")
    family: set[int] = set()
    try:
        assert wait_for(lambda: readyz(port) == 200, 180), log_path.read_text()[-3000:]
        [hung] = _web_workers(proc.pid)
        os.kill(hung, signal.SIGSTOP)
        assert wait_for(lambda: not alive(hung), 60), log_path.read_text()[-3000:]
        assert wait_for(lambda: readyz(port) == 200, 120), log_path.read_text()[-3000:]
        [fresh] = _web_workers(proc.pid)
        assert fresh != hung
        family = descendants(proc.pid)
    finally:
        family = stop_up(proc, family)
    assert proc.returncode == 0, log_path.read_text()[-3000:]
    out = log_path.read_text()
    assert "web-0 sent no heartbeat for 3 s: aborted" in out and "web-0 sent no heartbeat for 3 s: killed" in out, \
        out[-3000:]
    assert "restarting web-0" in out


def _healthy(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    except requests.RequestException:
        return False


@pytest.mark.own_database
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
@pytest.mark.parametrize("redis_backend", ["external"], indirect=True)
def test_serve_and_worker_of_their_own_are_ready_on_postgres(
    backend: str, redis_backend: str, settings: Settings, tmp_path: Path
) -> None:
    """`memrelay serve` (gunicorn's master is the warm parent) next to a `memrelay worker` process."""
    services = Services(settings)
    services.migrate()
    org = services.tenancy.get_or_create_org("serve-org")
    key, _ = services.tenancy.create_key(org.id, scopes=["read", "write"], name="serve")
    services.close()
    port = free_port()
    env = clean_env(
        MEMRELAY_PORT=str(port),
        MEMRELAY_WEB_WORKERS="2",
        MEMRELAY_DATA_DIR=str(tmp_path / "data"),
        MEMRELAY_DATABASE_URL=settings.sql_url,
        MEMRELAY_REDIS_URL=str(settings.redis_url),
        MEMRELAY_LOG_LEVEL="WARNING",
    )
    procs: list[subprocess.Popen[bytes]] = []
    logs = {name: tmp_path / f"{name}.log" for name in ("serve", "worker")}

    def start(command: str) -> None:
        procs.append(start_memrelay(command, tmp_path, env, logs[command]))

    family: set[int] = set()
    try:
        start("serve")
        assert wait_for(lambda: _healthy(port), 180), logs["serve"].read_text()[-3000:]
        start("worker")  # uses the Milvus Lite server `serve` started (its port file in the data dir)
        assert wait_for(lambda: readyz(port) == 200, 180), [log.read_text()[-3000:] for log in logs.values()]
        r = requests.get(
            f"http://127.0.0.1:{port}/api/v1/me", headers={"Authorization": f"Bearer {key}"}, timeout=30
        )
        assert r.status_code == 200, r.text
        family = {p for proc in procs for p in descendants(proc.pid)}
    finally:
        for proc in reversed(procs):
            proc.send_signal(signal.SIGTERM)
            proc.wait(90)
    assert wait_for(lambda: not [p for p in family if alive(p)], 15)
    # (no check for tracebacks in the logs: both web workers warm the same new Milvus Lite collection at once and
    # one may log Milvus Lite's "File exists" for it — an optional warm-up step, /readyz stays green)
    assert all(proc.returncode == 0 for proc in procs), [proc.returncode for proc in procs]


def test_up_migrates_in_a_child_and_stops_when_that_fails(tmp_path: Path) -> None:
    """The migration runs in a short-lived child (its modules never enter the warm parent); its failure stops
    `up` with the child's error and a non-zero exit, before anything else is started."""
    env = clean_env(
        MEMRELAY_PORT=str(free_port()),
        MEMRELAY_DATABASE_URL=f"postgresql://postgres@127.0.0.1:{free_port()}/nothing",
        MEMRELAY_LOG_LEVEL="WARNING",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "memrelay.cli.main", "up"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "preparing the database failed" in proc.stderr and "Traceback" in proc.stderr, proc.stderr[-3000:]
    assert not (tmp_path / ".memrelay" / "admin_key").exists()


def test_up_whose_port_is_taken_stops_with_the_reason_and_leaves_nothing(tmp_path: Path) -> None:
    """The supervisor opens the gateway's socket itself (gunicorn's retries: five, a second apart): a taken port
    stops `up` with exit 1 and gunicorn's "Connection in use" before any web worker is forked."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc, log_path = _up_with_one_web_worker(tmp_path, port)
        try:
            assert proc.wait(120) == 1, log_path.read_text()[-3000:]
        finally:
            if proc.poll() is None:
                proc.kill()
    out = log_path.read_text()
    assert f"Connection in use: ('127.0.0.1', {port})" in out, out[-3000:]
    assert not (tmp_path / ".memrelay" / "redis" / "redis.sock").exists()  # the embedded Redis was stopped too


def test_up_forks_a_new_web_worker_at_once_when_one_recycles_itself(tmp_path: Path) -> None:
    """A web worker that exits cleanly after gunicorn's ``max_requests`` is not a failure: `up` forks its successor
    at once, without backoff and without ever giving up, and requests keep being answered (they wait in the
    listening socket's backlog meanwhile)."""
    port = free_port()
    proc, log_path = _up_with_one_web_worker(tmp_path, port, GUNICORN_CMD_ARGS="--max-requests 2")
    family: set[int] = set()
    try:
        assert wait_for(lambda: readyz(port) == 200, 180), log_path.read_text()[-3000:]
        seen: set[int] = set()
        for _ in range(20):  # ten recycles, more than the backoff's eight failures before it gives up
            seen.update(_web_workers(proc.pid))
            assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=60).status_code == 200
        assert len(seen) >= 3 and proc.poll() is None, log_path.read_text()[-3000:]
        family = descendants(proc.pid)
    finally:
        family = stop_up(proc, family)
    assert proc.returncode == 0, log_path.read_text()[-3000:]
    out = log_path.read_text()
    assert "web-0 recycled itself; starting a new one" in out and "restarting in" not in out, out[-3000:]


UP_WITHOUT_FORKING = """
import sys
from memrelay.engine.core.settings import load_settings
from memrelay.supervise.supervisor import Supervisor
sys.exit(Supervisor(load_settings(), fork_workers=False).run())
"""


def test_up_that_cannot_fork_starts_gunicorn_with_its_master_and_workers_of_their_own(tmp_path: Path) -> None:
    """Where the supervisor cannot fork safely (its preload left a thread), the gateway is gunicorn as a process
    of its own, whose master forks the web workers, and the RQ workers are ``memrelay worker`` processes."""
    port = free_port()
    env = clean_env(MEMRELAY_PORT=str(port), MEMRELAY_WORKERS="1", MEMRELAY_WEB_WORKERS="1",
                    MEMRELAY_LOG_LEVEL="WARNING")
    log_path = tmp_path / "up.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-c", UP_WITHOUT_FORKING], cwd=tmp_path, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    family: set[int] = set()
    try:
        assert wait_for(lambda: readyz(port) == 200, 180), log_path.read_text()[-3000:]
        children = [p for p in descendants(proc.pid) if ppid(p) == proc.pid and alive(p)]
        [master] = [p for p in children if "gunicorn" in cmdline(p) and "gunicorn_warm" in cmdline(p)]
        assert len([p for p in descendants(master) if ppid(p) == master]) == 1  # its web worker
        assert [p for p in children if "memrelay.cli.main worker" in cmdline(p)]
        assert not _web_workers(proc.pid)  # nothing forked by the supervisor itself
        family = descendants(proc.pid)
    finally:
        family = stop_up(proc, family)
    assert wait_for(lambda: not [p for p in family if alive(p)], 15), [cmdline(p) for p in family if alive(p)]
    assert proc.returncode == 0, log_path.read_text()[-3000:]
