"""A scale-out memrelay deployment as real processes: N ``memrelay serve`` gateways and N ``memrelay worker``
processes on one PostgreSQL schema, one Redis logical database and one Milvus URI (used by tests/scale and
bench/bench_scale.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import redis
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from tests.support.processes import clean_env, free_port, readyz, wait_for

REPO = Path(__file__).resolve().parents[2]


class Cluster:
    """Gateways and workers sharing ``database_url``, ``redis_url`` and ``milvus_uri``; logs under ``log_dir``."""

    def __init__(self, *, database_url: str, redis_url: str, milvus_uri: str, log_dir: Path,
                 web_workers: int = 2) -> None:
        self.application_name = f"mrcluster_{uuid.uuid4().hex[:10]}"
        """Every cluster process's PostgreSQL ``application_name`` (see :func:`terminate_pg_backends`)."""
        sep = "&" if "?" in database_url else "?"
        self.database_url = f"{database_url}{sep}application_name={self.application_name}"
        self.redis_url, self.milvus_uri = redis_url, milvus_uri
        self.log_dir, self.web_workers = log_dir, web_workers
        self.gateways: dict[str, tuple[int, subprocess.Popen[bytes]]] = {}
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        log_dir.mkdir(parents=True, exist_ok=True)

    def _env(self, name: str, **extra: str) -> dict[str, str]:
        return clean_env(MEMRELAY_DATA_DIR=str(self.log_dir / f"data-{name}"), MEMRELAY_DATABASE_URL=self.database_url,
                         MEMRELAY_REDIS_URL=self.redis_url, MEMRELAY_MILVUS_URI=self.milvus_uri,
                         MEMRELAY_LOG_JSON="false", MEMRELAY_LOG_LEVEL="WARNING",
                         PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]), **extra)

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        with open(self.log_dir / f"{name}.log", "ab") as log:
            return subprocess.Popen([sys.executable, "-m", "memrelay.cli.main", *args], cwd=REPO, env=env,
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def start_gateway(self, name: str) -> int:
        """Start ``memrelay serve`` on a free port; returns the port once ``/readyz`` answers."""
        port = free_port()
        proc = self._spawn(name, ["serve"], self._env(name, MEMRELAY_HOST="127.0.0.1", MEMRELAY_PORT=str(port),
                                                      MEMRELAY_WEB_WORKERS=str(self.web_workers)))
        self.gateways[name] = (port, proc)
        assert wait_for(lambda: proc.poll() is not None or readyz(port) == 200, 120), self.log(name)
        assert proc.poll() is None, self.log(name)
        return port

    def start_worker(self, name: str) -> None:
        """Start ``memrelay worker --name name`` and wait until it registered with RQ."""
        proc = self._spawn(name, ["worker", "--name", name], self._env(name))
        self.workers[name] = proc
        conn = redis.Redis.from_url(self.redis_url)

        def registered() -> bool:  # by this process (a killed predecessor's stale entry does not count)
            return conn.hget(f"rq:worker:{name}", "pid") == str(proc.pid).encode()

        assert wait_for(lambda: proc.poll() is not None or registered(), 90), self.log(name)
        assert proc.poll() is None, self.log(name)

    def kill_worker(self, name: str) -> None:
        """``kill -9`` the worker's whole process group (no cleanup runs)."""
        proc = self.workers[name]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)

    def gateway_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.gateways[name][0]}"

    def log(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def terminate_pg_backends(self, admin_url: str) -> int:
        """``pg_terminate_backend`` every PostgreSQL connection of this cluster's processes (through
        ``admin_url``, a connection that is not the cluster's). Returns how many were terminated."""
        engine = sa.create_engine(admin_url, poolclass=NullPool)
        try:
            with engine.begin() as conn:
                return int(conn.execute(sa.text(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = :name AND pid <> pg_backend_pid()"),
                    {"name": self.application_name}).scalar() or 0)
        finally:
            engine.dispose()

    def stop(self) -> None:
        """SIGTERM every process group, then SIGKILL what is left after a grace period."""
        procs = [p for _, p in self.gateways.values()] + list(self.workers.values())
        for proc in procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 20
        for proc in procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(10)


def kill_redis_clients(redis_url: str) -> int:
    """``CLIENT KILL`` every connection on ``redis_url``'s logical database except this call's own; the shared
    server's other databases (other test runs) are left alone. Returns how many were killed."""
    conn = redis.Redis.from_url(redis_url)
    db = conn.connection_pool.connection_kwargs.get("db", 0)
    me = conn.client_id()
    killed = 0
    for client in conn.client_list():
        if int(client.get("db", -1)) == db and int(client["id"]) != me:
            try:
                conn.client_kill_filter(_id=client["id"])
                killed += 1
            except redis.ResponseError:
                pass  # already gone
    return killed
