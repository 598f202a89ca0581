"""`memrelay up` on embedded defaults: ready within 60 s, Ctrl-C leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from memrelay.supervise.embedded import EmbeddedRedis
from tests.support.processes import alive, descendants, free_port


def test_up_is_ready_and_ctrl_c_leaves_nothing(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMRELAY_")}
    env.update(MEMRELAY_PORT=str(port), MEMRELAY_WORKERS="1", MEMRELAY_WEB_WORKERS="1")
    log = open(tmp_path / "up.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "memrelay.cli.main", "up"], cwd=tmp_path, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        t0 = time.monotonic()
        ready = False
        while time.monotonic() - t0 < 60 and proc.poll() is None:
            try:
                if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    ready = True
                    break
            except requests.RequestException:
                pass
            time.sleep(0.3)
        assert ready, (tmp_path / "up.log").read_text()[-3000:]
        key = (tmp_path / ".memrelay" / "admin_key").read_text().strip()
        me = requests.get(f"http://127.0.0.1:{port}/api/v1/me", headers={"Authorization": f"Bearer {key}"},
                          timeout=5)
        assert me.status_code == 200 and me.json()["data"]["org"]["name"] == "default"
        assert "admin" in me.json()["data"]["key"]["scopes"]
        # the embedded Redis is ours, on a unix socket in the data dir, with AOF persistence
        sock = tmp_path / ".memrelay" / "redis" / "redis.sock"
        assert EmbeddedRedis(sock).is_alive()
        assert (tmp_path / ".memrelay" / "redis" / "appendonly.aof").exists()
        family = descendants(proc.pid)
        # redis, the web worker, the RQ worker (Milvus Lite starts on demand; no gunicorn master)
        assert sorted(Path(f"/proc/{p}/comm").read_text().strip() for p in family) == [
            "memrelay-web", "memrelay-worker", "redis-server"]
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        proc.wait(60)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(p) for p in family):
        time.sleep(0.2)
    assert not [p for p in family if alive(p)], "processes left behind after Ctrl-C"
    assert not sock.exists()
    output = (tmp_path / "up.log").read_text()
    assert f"http://127.0.0.1:{port}" in output and "admin_key" in output
