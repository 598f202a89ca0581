"""A real ``memrelay up`` on a free port for the n8n acceptance tests, and a small client for its API."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from tests.workflows.n8n_runtime import free_port


class Memrelay:
    def __init__(self, url: str, key: str):
        self.url, self.key = url, key
        self.headers = {"Authorization": f"Bearer {key}"}

    def call(self, method: str, path: str, body: Any = None, *, ok: bool = True) -> Any:
        resp = requests.request(method, self.url + path, json=body, headers=self.headers, timeout=60)
        if ok:
            assert resp.status_code < 300, (method, path, resp.status_code, resp.text[:2000])
            doc = resp.json()
            return doc["data"] if isinstance(doc, dict) and doc.get("success") is True else doc
        return resp

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self.call("POST", path, body)

    def get(self, path: str) -> Any:
        return self.call("GET", path)

    def wait_for(self, probe: Callable[[], Any], what: str, timeout: float = 90) -> Any:
        """Poll ``probe`` until it returns something truthy (asynchronous effects: jobs, deliveries)."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            last = probe()
            if last:
                return last
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for {what}; last probe: {last!r}")


@contextmanager
def running_memrelay(tmp: Path, llm_base_url: str, extra_env: dict[str, str] | None = None) -> Iterator[Memrelay]:
    """``python -m memrelay.cli.main up`` (gateway + a worker) with the local fake LLM."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMRELAY_")}
    env.update(MEMRELAY_PORT=str(port), MEMRELAY_WORKERS="1", MEMRELAY_WEB_WORKERS="1",
               MEMRELAY_LLM_MODEL="openai/gpt-4o-mini", MEMRELAY_LLM_API_BASE=llm_base_url,
               MEMRELAY_LLM_API_KEY="test",
               # n8n runs on this machine: let the org allowlist admit loopback REST-hook targets (operator setting)
               MEMRELAY_EGRESS_ALLOW_LOCAL_TARGETS="true", **(extra_env or {}))
    log = tmp / "up.log"
    proc = subprocess.Popen([sys.executable, "-m", "memrelay.cli.main", "up"], cwd=tmp, env=env,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.3)
        else:
            raise AssertionError(log.read_text()[-3000:])
        yield Memrelay(f"http://127.0.0.1:{port}", (tmp / ".memrelay" / "admin_key").read_text().strip())
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
