"""Helpers for tests that start real memrelay processes: free ports, process trees, readiness polling."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def descendants(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out: set[int] = set()
    todo = [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def comm(pid: int) -> str:
    """The process's name (``/proc/<pid>/comm``), "" once it is gone."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def ppid(pid: int) -> int:
    """The process's parent pid."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.3) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def readyz(port: int) -> int | None:
    """The status code of ``/readyz`` (None when nothing answers)."""
    try:
        return requests.get(f"http://127.0.0.1:{port}/readyz", timeout=10).status_code
    except requests.RequestException:
        return None


TEST_SECRET_KEYS = '{"primary": "7e57", "keys": {"7e57": "bWVtcmVsYXktdGVzdC1rZXlyaW5nLW5vdC1zZWNyZXQ"}}'
"""The keyring every test process shares (secrets at rest): rows one process encrypts, another decrypts."""


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any ``MEMRELAY_*`` variable, plus the test keyring and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMRELAY_")}
    env["MEMRELAY_SECRET_KEYS"] = TEST_SECRET_KEYS
    env["MEMRELAY_EGRESS_ALLOW_LOCAL_TARGETS"] = "true"  # test receivers listen on 127.0.0.1 (off in production)
    env.update(extra)
    return env


def start_memrelay(command: str, cwd: Path, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """``memrelay <command>`` (``up``, ``serve``, ``worker``) as a subprocess in its own session, its output in
    ``log_path``."""
    with open(log_path, "wb") as log:
        return subprocess.Popen([sys.executable, "-m", "memrelay.cli.main", command], cwd=cwd, env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop_up(proc: subprocess.Popen[bytes], family: set[int]) -> set[int]:
    """SIGTERM to ``proc`` alone (as a process manager sends it), waited for; returns its process family as the test
    last saw it (``family``), or as it is now when the test did not get that far."""
    family = family or descendants(proc.pid)
    proc.send_signal(signal.SIGTERM)
    proc.wait(90)
    return family


def probe(script: str, *args: str, timeout: float = 300) -> dict[str, Any]:
    """Run ``script`` (``python -c``) with ``args`` in a fresh interpreter on a clean environment; the JSON object
    it prints last."""
    proc = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=timeout,
                          env=clean_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out
