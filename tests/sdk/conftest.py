"""A real gateway (`memrelay serve`, one web worker) for the SDK tests: temp SQLite, the session's private Redis,
its own Milvus Lite file, and the fake OpenAI-compatible LLM server for generation. Each test gets a fresh org."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from memrelay.composition import Services
from memrelay.engine.core.settings import Settings
from memrelay.engine.stores.db.database import Database
from memrelay.engine.stores.db.migrate import upgrade
from memrelay.supervise.embedded import EmbeddedRedis
from tests.support.fake_llm import FakeLLMServer
from tests.support.llm_env import MODEL
from tests.support.processes import clean_env, free_port, wait_for


@dataclass
class Gateway:
    """A running gateway: its URL, the settings it runs with, and services on the same database."""

    base_url: str
    settings: Settings
    services: Services
    llm: FakeLLMServer

    def new_org(self, *, rate_limit: int | None = None) -> OrgKeys:
        org = self.services.tenancy.get_or_create_org(f"sdk-{os.getpid()}-{os.urandom(4).hex()}")
        admin, _ = self.services.tenancy.create_key(org.id, scopes=["read", "write", "admin"],
                                                    rate_limit_per_minute=rate_limit)
        read, _ = self.services.tenancy.create_key(org.id, scopes=["read"])
        return OrgKeys(org.id, admin, read)

    def run_jobs(self) -> None:
        """Run every queued job (batch chunks, background prompts) through the production worker, in burst."""
        from memrelay.worker.main import run_worker

        run_worker(self.settings, burst=True)


@dataclass(frozen=True)
class OrgKeys:
    org_id: str
    admin_key: str
    read_key: str


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, private_redis: EmbeddedRedis) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("sdk-gateway")
    data = tmp / "data"
    data.mkdir()
    db_url = f"sqlite:///{data / 'memrelay.db'}"
    upgrade(db_url)
    port = free_port()
    llm = FakeLLMServer().start()
    env = clean_env(MEMRELAY_DATA_DIR=str(data), MEMRELAY_DATABASE_URL=db_url, MEMRELAY_REDIS_URL=private_redis.url,
                    MEMRELAY_MILVUS_URI=str(tmp / "gateway-milvus.db"), MEMRELAY_HOST="127.0.0.1",
                    MEMRELAY_PORT=str(port), MEMRELAY_WEB_WORKERS="1", MEMRELAY_LOG_JSON="false",
                    MEMRELAY_LOG_LEVEL="WARNING", MEMRELAY_LLM_MODEL=MODEL, MEMRELAY_LLM_API_BASE=llm.base_url,
                    MEMRELAY_LLM_API_KEY="test", MEMRELAY_LLM_MAX_RETRIES="1", MEMRELAY_LLM_TIMEOUT_S="10")
    log_path = tmp / "serve.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "memrelay.cli.main", "serve"], env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    base_url = f"http://127.0.0.1:{port}"
    # the in-process worker gets its own Milvus Lite file (one process per file)
    settings = Settings(data_dir=data, database_url=db_url, redis_url=private_redis.url,
                        milvus_uri=str(tmp / "worker-milvus.db"), log_json=False, log_level="WARNING",
                        llm_model=MODEL, llm_api_base=llm.base_url, llm_api_key="test", llm_max_retries=1)
    services = Services(settings, db=Database(settings.sql_url))

    def healthy() -> bool:
        if proc.poll() is not None:
            return True  # exited: fail below with the log
        try:
            return requests.get(f"{base_url}/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    try:
        assert wait_for(healthy, 120) and proc.poll() is None, log_path.read_text()[-3000:]
        yield Gateway(base_url, settings, services, llm)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        services.close()
        llm.stop()


@pytest.fixture
def org(gateway: Gateway) -> OrgKeys:
    """Keys (admin and read-only) of a fresh org."""
    return gateway.new_org()
