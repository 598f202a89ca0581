"""Shared fixtures: real Redis (private server), real SQLite/PostgreSQL, real Milvus Lite.

The scale configuration is selected with environment variables:
  MEMRELAY_TEST_POSTGRES_URL  e.g. postgresql://postgres@127.0.0.1:5432/test
  MEMRELAY_TEST_REDIS_URL     e.g. redis://127.0.0.1:6379/0
Without them the PostgreSQL/external-Redis variants are skipped with a visible reason.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib
import sqlalchemy as sa

from memrelay.composition import Services
from memrelay.engine.core.settings import Settings
from memrelay.engine.stores.db.database import Database
from memrelay.engine.stores.db.migrate import upgrade
from memrelay.supervise.embedded import EmbeddedRedis
from tests.support.fake_llm import FakeLLMServer
from tests.support.processes import TEST_SECRET_KEYS

PG_URL = os.environ.get("MEMRELAY_TEST_POSTGRES_URL")
EXTERNAL_REDIS_URL = os.environ.get("MEMRELAY_TEST_REDIS_URL")
NO_PG = "PostgreSQL scale tests need MEMRELAY_TEST_POSTGRES_URL (set by .ci/run)"
NO_REDIS = "external-Redis scale tests need MEMRELAY_TEST_REDIS_URL (set by .ci/run)"


@pytest.fixture(scope="session")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    r = EmbeddedRedis(tmp_path_factory.mktemp("redis") / "redis.sock").start()
    yield r
    r.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqltemplate") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    if not PG_URL:
        pytest.skip(NO_PG)
    base = Settings(database_url=PG_URL).sql_url  # normalised to the psycopg driver
    # one schema per test process (xdist worker), so concurrent runs on one server never share tables
    schema = f"memrelay_test_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}"
    eng = sa.create_engine(base)
    with eng.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    upgrade(url)
    yield url
    try:  # connections a test left open must not hang the session's end
        with eng.begin() as conn:
            conn.exec_driver_sql("SET lock_timeout = '5s'")
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    except sa.exc.DBAPIError:
        pass
    eng.dispose()


@pytest.fixture
def own_pg_url(fresh_pg_schema: str) -> str:
    """A migrated PostgreSQL schema of this test alone (``@pytest.mark.own_database``).

    The session schema is shared by every PostgreSQL test of the process and rightly keeps what they left
    pending (an accepted event never processed, a chunk whose job went with a Redis flush). A test asserting
    what a process-wide sweep (every org's due events or chunks) returns needs a database holding only its
    own work — as each SQLite test's fresh copy already does.
    """
    upgrade(fresh_pg_schema)
    return fresh_pg_schema


@pytest.fixture
def llm() -> Iterator[FakeLLMServer]:
    """A local OpenAI-compatible server (default responder); files with their own responder override it."""
    with FakeLLMServer() as server:
        yield server


@pytest.fixture(scope="session")
def milvus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("milvus") / "milvus.db"


CRM_TEST_HOSTS = "127.0.0.1,localhost"
"""The local fake CRM servers' hosts, admitted as CRM API bases (MEMRELAY_CRM_TEST_HOSTS)."""


@pytest.fixture(autouse=True)
def _crm_fakes_are_admitted() -> None:
    """CRM clients built without Services (connector tests) admit the local fakes too.

    Per test, not per session: the admitted hosts are process-wide and every ``Services`` replaces them with
    its settings' list, so a test that builds one from settings without ``crm_test_hosts`` (the CLI's
    ``load_settings()``, a bare ``Settings``) would otherwise leave later tests in this worker refused.
    """
    from memrelay.engine.egress.crm_hosts import configure_crm_test_hosts

    configure_crm_test_hosts(CRM_TEST_HOSTS.split(","))


def _make_settings(tmp_path: Path, db_url: str | None, redis_url: str, milvus: Path, **extra: Any) -> Settings:
    extra.setdefault("crm_test_hosts", CRM_TEST_HOSTS)
    extra.setdefault("secret_keys", TEST_SECRET_KEYS)
    extra.setdefault("egress_allow_local_targets", True)  # test receivers listen on 127.0.0.1 (off in production)
    return Settings(data_dir=tmp_path / "data", database_url=db_url, redis_url=redis_url,
                    milvus_uri=str(milvus), log_json=False, log_level="WARNING", **extra)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    """Parametrises a test over both SQL backends (PostgreSQL skipped without the env var)."""
    if request.param == "postgres" and not PG_URL:
        pytest.skip(NO_PG)
    return request.param


@pytest.fixture(params=["embedded", "external"])
def redis_backend(request: pytest.FixtureRequest) -> str:
    """Parametrises a test over memrelay's private Redis and an external one (skipped without the env var)."""
    if request.param == "external" and not EXTERNAL_REDIS_URL:
        pytest.skip(NO_REDIS)
    return request.param


def _external_redis_url() -> str:
    """One logical database per xdist worker so parallel workers never flush each other's keys."""
    assert EXTERNAL_REDIS_URL
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    db = 1 + (int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0)
    return EXTERNAL_REDIS_URL.rsplit("/", 1)[0] + f"/{db}"


@pytest.fixture
def settings(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path, private_redis: EmbeddedRedis,
             milvus_dir: Path) -> Settings:
    """Settings for one test: SQLite copy (or PostgreSQL via the `backend` param), private Redis."""
    backend = request.getfixturevalue("backend") if "backend" in request.fixturenames else "sqlite"
    if backend == "postgres":
        own = request.node.get_closest_marker("own_database") is not None
        db_url = request.getfixturevalue("own_pg_url" if own else "pg_url")
    else:
        (tmp_path / "data").mkdir(exist_ok=True)
        dest = tmp_path / "data" / "memrelay.db"
        shutil.copy(sqlite_template, dest)
        db_url = f"sqlite:///{dest}"
    redis_url = private_redis.url
    if "redis_backend" in request.fixturenames and request.getfixturevalue("redis_backend") == "external":
        redis_url = _external_redis_url()
    redis_lib.Redis.from_url(redis_url).flushdb()
    marker = request.node.get_closest_marker("settings")  # @pytest.mark.settings(name=value): seen by every process
    return _make_settings(tmp_path, db_url, redis_url, milvus_dir, **(marker.kwargs if marker else {}))


@pytest.fixture
def engine(settings: Settings) -> Iterator[Services]:
    e = Services(settings, db=Database(settings.sql_url))
    yield e
    e.close()


@pytest.fixture
def app(settings: Settings, engine: Services):  # type: ignore[no-untyped-def]
    from memrelay.gateway.app import create_app

    return create_app(settings, services=engine)


class Api:
    """A test client bound to one API key."""

    def __init__(self, client: Any, key: str, org_id: str):
        self.client, self.key, self.org_id = client, key, org_id

    def _h(self, headers: dict[str, str] | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}", **(headers or {})}

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, headers=self._h(kw.pop("headers", None)), **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.client.post(path, json=json, headers=self._h(kw.pop("headers", None)), **kw)

    def put(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.client.put(path, json=json, headers=self._h(kw.pop("headers", None)), **kw)

    def patch(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.client.patch(path, json=json, headers=self._h(kw.pop("headers", None)), **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.client.delete(path, headers=self._h(kw.pop("headers", None)), **kw)


_org_counter = iter(range(10**9))


def make_api(app: Any, engine: Services, *, scopes: tuple[str, ...] = ("read", "write", "admin"),
             org_name: str | None = None, rate_limit: int | None = None) -> Api:
    org = engine.tenancy.get_or_create_org(org_name or f"org-{os.getpid()}-{next(_org_counter)}-{os.urandom(3).hex()}")
    key, _ = engine.tenancy.create_key(org.id, scopes=list(scopes), rate_limit_per_minute=rate_limit)
    return Api(app.test_client(), key, org.id)


@pytest.fixture
def api(app: Any, engine: Services) -> Api:
    """An admin key of a fresh org."""
    return make_api(app, engine)


@pytest.fixture
def other_api(app: Any, engine: Services) -> Api:
    """A key of a second, unrelated org (isolation tests)."""
    return make_api(app, engine)


@pytest.fixture
def run_jobs(engine: Services, settings: Settings):  # type: ignore[no-untyped-def]
    """Run every queued job through the production worker exactly as ``memrelay worker`` does (``run_worker``
    building its own services from this test's settings; ``MemrelayWorker``, real Redis and rq), in burst mode.

    A test that needs a worker knob changes it through settings (``@pytest.mark.settings(...)``), never by
    handing the worker the test's in-process objects."""
    from memrelay.worker.main import run_worker

    def run() -> None:
        run_worker(settings, burst=True)

    return run


@pytest.fixture
def fresh_pg_schema() -> Iterator[str]:
    """A new, empty PostgreSQL schema (for migration tests), dropped afterwards."""
    if not PG_URL:
        pytest.skip(NO_PG)
    base = Settings(database_url=PG_URL).sql_url
    schema = f"memrelay_fresh_{uuid.uuid4().hex[:8]}"
    eng = sa.create_engine(base)
    with eng.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        yield f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    finally:
        with eng.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        eng.dispose()
