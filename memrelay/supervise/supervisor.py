"""`memrelay up`: embedded services + gunicorn + N ``memrelay worker`` processes, all stopped together on
SIGINT/SIGTERM (a worker killed otherwise is restarted; its job is recovered by the sweeper)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from memrelay.composition import Services
from memrelay.engine.core.settings import Settings
from memrelay.supervise.embedded import EmbeddedMilvus, EmbeddedRedis, _die_with_parent, _port_open


@dataclass
class EmbeddedServices:
    """Embedded Redis / Milvus Lite started by this process (and the env that points children at them)."""

    env: dict[str, str] = field(default_factory=dict)
    redis: EmbeddedRedis | None = None
    milvus: EmbeddedMilvus | None = None

    def stop(self) -> None:
        if self.milvus:
            self.milvus.stop()
        if self.redis:
            self.redis.stop()


def ensure_embedded_services(settings: Settings, *, with_milvus: bool = True) -> EmbeddedServices:
    """Start the embedded Redis and Milvus Lite unless configured externally or already running."""
    out = EmbeddedServices()
    if settings.uses_embedded_redis:
        r = EmbeddedRedis(settings.embedded_redis_socket)
        if not r.is_alive():
            out.redis = r.start()
        out.env["MEMRELAY_REDIS_URL"] = r.url
    if with_milvus and settings.milvus_uri is None:
        port_file = settings.data_dir / "milvus.port"
        port = int(port_file.read_text()) if port_file.exists() else None
        if port and _port_open(port):
            out.env["MEMRELAY_MILVUS_URI"] = f"http://127.0.0.1:{port}"
        else:
            out.milvus = EmbeddedMilvus(Path(settings.milvus_target)).start()
            port_file.write_text(str(out.milvus.port))
            out.env["MEMRELAY_MILVUS_URI"] = out.milvus.uri
    return out


def ensure_admin_key(engine: Services, settings: Settings) -> Path:
    """On first start create org 'default' with an admin key, written once to <data dir>/admin_key."""
    path = settings.data_dir / "admin_key"
    if not engine.tenancy.has_any_key():
        org = engine.tenancy.get_or_create_org("default")
        plaintext, _ = engine.tenancy.create_key(org.id, scopes=["read", "write", "admin"], name="admin")
        path.write_text(plaintext + "\n")
        path.chmod(0o600)
    return path


def gunicorn_command(settings: Settings) -> list[str]:
    """Gunicorn without preload (``memrelay.gateway.gunicorn_conf``): each web worker builds its app after fork."""
    return [sys.executable, "-m", "gunicorn", "-c", "python:memrelay.gateway.gunicorn_conf",
            "--bind", f"{settings.host}:{settings.port}", "--workers", str(settings.web_workers),
            "memrelay.gateway.wsgi:app"]


def worker_command() -> list[str]:
    """One ``memrelay worker`` process: builds its services once and runs jobs itself (no fork per job)."""
    return [sys.executable, "-m", "memrelay.cli.main", "worker"]


STOP_TIMEOUT_S = 25.0
"""Longer than a worker's warm-shutdown grace (``memrelay.worker.runtime.WARM_SHUTDOWN_GRACE_S``, 15 s)."""


class Supervisor:
    """Runs children in the foreground and tears everything down on a signal."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.stopping = False

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str]) -> None:
        self.children[name] = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)

    def run(self) -> int:
        s = self.settings
        s.ensure_data_dir()
        engine = Services(s)
        engine.migrate()
        key_path = ensure_admin_key(engine, s)
        engine.close()
        services = ensure_embedded_services(s)
        prom = s.data_dir / "prometheus"
        shutil.rmtree(prom, ignore_errors=True)
        prom.mkdir(parents=True)
        env = {**os.environ, **services.env, "PROMETHEUS_MULTIPROC_DIR": str(prom)}
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)
        try:
            self._spawn("gateway", gunicorn_command(s), env)
            for i in range(s.workers):
                self._spawn(f"worker-{i}", worker_command(), env)
            print(f"memrelay is up: http://{s.host}:{s.port}  (docs: /docs, readiness: /readyz)", flush=True)
            print(f"admin API key: {key_path.resolve()}", flush=True)
            print(f"data dir: {s.data_dir.resolve()}  (Ctrl-C stops everything)", flush=True)
            while not self.stopping:
                for name, proc in list(self.children.items()):
                    if proc.poll() is None:
                        continue
                    if name == "gateway":
                        print(f"gateway exited with {proc.returncode}; shutting down", file=sys.stderr)
                        self.stopping = True
                        break
                    print(f"{name} exited with {proc.returncode}; restarting", file=sys.stderr)
                    self._spawn(name, worker_command(), env)
                time.sleep(0.5)
        finally:
            self.shutdown()
            services.stop()
        return 0

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.stopping = True

    def shutdown(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM every child (workers finish their job within their grace period), SIGKILL after ``timeout``."""
        for proc in self.children.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.children.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
