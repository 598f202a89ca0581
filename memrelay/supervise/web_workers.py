"""`memrelay up`'s web workers, forked straight from its warm supervisor: gunicorn's own worker class
(``gthread``, :mod:`memrelay.supervise.gunicorn_warm`'s settings) over a listening socket the supervisor opened,
with no gunicorn master in between.

A gunicorn master forked from the warm parent held a full copy of the parent's pages in its resident set
(~130 MB at 50k memories) to do three things, which the supervisor now does itself: open the listening sockets
(:func:`gunicorn.sock.create_sockets`, once, before the first web worker is forked), fork each worker (the
worker object with its heartbeat file is made here, as the arbiter makes it, then
:meth:`~gunicorn.workers.base.Worker.init_process` runs in the child: it warms, then serves until SIGTERM,
finishing its requests within ``graceful_timeout``), and watch each worker's heartbeat
(:meth:`WebWorkerProcess.check_heartbeat`: a worker silent for ``timeout`` seconds gets SIGABRT, and SIGKILL
:data:`ABORT_GRACE_S` later, as gunicorn's arbiter does; the supervisor then restarts it like any child). A
worker's clean exit (it recycled itself after ``max_requests``) is replaced at once, without backoff.

``memrelay serve``, and ``up`` where it cannot fork, still run gunicorn's arbiter with these settings.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from memrelay.supervise.forked import ForkedProcess

ABORT_GRACE_S = 5.0
"""After SIGABRT, how long a silent web worker has to exit before SIGKILL."""


def gunicorn_application(args: list[str]) -> Any:
    """Gunicorn's WSGI application (settings and app URI) for gunicorn command-line ``args``, as the
    ``gunicorn`` command builds it (``GUNICORN_CMD_ARGS`` included), without starting an arbiter."""
    from gunicorn.app.wsgiapp import WSGIApplication

    argv = sys.argv
    sys.argv = ["gunicorn", *args]
    try:
        return WSGIApplication("%(prog)s [OPTIONS] [APP_MODULE]")
    finally:
        sys.argv = argv


class WebWorkerProcess(ForkedProcess):
    """A forked web worker, with the gunicorn worker object whose heartbeat file the supervisor reads."""

    def __init__(self, proc: ForkedProcess, worker: Any, timeout: float) -> None:
        super().__init__(proc.pid, proc.args)
        self.worker = worker
        self.timeout = timeout
        self.aborted_at: float | None = None

    def silent_for(self) -> float:
        """Seconds since the worker last notified its heartbeat (0 once it exited)."""
        if self.returncode is not None:
            return 0.0
        try:
            return time.monotonic() - float(self.worker.tmp.last_update())
        except (OSError, ValueError):
            return 0.0

    def check_heartbeat(self) -> str | None:
        """SIGABRT a worker silent for longer than ``timeout``, SIGKILL one still there :data:`ABORT_GRACE_S`
        later; what was done, if anything."""
        if self.poll() is not None:
            return None
        if self.aborted_at is not None:
            if time.monotonic() - self.aborted_at >= ABORT_GRACE_S:
                self.kill()
                return "killed"
            return None
        if self.timeout and self.silent_for() > self.timeout:
            self.aborted_at = time.monotonic()
            self.send_signal(signal.SIGABRT)
            return "aborted"
        return None

    def poll(self) -> int | None:
        code = super().poll()
        if code is not None:
            self.worker.tmp.close()  # idempotent
        return code


class WebWorkers:
    """The listening sockets and the gunicorn settings every forked web worker serves with."""

    def __init__(self, args: list[str]) -> None:
        from gunicorn import sock

        self.app = gunicorn_application(args)
        self.cfg = self.app.cfg
        self.log = self.cfg.logger_class(self.cfg)
        self.listeners = sock.create_sockets(self.cfg, self.log)
        self.age = 0
        self.running: list[WebWorkerProcess] = []

    def fork_worker(self, fork: Callable[[Callable[[], int]], ForkedProcess]) -> WebWorkerProcess:
        """One web worker: its gunicorn worker object (and heartbeat file) made here, then ``fork(serve)``;
        ``serve`` runs in the child."""
        self.age += 1
        worker = self.cfg.worker_class(self.age, os.getpid(), self.listeners, self.app, self.cfg.timeout / 2.0,
                                       self.cfg, self.log)
        siblings = [p.worker.tmp for p in self.running if p.poll() is None]

        def serve() -> int:
            for tmp in siblings:  # as gunicorn's arbiter: a worker holds no other worker's heartbeat file
                tmp.close()
            worker.pid = os.getpid()
            self.log.info("Booting worker with pid: %s", worker.pid)
            worker.init_process()  # warms (post_worker_init), then serves until it is told to stop
            return 0

        proc = WebWorkerProcess(fork(serve), worker, float(self.cfg.timeout or 0))
        self.running = [p for p in self.running if p.poll() is None] + [proc]
        return proc

    def drop_in_child(self) -> None:
        """In another forked child (an RQ worker): close the listening sockets and heartbeat files it inherited."""
        for s in self.listeners:
            s.close()
        for p in self.running:
            p.worker.tmp.close()

    def close(self) -> None:
        """Close the listening sockets (a Unix socket's file is removed)."""
        from gunicorn import sock

        sock.close_sockets(self.listeners, unlink=True)
        self.listeners = []
