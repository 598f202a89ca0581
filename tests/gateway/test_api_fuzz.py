"""Schemathesis (the pinned CLI) over every /api operation of a real ``memrelay up`` on embedded defaults, with
an admin key of its org: no answer may be a server error, and every answer must conform to ``/openapi.json``
(documented status, content type and response schema). ``make test-api-fuzz``; not part of ``make test``.

The LLM is a local OpenAI-compatible stand-in (tests/support/fuzz_llm.py) answering every structured request
with a schema-valid value, so the LLM-backed operations run their real code paths instead of answering 503.
Bounded: ``API_FUZZ_MAX_EXAMPLES`` generated cases per operation (default 5) on top of schemathesis' coverage
phase, fixed seed, one schemathesis worker (two threads can crash hypothesis inside ``ast.parse`` on CPython
3.11.7: "AST constructor recursion depth mismatch", python/cpython#106905)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.support.fuzz_llm import fuzz_llm_server
from tests.support.processes import alive, clean_env, descendants, free_port, wait_for

pytestmark = pytest.mark.api_fuzz

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def _schemathesis() -> str:
    exe = Path(sys.executable).with_name("schemathesis")
    assert exe.exists(), "schemathesis is not installed (it is pinned in requirements.lock; run make install)"
    return str(exe)


def _ready(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
    except requests.RequestException:
        return False


def _tracebacks(log: str) -> str:
    """The server's tracebacks (each with the lines that follow it) from its combined log."""
    blocks = ["\n".join(b.splitlines()[:40]) for b in log.split("Traceback (most recent call last):")[1:]]
    return "\n---\n".join(dict.fromkeys(blocks))


def test_schemathesis_finds_no_server_error_and_no_spec_violation(tmp_path: Path) -> None:
    port = free_port()
    llm = fuzz_llm_server()
    env = clean_env(MEMRELAY_PORT=str(port), MEMRELAY_WORKERS="1", MEMRELAY_WEB_WORKERS="2",
                    MEMRELAY_RATE_LIMIT_PER_MINUTE="1000000", MEMRELAY_LLM_MODEL="openai/gpt-4o-mini",
                    MEMRELAY_LLM_API_BASE=llm.base_url, MEMRELAY_LLM_API_KEY="test")
    log = open(tmp_path / "up.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "memrelay.cli.main", "up"], cwd=tmp_path, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    family: set[int] = set()
    try:
        assert wait_for(lambda: proc.poll() is None and _ready(port), 120), (tmp_path / "up.log").read_text()[-3000:]
        family = descendants(proc.pid)
        key = (tmp_path / ".memrelay" / "admin_key").read_text().strip()
        config = tmp_path / "schemathesis.toml"  # the coverage phase's 405 probes are not among the checks here
        config.write_text("[phases.coverage]\nunexpected-methods = []\n")
        cmd = [_schemathesis(), "--config-file", str(config), "run", f"http://127.0.0.1:{port}/openapi.json",
               "--header", f"Authorization: Bearer {key}", "--checks", CHECKS,
               "--phases", "examples,coverage,fuzzing", "--mode", "all",
               "--max-examples", os.environ.get("API_FUZZ_MAX_EXAMPLES", "5"), "--seed", "14",
               "--workers", "1", "--request-timeout", "60", "--no-shrink", "--continue-on-failure",
               "--suppress-health-check", "all", "--output-truncate", "false",
               "--report", "junit", "--report-dir", str(tmp_path / "report")]
        t0 = time.monotonic()
        run = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=900,
                             env={**os.environ, "NO_COLOR": "1"})
        took = time.monotonic() - t0
        print(run.stdout[-20000:], run.stderr[-5000:], f"schemathesis took {took:.0f} s", sep="\n")
        if run.returncode != 0:
            print("server tracebacks:", _tracebacks((tmp_path / "up.log").read_text(errors="replace")), sep="\n")
        assert run.returncode == 0, f"schemathesis found failures (exit {run.returncode}); see its output above"
        assert " 0 operations" not in run.stdout
    finally:
        family |= descendants(proc.pid)
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        wait_for(lambda: not any(alive(p) for p in family), 15)
        llm.stop()
