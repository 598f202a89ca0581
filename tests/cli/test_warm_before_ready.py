"""Warm before ready (issue 16 item 4): by the time /readyz is green, the web worker and the RQ worker of a real
`memrelay up` hold litellm (an LLM is configured) and the loaded embedder — no request pays for them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import requests

from memrelay.composition import Services
from memrelay.engine.core.settings import Settings
from memrelay.engine.guidance.governance import GuidelineCreate
from memrelay.engine.memory.entity_vectors import STAMP_COLUMNS
from memrelay.engine.memory.memories import MemorizeRequest
from memrelay.engine.memory.org_vectors import SnapshotStore
from memrelay.engine.stores.identity import _holders_statement
from memrelay.engine.stores.tenancy import _KEY_LOOKUP_DRIVER
from memrelay.gateway.app import create_app, warm_app
from memrelay.supervise.supervisor import WORKER_PROCESS_NAME
from memrelay.warmup import WARM_REPEATS, warm_services
from tests.support.processes import descendants, free_port
from tests.support.up_data import open_up_data_dir


def _maps(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


def _comm(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def _seed_one_memory(data_dir: Path) -> None:
    """A memory in `up`'s default org before it starts, so warming finds an org-wide index to map."""
    services, org = open_up_data_dir(data_dir)
    services.memories.memorize(org, MemorizeRequest(content="Acme runs its data platform on Kafka.",
                                                    identifiers={"type": "contact", "email": "a@acme.example"},
                                                    verbatim=True))
    services.close()


