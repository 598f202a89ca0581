"""numpy's BLAS pool sized to the process's share of cores by the CLI and the gunicorn config, before numpy loads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from memrelay.engine.core.threads import BLAS_ENV, limit_blas_threads

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, os
import {entry}
import numpy as np
from memrelay.engine.core.threads import embedder_threads
a = np.ones((4000, 256), dtype=np.float32)
for _ in range(3):
    a @ np.ones(256, dtype=np.float32)
print(json.dumps({{"threads": len(os.listdir("/proc/self/task")), "env": os.environ.get("OPENBLAS_NUM_THREADS"),
                  "share": embedder_threads(), "cpus": len(os.sched_getaffinity(0))}}))
"""


def _probe(entry: str, **env: str) -> dict[str, int | str | None]:
    clean = {k: v for k, v in os.environ.items()
             if k not in (BLAS_ENV, "MEMRELAY_EMBED_THREADS", "MEMRELAY_WEB_WORKERS", "MEMRELAY_WORKERS")}
    out = subprocess.run([sys.executable, "-c", PROBE.format(entry=entry)], env={**clean, **env}, cwd=ROOT,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("entry", ["memrelay.cli.main", "memrelay.gateway.gunicorn_conf"])
def test_a_server_process_runs_its_share_of_blas_threads(entry: str) -> None:
    # `up`'s defaults: 2 web + 2 RQ workers. On a 2-core machine each gets one BLAS thread, where numpy alone
    # starts one per core (the process's only thread is then its main one).
    got = _probe(entry, MEMRELAY_WEB_WORKERS="2", MEMRELAY_WORKERS="2")
    assert got["env"] == str(got["share"]) and got["threads"] == got["share"]
    unlimited = _probe("json")  # numpy loaded without memrelay's entry points
    assert unlimited["threads"] == min(int(unlimited["cpus"] or 1), 64)


def test_an_explicit_setting_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BLAS_ENV, "3")
    assert limit_blas_threads() == 3 and os.environ[BLAS_ENV] == "3"
    monkeypatch.setenv(BLAS_ENV, "")
    monkeypatch.setenv("MEMRELAY_EMBED_THREADS", "2")
    assert limit_blas_threads() == 2 and os.environ[BLAS_ENV] == "2"
