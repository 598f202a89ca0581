"""Clean lifecycle of the single-role commands: concurrent ``memrelay migrate`` on an empty database all
succeed (advisory lock), and SIGTERM to ``memrelay serve`` stops gunicorn so the port is free again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from memrelay.engine.core.settings import Settings
from memrelay.engine.stores.db.migrate import current_head
from tests.conftest import PG_URL
from tests.support.processes import alive, clean_env, descendants, free_port, wait_for


@pytest.fixture
def empty_database(backend: str, tmp_path: Path) -> Iterator[str]:
    """The URL of a database with no tables: a new SQLite file, or a new PostgreSQL schema."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh' / 'memrelay.db'}"
        return
    assert PG_URL
    base = Settings(database_url=PG_URL).sql_url
    schema = f"memrelay_migrate_{uuid.uuid4().hex[:10]}"
    eng = sa.create_engine(base)
    with eng.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        yield f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    finally:
        with eng.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        eng.dispose()


def test_concurrent_migrations_on_an_empty_database_all_succeed(empty_database: str, tmp_path: Path) -> None:
    env = clean_env(MEMRELAY_DATABASE_URL=empty_database, MEMRELAY_DATA_DIR=str(tmp_path / "data"))
    procs = [subprocess.Popen([sys.executable, "-m", "memrelay.cli.main", "migrate"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(3)]
    outputs = [p.communicate(timeout=180)[0].decode(errors="replace") for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], "\n---\n".join(outputs)
    eng = sa.create_engine(empty_database)
    with eng.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == current_head()
    eng.dispose()


def test_sigterm_on_serve_stops_gunicorn_and_frees_the_port(settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    env = clean_env(MEMRELAY_DATA_DIR=str(settings.data_dir), MEMRELAY_DATABASE_URL=settings.sql_url,
                    MEMRELAY_REDIS_URL=str(settings.redis_url), MEMRELAY_MILVUS_URI=str(tmp_path / "serve-milvus.db"),
                    MEMRELAY_PORT=str(port), MEMRELAY_WEB_WORKERS="2", MEMRELAY_LOG_JSON="false")
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "memrelay.cli.main", "serve"], env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)

    def healthy() -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    try:
        assert wait_for(healthy, 90), log_path.read_text()[-3000:]
        family = descendants(proc.pid)
        assert len(family) >= 3  # gunicorn master + 2 web workers
    finally:
        os.kill(proc.pid, signal.SIGTERM)  # to `serve` alone, as a process manager does
        proc.wait(60)
    assert wait_for(lambda: not [p for p in family if alive(p)], 15), "gunicorn outlived `memrelay serve`"
    # the port is free: binding it succeeds
    import socket

    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