def test_up_is_ready_only_with_warm_web_and_rq_workers(tmp_path: Path) -> None:
    _seed_one_memory(tmp_path / ".memrelay")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMRELAY_")}
    # a model is configured (never called: nothing here needs the network), so /prompt would import litellm
    env.update(MEMRELAY_PORT=str(port), MEMRELAY_WORKERS="1", MEMRELAY_WEB_WORKERS="1",
               MEMRELAY_LLM_MODEL="openai/gpt-4o-mini", MEMRELAY_LLM_API_BASE="http://127.0.0.1:9")
    log = open(tmp_path / "up.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen([sys.executable, "-m", "memrelay.cli.main", "up"], cwd=tmp_path, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        ready = False
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None and not ready:
            try:
                ready = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
            except requests.RequestException:
                pass
            if not ready:
                time.sleep(0.3)
        assert ready, (tmp_path / "up.log").read_text()[-3000:]
        key = (tmp_path / ".memrelay" / "admin_key").read_text().strip()
        detail = requests.get(f"http://127.0.0.1:{port}/readyz", headers={"X-API-Key": key}, timeout=5).json()
        warm = detail["checks"]["warm"]
        assert warm["ok"] and warm["warmed"] and warm["done"] and warm["embedderLoaded"]
        assert warm["modules"]["litellm"]
        assert "embedder" in warm["steps"] and "litellm" in warm["steps"] and not warm["requiredFailed"]

        family = descendants(proc.pid)
        web = [p for p in family if "gunicorn" in _cmdline(p) and not descendants(p)]  # the master has children
        rq = [p for p in family if "memrelay.cli.main worker" in _cmdline(p) or _comm(p) == WORKER_PROCESS_NAME]
        assert [warm["pid"]] == web and len(rq) == 1
        for pid in web + rq:  # from outside the process: tiktoken's extension and WordLlama's weights mapped
            maps = _maps(pid)
            assert "_tiktoken" in maps and "wordllama/weights/" in maps, _cmdline(pid)
        # the org-wide index is mapped where org-wide recalls are served (the web worker), not in the RQ worker
        assert ".vectors.npy" in _maps(web[0]) and ".vectors.npy" not in _maps(rq[0])
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(60)


def test_warming_loads_the_embedder_and_litellm_and_readyz_reports_it(settings: Settings) -> None:
    configured = settings.model_copy(update={"llm_model": "openai/gpt-4o-mini"})
    seed = Services(configured)  # an org with a memory, so warming also runs recall, search and its snapshot
    seed.migrate()
    org = seed.tenancy.create_org("warm-org").id
    for i in range(WARM_REPEATS + 4):  # more records holding memories than warming recalls
        seed.memories.memorize(org, MemorizeRequest(content=f"They run PostgreSQL on AWS ({i}).", email=f"a{i}@warm.io"))
    seed.governance.create(org, GuidelineCreate(name="Refunds", content="## Refunds\nRefund within 30 days.",
                                                triggerKeywords=["refund"]))
    seed.close()
    services = Services(configured)
    app = create_app(configured, services=services)
    assert not services.embedder.loaded
    hot = [_KEY_LOOKUP_DRIVER, _holders_statement(False, False, STAMP_COLUMNS)[1]]
    for driver in hot:  # compiled by an earlier test of this process or not: from scratch here
        driver._compiled.clear()
    warm_app(app)
    # the loopback model warm-up's /prompt talked to is gone, with every connection thread it served
    assert not [t.name for t in threading.enumerate() if "warm-up-model" in t.name or "process_request" in t.name]
    state: Any = app.extensions["memrelay"]
    assert state.warm.ok and services.embedder.loaded and "litellm" in sys.modules
    assert {"services", "sql", "embedder", "tokenizer", "litellm", "prompt", "orgs", "flask"} <= set(state.warm.steps)
    assert state.warm.errors == {}
    # the org's guidelines are prepared for routing (the per-process index holds its snapshot at their version)
    assert [g.name for g in services.governance.index._by_org[org].guidelines] == ["Refunds"]
    # the scoped recall's miss path ran on WARM_REPEATS + 1 records (enough runs for CPython to specialise it)
    assert len(services.recall.cache) == WARM_REPEATS + 1
    # a request's key lookup and a warm scoped recall's statement run on the driver, compiled on first use: warmed
    assert all(services.db.read_engine.dialect.name in driver._compiled for driver in hot)
    emb = services.embedder
    snap = SnapshotStore(configured.data_dir / "org_vectors", org, emb.name, emb.dim)
    assert snap.current_version() == 1  # the org-wide snapshot exists before the first request
    with services.db.read() as s:  # the write paths (memorize, upsert) ran and rolled back: nothing of them remains
        from sqlalchemy import func, select

        from memrelay.engine.stores.db.models import Memory, RecordKey
        assert s.scalar(select(func.count()).select_from(RecordKey).where(
            RecordKey.key_value == "warm-up@example.com")) == 0
        assert s.scalar(select(func.count()).select_from(Memory).where(Memory.org_id == org)) == WARM_REPEATS + 4
        # a whole /prompt ran against the loopback model (memorize-back included) and rolled back: no usage row
        from memrelay.engine.stores.db.models_llm import LLMUsageRow
        assert s.scalar(select(func.count()).select_from(LLMUsageRow)) == 0
    services.close()


def test_warming_without_a_model_still_prepares_each_orgs_guidelines(settings: Settings) -> None:
    assert not settings.llm_configured  # no /prompt warm-up to prepare them along the way
    seed = Services(settings)
    seed.migrate()
    org = seed.tenancy.create_org("guided-org").id
    seed.governance.create(org, GuidelineCreate(name="Refunds", content="## Refunds\nRefund within 30 days."))
    seed.close()
    services = Services(settings)
    report = warm_services(services)
    assert report.ok and "prompt" not in report.steps
    assert [g.name for g in services.governance.index._by_org[org].guidelines] == ["Refunds"]
    services.close()


def test_a_failed_warm_up_keeps_readyz_red(settings: Settings) -> None:
    broken = settings.model_copy(update={"embedder": "minilm:not-a-model"})  # cannot be loaded
    services = Services(broken)
    services.migrate()
    report = warm_services(services)
    assert not report.ok and report.required_failed == ["embedder"] and "embedder" in report.errors
    app = create_app(broken, services=services)
    app.extensions["memrelay"].warm = report
    body = app.test_client().get("/readyz")
    assert body.status_code == 503
    services.close()
