"""`memrelay up` starts Milvus Lite on demand: not while every org is served by exact in-process search; memorize,
org-wide recall and similar records work meanwhile (memories pending for the index); once an org outgrows exact
search (``MEMRELAY_EXACT_SEARCH_MAX_ROWS``, 2 here), its next search asks for Milvus, and the pending memories are
indexed once it runs."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.support.processes import alive, descendants, free_port


def _milvus_processes(pid: int) -> list[int]:
    out = []
    for p in descendants(pid):
        try:
            cmd = Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "milvus_lite" in cmd:
            out.append(p)
    return out


def _index_states(data: Path) -> dict[str, int]:
    with sqlite3.connect(data / "memrelay.db") as c:
        return dict(c.execute("SELECT index_state, count(*) FROM memories GROUP BY index_state").fetchall())


def test_up_starts_milvus_only_when_needed(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMRELAY_")}
    env.update(MEMRELAY_PORT=str(port), MEMRELAY_WORKERS="1", MEMRELAY_WEB_WORKERS="1",
               MEMRELAY_EXACT_SEARCH_MAX_ROWS="2")
    log = open(tmp_path / "up.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "memrelay.cli.main", "up"], cwd=tmp_path, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}/api/v1"
    data = tmp_path / ".memrelay"
    family: set[int] = set()
    try:
        t0 = time.monotonic()
        while time.monotonic() - t0 < 90 and proc.poll() is None:
            try:
                if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.3)
        ready = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert ready.status_code == 200, (tmp_path / "up.log").read_text()[-3000:]
        assert not _milvus_processes(proc.pid)
        auth = {"Authorization": f"Bearer {(data / 'admin_key').read_text().strip()}"}

        def memorize(text: str, email: str) -> None:
            r = requests.post(f"{base}/memorize", json={"content": text, "email": email, "type": "contact",
                                                        "verbatim": True}, headers=auth, timeout=60)
            assert r.status_code == 200, r.text
            assert r.json()["data"]["memoriesCreated"] == 1

        def similar_to_ana() -> requests.Response:
            return requests.post(f"{base}/similar", json={"email": "ana@acme.example", "type": "contact",
                                                         "dimensions": "memories"}, headers=auth, timeout=120)

        memorize("Ana runs the data platform team at Acme.", "ana@acme.example")
        memorize("Bo runs the data platform team at Initech, on Kafka.", "bo@initech.example")
        r = requests.post(f"{base}/smart-recall", json={"query": "which streaming platform does Initech use?"},
                          headers=auth, timeout=60)  # org-wide: exact in-process search, no Milvus
        assert r.status_code == 200, r.text
        assert any("Kafka" in m.get("text", "") for m in r.json()["data"]["results"]), r.json()
        r = similar_to_ana()  # similar records: the same exact index, no Milvus
        assert r.status_code == 200, r.text
        assert [x["keys"]["email"] for x in r.json()["data"]["results"]] == ["bo@initech.example"], r.json()
        time.sleep(1.5)  # a worker's reconcile round would have indexed them if Milvus ran
        assert not _milvus_processes(proc.pid)
        assert set(_index_states(data)) == {"pending"}

        memorize("Acme's data platform runs on Kafka.", "ana@acme.example")  # 3 memories: past exact search
        r = similar_to_ana()
        assert r.status_code == 200, r.text  # a Milvus search: asked for it, waited for it
        assert _milvus_processes(proc.pid)
        deadline = time.monotonic() + 90  # the workers' periodic reconcile indexes what was pending
        while time.monotonic() < deadline and set(_index_states(data)) != {"indexed"}:
            time.sleep(1)
        assert set(_index_states(data)) == {"indexed"}, _index_states(data)
        family = descendants(proc.pid)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(60)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(p) for p in family):
        time.sleep(0.2)
    assert not [p for p in family if alive(p)], "processes left behind after Ctrl-C"
    started = (tmp_path / "up.log").read_text()  # asked for by the search, or found by the supervisor's org check
    assert "starting Milvus Lite (requested)" in started or "(an organisation outgrew exact search)" in started
