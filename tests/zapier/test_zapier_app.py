"""The Zapier platform app (zapier/) against a real memrelay: `memrelay serve` + `memrelay worker` (which runs the
outbox dispatcher and delivers REST hooks) on a temp SQLite database and the session's private Redis, then
`npm test` in zapier/ — zapier-platform-core's app tester running the auth test, every trigger (hook subscribe,
a real signed delivery, perform, polling performList with the cursor, unsubscribe), every create and every
search. Also the platform's own validator (`npm run validate`). Marker ``zapier``: `make test-zapier`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from memrelay.composition import Services
from memrelay.engine.core.settings import Settings
from memrelay.engine.stores.db.database import Database
from memrelay.engine.stores.db.migrate import upgrade
from memrelay.supervise.embedded import EmbeddedRedis
from tests.support.processes import clean_env, free_port, wait_for

pytestmark = pytest.mark.zapier

ZAPIER_DIR = Path(__file__).resolve().parents[2] / "zapier"


@dataclass
class Memrelay:
    base_url: str
    admin_key: str
    read_key: str
    org_id: str


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


@pytest.fixture(scope="module")
def memrelay(tmp_path_factory: pytest.TempPathFactory, private_redis: EmbeddedRedis) -> Iterator[Memrelay]:
    tmp = tmp_path_factory.mktemp("zapier-memrelay")
    data = tmp / "data"
    data.mkdir()
    db_url = f"sqlite:///{data / 'memrelay.db'}"
    upgrade(db_url)
    port = free_port()
    common = {"MEMRELAY_DATA_DIR": str(data), "MEMRELAY_DATABASE_URL": db_url, "MEMRELAY_REDIS_URL": private_redis.url,
              "MEMRELAY_LOG_JSON": "false", "MEMRELAY_LOG_LEVEL": "WARNING",
              "MEMRELAY_EGRESS_ALLOW_LOCAL_TARGETS": "true"}  # the test receiver listens on 127.0.0.1
    serve_env = clean_env(**common, MEMRELAY_MILVUS_URI=str(tmp / "serve-milvus.db"), MEMRELAY_HOST="127.0.0.1",
                          MEMRELAY_PORT=str(port), MEMRELAY_WEB_WORKERS="1")
    worker_env = clean_env(**common, MEMRELAY_MILVUS_URI=str(tmp / "worker-milvus.db"))
    procs: list[subprocess.Popen[bytes]] = []
    logs = {name: tmp / f"{name}.log" for name in ("serve", "worker")}
    for name, env in (("serve", serve_env), ("worker", worker_env)):
        with open(logs[name], "wb") as log:
            procs.append(subprocess.Popen([sys.executable, "-m", "memrelay.cli.main", name], env=env, stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True))
    base_url = f"http://127.0.0.1:{port}"
    settings = Settings(data_dir=data, database_url=db_url, redis_url=private_redis.url,
                        milvus_uri=str(tmp / "setup-milvus.db"), log_json=False, log_level="WARNING")
    services = Services(settings, db=Database(settings.sql_url))

    def healthy() -> bool:
        if any(p.poll() is not None for p in procs):
            return True  # exited: fail below with the log
        try:
            return requests.get(f"{base_url}/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    try:
        ok = wait_for(healthy, 120) and all(p.poll() is None for p in procs)
        assert ok, "\n".join(f"--- {n}\n{p.read_text()[-3000:]}" for n, p in logs.items())
        org = services.tenancy.get_or_create_org(f"zapier-{os.getpid()}-{os.urandom(4).hex()}")
        admin, _ = services.tenancy.create_key(org.id, scopes=["read", "write", "admin"])
        read, _ = services.tenancy.create_key(org.id, scopes=["read"])
        yield Memrelay(base_url, admin, read, org.id)
    finally:
        for p in procs:
            _stop(p)
        services.close()


def _npm() -> str:
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed (Node 18+ is needed for the Zapier app)")
    if not (ZAPIER_DIR / "node_modules" / "zapier-platform-core").is_dir():
        pytest.fail("zapier/node_modules is missing: run `make test-zapier` (it runs `npm ci` first)")
    return npm


def test_the_app_passes_the_platform_validator() -> None:
    out = subprocess.run([_npm(), "run", "--silent", "validate"], cwd=ZAPIER_DIR, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "is valid" in out.stdout


def test_the_app_tester_suite_against_a_real_memrelay(memrelay: Memrelay) -> None:
    env = {**os.environ, "MEMRELAY_BASE_URL": memrelay.base_url, "MEMRELAY_API_KEY": memrelay.admin_key,
           "MEMRELAY_READ_KEY": memrelay.read_key, "MEMRELAY_ORG_ID": memrelay.org_id}
    out = subprocess.run([_npm(), "test"], cwd=ZAPIER_DIR, env=env, capture_output=True, text=True, timeout=600)
    report = out.stdout[-12000:] + out.stderr[-4000:]
    assert out.returncode == 0, report
    assert "# fail 0" in out.stdout and "# skipped 0" in out.stdout, report
    passed = re.search(r"^# pass (\d+)$", out.stdout, re.M)
    assert passed and int(passed.group(1)) >= 20, report  # the whole suite ran (it skips without a memrelay)
