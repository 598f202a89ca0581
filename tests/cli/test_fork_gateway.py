"""`memrelay up` has one warm parent (issue 16: memory shared, not loaded twice): the gunicorn master is forked
from the supervisor — which preloaded the modules, the embedder's weights, the token encoding and what the
services import — and its web workers from the master. A killed master is forked again and serves; a forked
child shows its own command line; preloading opens nothing a child could inherit; `memrelay serve` (gunicorn's own
warm master) serves on PostgreSQL + Redis."""

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
from memrelay.supervise.supervisor import GATEWAY_PROCESS_NAME, GATEWAY_TITLE, WORKER_PROCESS_NAME
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


def test_up_forks_gunicorn_from_its_warm_parent_and_forks_it_again_when_killed(tmp_path: Path) -> None:
    port = free_port()
    env = clean_env(
        MEMRELAY_PORT=str(port), MEMRELAY_WORKERS="1", MEMRELAY_WEB_WORKERS="2", MEMRELAY_LOG_LEVEL="WARNING"
    )
    log_path = tmp_path / "up.log"
    proc = start_memrelay("up", tmp_path, env, log_path)
    family: set[int] = set()

    def masters() -> list[int]:
        return [
            p
            for p in descendants(proc.pid)
            if alive(p) and ppid(p) == proc.pid and comm(p) == GATEWAY_PROCESS_NAME
        ]

    try:
        assert wait_for(lambda: readyz(port) == 200, 180), log_path.read_text()[-3000:]
        [master] = masters()
        assert cmdline(master).strip() == GATEWAY_TITLE  # gunicorn's arbiter, in a child forked from `up`
        web = [p for p in descendants(master) if alive(p)]
        assert len(web) == 2 and all(ppid(p) == master for p in web)
        assert all(cmdline(p).strip() == WORKER_TITLE for p in web)
        rq = [p for p in descendants(proc.pid) if comm(p) == WORKER_PROCESS_NAME]
        assert len(rq) == 1 and ppid(rq[0]) == proc.pid  # the RQ worker shares the same parent
        key = (tmp_path / ".memrelay" / "admin_key").read_text().strip()
        me = f"http://127.0.0.1:{port}/api/v1/me"
        assert requests.get(me, headers={"Authorization": f"Bearer {key}"}, timeout=30).status_code == 200

        os.kill(master, signal.SIGKILL)
        # its web workers notice their parent changed and stop (they may answer until then); then the port frees
        assert wait_for(lambda: not alive(master) and not [p for p in web if alive(p)], 60)
        assert wait_for(lambda: bool(masters()) and masters() != [master], 60), log_path.read_text()[-3000:]
        assert wait_for(lambda: readyz(port) == 200, 120), log_path.read_text()[-3000:]
        assert requests.get(me, headers={"Authorization": f"Bearer {key}"}, timeout=30).status_code == 200
        family = descendants(proc.pid)
    finally:
        if not family:
            family = descendants(proc.pid)
        proc.send_signal(signal.SIGTERM)
        proc.wait(90)
    assert wait_for(lambda: not [p for p in family if alive(p)], 15), [cmdline(p) for p in family if alive(p)]
    assert proc.returncode == 0, log_path.read_text()[-3000:]
    out = log_path.read_text()
    assert "restarting gateway" in out and "Traceback" not in out, out[-3000:]


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
