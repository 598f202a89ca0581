"""Revoking a key takes effect on the very next request in every process that shares the database: another
app instance, other gunicorn web workers, another ``memrelay serve`` (SQLite, and PostgreSQL + Redis when
``MEMRELAY_TEST_POSTGRES_URL`` / ``MEMRELAY_TEST_REDIS_URL`` are set)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from memrelay.composition import Services
from memrelay.engine.core.settings import Settings
from memrelay.engine.stores.db.database import Database
from memrelay.gateway.app import create_app
from memrelay.supervise.supervisor import gunicorn_command
from tests.support.processes import clean_env, free_port


def test_revoked_in_one_app_refused_by_the_next_request_of_another(settings: Settings, engine: Services,
                                                                    backend: str) -> None:
    app_a = create_app(settings, services=engine)
    other = Services(settings, db=Database(settings.sql_url))  # a second process's services: its own caches
    try:
        app_b = create_app(settings, services=other)
        org = engine.tenancy.get_or_create_org(f"revoke-{backend}-{time.monotonic_ns()}")
        admin, _ = engine.tenancy.create_key(org.id, scopes=["read", "write", "admin"])
        victim, row = engine.tenancy.create_key(org.id, scopes=["read"])
        a, b = app_a.test_client(), app_b.test_client()
        for _ in range(3):  # the victim is known (and was cached, before this fix) in both
            assert b.get("/api/v1/me", headers={"Authorization": f"Bearer {victim}"}).status_code == 200
        assert a.delete(f"/api/v1/keys/{row.id}", headers={"Authorization": f"Bearer {admin}"}).status_code == 200
        refused = b.get("/api/v1/me", headers={"Authorization": f"Bearer {victim}"})
        assert refused.status_code == 401 and refused.json["error"]["code"] == "unauthorized"
        # and through the engine directly (MCP, console): the same store answers
        assert b.get("/api/v1/me", headers={"X-API-Key": admin}).status_code == 200
    finally:
        other.close()


@contextmanager
def _gateway(settings: Settings, tmp_path: Path, name: str) -> Iterator[int]:
    port = free_port()
    s = settings.model_copy(update={"port": port, "web_workers": 2})
    env = clean_env(MEMRELAY_DATA_DIR=str(settings.data_dir), MEMRELAY_DATABASE_URL=settings.sql_url,
                    MEMRELAY_REDIS_URL=str(settings.redis_url), MEMRELAY_MILVUS_URI=str(tmp_path / f"{name}.db"),
                    MEMRELAY_LOG_JSON="false", MEMRELAY_LOG_LEVEL="WARNING")
    log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(gunicorn_command(s), cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline, ok = time.monotonic() + 90, False
        while time.monotonic() < deadline and proc.poll() is None and not ok:
            try:
                ok = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
            except requests.RequestException:
                time.sleep(0.3)
        assert ok, (tmp_path / f"{name}.log").read_text()[-3000:]
        yield port
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def _me(port: int, key: str) -> Any:
    return requests.get(f"http://127.0.0.1:{port}/api/v1/me", headers={"Authorization": f"Bearer {key}"},
                        timeout=10)


@pytest.mark.parametrize(("backend", "redis_backend"), [("sqlite", "embedded"), ("postgres", "external")],
                         indirect=True)
def test_revoked_through_one_server_refused_by_every_worker_of_another(settings: Settings, engine: Services,
                                                                        tmp_path: Path, backend: str,
                                                                        redis_backend: str) -> None:
    org = engine.tenancy.get_or_create_org(f"revoke-procs-{backend}-{time.monotonic_ns()}")
    admin, _ = engine.tenancy.create_key(org.id, scopes=["read", "write", "admin"])
    victim, row = engine.tenancy.create_key(org.id, scopes=["read"])
    with _gateway(settings, tmp_path, "one") as one, _gateway(settings, tmp_path, "two") as two:
        for _ in range(8):  # every web worker of both servers has served the key
            assert _me(one, victim).status_code == 200 and _me(two, victim).status_code == 200
        revoked = requests.delete(f"http://127.0.0.1:{one}/api/v1/keys/{row.id}",
                                  headers={"Authorization": f"Bearer {admin}"}, timeout=10)
        assert revoked.status_code == 200, revoked.text
        statuses = [_me(two, victim).status_code for _ in range(8)] + [_me(one, victim).status_code]
        assert statuses == [401] * 9
        assert _me(two, admin).status_code == 200
