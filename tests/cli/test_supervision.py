"""`memrelay up` supervises what it owns: a killed embedded Redis, Milvus Lite server, RQ worker or web worker
is restarted and ``/readyz`` recovers; SIGTERM to ``up`` alone leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from memrelay.supervise.supervisor import WORKER_PROCESS_NAME
from tests.support.processes import (
    alive,
    clean_env,
    cmdline,
    descendants,
    free_port,
    readyz,
    stop_up,
    wait_for,
)


def _runs(pid: int, needle: str) -> bool:
    """``needle`` in the command line, or the process name (an RQ worker forked by ``up`` keeps up's command
    line and is named ``memrelay-worker``)."""
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        comm = ""
    return needle in cmdline(pid) or (needle == "memrelay.cli.main worker" and comm == WORKER_PROCESS_NAME)


def _child_matching(root: int, needle: str) -> int:
    found = [p for p in descendants(root) if _runs(p, needle) and alive(p)]
    assert found, f"no child of {root} runs {needle!r}"
    return min(found)


def _kill_and_see_recovery(proc: subprocess.Popen[bytes], port: int, needle: str, log: Path) -> None:
    victim = _child_matching(proc.pid, needle)
    os.kill(victim, signal.SIGKILL)
    assert wait_for(lambda: not alive(victim), 10)
    assert wait_for(lambda: any(p != victim and _runs(p, needle) for p in descendants(proc.pid)), 60), \
        f"{needle} was not restarted:\n{log.read_text()[-3000:]}"
    assert wait_for(lambda: readyz(port) == 200, 90), f"/readyz did not recover after killing {needle}:\n" + \
        log.read_text()[-3000:]


def test_up_restarts_every_child_it_owns_and_sigterm_leaves_nothing(tmp_path: Path) -> None:
    port = free_port()
    env = clean_env(MEMRELAY_PORT=str(port), MEMRELAY_WORKERS="1", MEMRELAY_WEB_WORKERS="1",
                    MEMRELAY_LOG_LEVEL="WARNING", MEMRELAY_MILVUS_LAZY="0")  # Milvus Lite from the start
    log_path = tmp_path / "up.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "memrelay.cli.main", "up"], cwd=tmp_path, env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    family: set[int] = set()
    try:
        assert wait_for(lambda: readyz(port) == 200, 90), log_path.read_text()[-3000:]
        redis_pid = _child_matching(proc.pid, "redis-server")
        # the queue survives the Redis restart (AOF): a key written before the kill is still there
        import redis

        sock = tmp_path / ".memrelay" / "redis" / "redis.sock"
        r = redis.Redis(unix_socket_path=str(sock))
        r.set("memrelay:test:survives", "1")
        r.execute_command("BGREWRITEAOF")
        assert wait_for(lambda: r.info("persistence")["aof_rewrite_in_progress"] == 0, 10)
        _kill_and_see_recovery(proc, port, "redis-server", log_path)
        assert _child_matching(proc.pid, "redis-server") != redis_pid
        assert redis.Redis(unix_socket_path=str(sock)).get("memrelay:test:survives") == b"1"
        _kill_and_see_recovery(proc, port, "memrelay.cli.main worker", log_path)
        _kill_and_see_recovery(proc, port, "milvus_lite", log_path)
        _kill_and_see_recovery(proc, port, "gunicorn", log_path)
        family = descendants(proc.pid)
        assert len(family) >= 4
    finally:
        family = stop_up(proc, family)
    assert wait_for(lambda: not [p for p in family if alive(p)], 15), \
        [cmdline(p) for p in family if alive(p)]
    assert proc.returncode == 0, log_path.read_text()[-3000:]
    out = log_path.read_text()
    assert "restarting redis" in out and "restarting worker-0" in out and "restarting web-0" in out
