"""The gateway under gunicorn builds its app and services in each web worker, after the fork: the master
holds what the workers share (modules, the embedder's weights) but no app, no thread and no SQL file; a
preloading master (``--preload``: the app built before the fork) and a master running a thread are refused."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import requests

from memrelay.engine.core.settings import Settings
from memrelay.supervise.supervisor import gunicorn_command

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(settings: Settings, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMRELAY_")}
    env.update(MEMRELAY_DATA_DIR=str(settings.data_dir), MEMRELAY_DATABASE_URL=settings.sql_url,
               MEMRELAY_REDIS_URL=str(settings.redis_url), MEMRELAY_MILVUS_URI=str(tmp_path / "gw-milvus.db"),
               MEMRELAY_LOG_JSON="false", MEMRELAY_LOG_LEVEL="WARNING")
    return env


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _open_files(pid: int) -> set[str]:
    out = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            out.add(os.readlink(fd))
        except OSError:
            continue
    return out


def test_web_workers_build_the_app_after_fork(settings: Settings, tmp_path: Path) -> None:
    port = _free_port()
    settings = settings.model_copy(update={"port": port, "web_workers": 2})
    log = open(tmp_path / "gunicorn.log", "wb")  # noqa: SIM115 - closed with the process
    master = subprocess.Popen(gunicorn_command(settings), cwd=tmp_path, env=_env(settings, tmp_path), stdout=log,
                              stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        ok = False
        while time.monotonic() < deadline and master.poll() is None and not ok:
            try:
                ok = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
            except requests.RequestException:
                time.sleep(0.3)
        assert ok, (tmp_path / "gunicorn.log").read_text()[-3000:]
        db_file = settings.sql_url.removeprefix("sqlite:///")
        workers = _children(master.pid)
        assert len(workers) == 2
        assert db_file not in _open_files(master.pid)  # the master holds no database connection
        maps = Path(f"/proc/{master.pid}/maps").read_text()
        assert "wordllama/weights/" in maps  # but the embedder its workers share (when_ready saw no thread)
        for _ in range(4):  # every worker answers with its own app
            assert requests.get(f"http://127.0.0.1:{port}/api/v1/me", timeout=5).status_code == 401
    finally:
        master.terminate()
        master.wait(30)


def test_a_preloading_master_is_refused(settings: Settings, tmp_path: Path) -> None:
    settings = settings.model_copy(update={"port": _free_port(), "web_workers": 1})
    cmd = gunicorn_command(settings)
    cmd.insert(-1, "--preload")
    proc = subprocess.run(cmd, cwd=tmp_path, env=_env(settings, tmp_path), capture_output=True, timeout=60)
    assert proc.returncode != 0
    assert b"must be built after fork" in proc.stdout + proc.stderr


def test_a_master_running_a_thread_is_refused() -> None:
    import threading

    from memrelay.supervise import gunicorn_warm
    from memrelay.warmup import NotForkSafe

    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, name="leftover")
    thread.start()
    try:
        try:
            gunicorn_warm.when_ready(None)
        except NotForkSafe as exc:
            assert "leftover" in str(exc)
        else:
            raise AssertionError("a master with a running thread was accepted")
    finally:
        stop.set()
        thread.join()
