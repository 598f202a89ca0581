"""`memrelay up`: embedded services + web workers + N RQ workers under one supervisor.

The supervisor is the one warm parent (:func:`memrelay.supervise.warm_parent.preload_parent`: modules, the
embedder's weights, the token encoding, what the services import): it opens the gateway's listening socket and
forks the web workers — gunicorn's worker class with ``memrelay serve``'s settings, supervised here instead of
by a gunicorn master (:mod:`memrelay.supervise.web_workers`) — and the RQ workers, so all of them share those
pages copy-on-write and nothing is loaded twice. Each RQ worker then runs exactly what ``memrelay worker`` runs
(:func:`run_worker_process`), each web worker what a ``memrelay serve`` worker runs (its config
:mod:`memrelay.supervise.gunicorn_warm`); each builds its own services, connections and threads after the fork.
Where this process cannot fork safely they are started as their own processes instead: gunicorn with its
master (which then loads what its web workers share itself) and ``memrelay worker``.

Every child it owns — the embedded Redis (its AOF keeps the queue), the Milvus Lite server (same port),
each web worker and each RQ worker — is restarted when it dies (a web worker also when its heartbeat stops), with
exponential backoff (:class:`Backoff`); a child that keeps dying is given up on and everything stops.
SIGINT/SIGTERM stop the web and RQ workers first (web workers finish their requests, RQ workers finish or requeue
their job), then the services; every child also gets SIGTERM if the supervisor itself dies
(``PR_SET_PDEATHSIG``), so no process outlives ``up``."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from memrelay.composition import Services
from memrelay.engine.core.settings import Settings
from memrelay.supervise.embedded import EmbeddedMilvus, EmbeddedRedis, die_with_parent, port_open
from memrelay.supervise.forked import ForkedProcess
from memrelay.supervise.web_workers import WebWorkerProcess, WebWorkers


@dataclass
class EmbeddedServices:
    """Embedded Redis / Milvus Lite started by this process (and the env that points children at them)."""

    env: dict[str, str] = field(default_factory=dict)
    redis: EmbeddedRedis | None = None
    milvus: EmbeddedMilvus | None = None
    deferred_milvus: EmbeddedMilvus | None = None  # lazy: its port is reserved and announced, not started yet
    milvus_wanted: Path | None = None  # touched by a child that needs the deferred Milvus
    on_demand_marker: Path | None = None  # "<supervisor pid> <port>" while the deferred Milvus is not started

    def stop(self) -> None:
        if self.on_demand_marker is not None:
            self.on_demand_marker.unlink(missing_ok=True)
        if self.milvus:
            self.milvus.stop()
        if self.redis:
            self.redis.stop()


def ensure_embedded_services(settings: Settings, *, with_milvus: bool = True,
                             lazy_milvus: bool = False) -> EmbeddedServices:
    """Start the embedded Redis and Milvus Lite unless configured externally or already running.

    ``lazy_milvus`` (``memrelay up`` with ``MEMRELAY_MILVUS_LAZY``, the default): Milvus Lite is not started;
    its port is chosen and passed to the children with the file that asks for it
    (``MEMRELAY_MILVUS_WANTED_FILE``), and the supervisor starts it when needed (:meth:`Supervisor.run`)."""
    out = EmbeddedServices()
    if settings.uses_embedded_redis:
        r = EmbeddedRedis(settings.embedded_redis_socket)
        if not r.is_alive():
            out.redis = r.start()
        out.env["MEMRELAY_REDIS_URL"] = r.url
    if with_milvus and settings.milvus_uri is None:
        port_file = settings.data_dir / "milvus.port"
        port = int(port_file.read_text()) if port_file.exists() else None
        if port and (port_open(port) or _ask_running_up(settings.data_dir, port)):
            out.env["MEMRELAY_MILVUS_URI"] = f"http://127.0.0.1:{port}"
        elif lazy_milvus:
            out.deferred_milvus = EmbeddedMilvus(Path(settings.milvus_target), avoid=(settings.port,))
            port_file.write_text(str(out.deferred_milvus.port))
            out.milvus_wanted = settings.data_dir / "milvus.wanted"
            out.milvus_wanted.unlink(missing_ok=True)
            out.on_demand_marker = settings.data_dir / ON_DEMAND_MARKER
            out.on_demand_marker.write_text(f"{os.getpid()} {out.deferred_milvus.port}")
            out.env["MEMRELAY_MILVUS_URI"] = out.deferred_milvus.uri
            out.env["MEMRELAY_MILVUS_WANTED_FILE"] = str(out.milvus_wanted.resolve())
        else:
            out.milvus = EmbeddedMilvus(Path(settings.milvus_target), avoid=(settings.port,)).start()
            port_file.write_text(str(out.milvus.port))
            out.env["MEMRELAY_MILVUS_URI"] = out.milvus.uri
    return out


ON_DEMAND_MARKER = "milvus.ondemand"


def _ask_running_up(data_dir: Path, port: int, timeout: float = 90.0) -> bool:
    """Another command (``memrelay reindex``, ``check-index``) on the data dir of a running `memrelay up` whose
    Milvus Lite is deferred: ask that supervisor to start it (its wanted file) and wait, rather than start a
    second server on the same locked data dir. False when no live `up` defers Milvus on ``port``."""
    marker = data_dir / ON_DEMAND_MARKER
    try:
        pid_text, port_text = marker.read_text().split()
        os.kill(int(pid_text), 0)
    except (OSError, ValueError):
        return False
    if int(port_text) != port:
        return False
    (data_dir / "milvus.wanted").touch()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port):
            return True
        time.sleep(0.2)
    return False


def largest_org_memories(engine: Services) -> int:
    """The number of live memories of the org that has most."""
    from sqlalchemy import func, select

    from memrelay.engine.stores.db.models import Memory

    with engine.db.read() as s:
        q = (select(func.count()).where(Memory.deleted_at.is_(None)).group_by(Memory.org_id)
             .order_by(func.count().desc()).limit(1))
        return int(s.scalar(q) or 0)


def ensure_admin_key(engine: Services, settings: Settings) -> Path:
    """On first start create org 'default' with an admin key, written once to <data dir>/admin_key."""
    path = settings.data_dir / "admin_key"
    if not engine.tenancy.has_any_key():
        org = engine.tenancy.get_or_create_org("default")
        plaintext, _ = engine.tenancy.create_key(org.id, scopes=["read", "write", "admin"], name="admin")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # never readable by others, not even briefly
        with os.fdopen(fd, "w") as f:
            f.write(plaintext + "\n")
        path.chmod(0o600)
    return path


def prepare_database(settings: Settings, *, fork: bool = True) -> int:
    """Migrate the database and create the first admin key (:func:`ensure_admin_key`); 0 when done.

    With ``fork``, in a short-lived child forked before anything heavy is loaded here: the migration machinery
    (alembic and the migration scripts, ~110 modules and ~7 MB) and the pool it used then never enter this warm
    parent, whose pages every child it forks later inherits (each counts them in its RSS)."""

    def migrate() -> int:
        engine = Services(settings)
        try:
            engine.migrate()
            ensure_admin_key(engine, settings)
        finally:
            engine.close()
        return 0

    from memrelay.warmup import NotForkSafe, fork_safe_or_raise

    try:
        if fork:
            fork_safe_or_raise("fork the migration")
    except NotForkSafe:
        fork = False
    if not fork:
        return migrate()
    from memrelay.supervise.forked import fork_child

    return fork_child("memrelay-migrate", migrate).wait()


def gunicorn_args(settings: Settings) -> list[str]:
    """Gunicorn's arguments: a warm master (:mod:`memrelay.supervise.gunicorn_warm`) that loads what the web
    workers share; each web worker builds its app after fork. `up` forks the web workers with the same settings."""
    return ["-c", "python:memrelay.supervise.gunicorn_warm", "--bind", f"{settings.host}:{settings.port}",
            "--workers", str(settings.web_workers), GATEWAY_APP]


GATEWAY_APP = "memrelay.gateway.wsgi:app"
GATEWAY_PROCESS_NAME = "memrelay-web"
"""``/proc/<pid>/comm`` of the web workers forked by ``memrelay up``."""


def gunicorn_command(settings: Settings) -> list[str]:
    """Gunicorn as its own process (``memrelay serve``, and ``up`` when it cannot fork)."""
    return [sys.executable, "-m", "gunicorn", *gunicorn_args(settings)]


def run_gateway(settings: Settings) -> int:
    """``memrelay serve``: gunicorn in the foreground. SIGTERM/SIGINT are passed on to it (it drains its
    requests and stops its web workers) and waited for, so nothing keeps the port after ``serve`` exits;
    gunicorn also gets SIGTERM if this process dies."""
    settings.ensure_data_dir()
    services = ensure_embedded_services(settings)
    env = {**os.environ, **services.env}
    try:
        proc = subprocess.Popen(gunicorn_command(settings), env=env, preexec_fn=die_with_parent)

        def forward(signum: int, _frame: object) -> None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, forward)
        try:
            return proc.wait()
        finally:
            _terminate(proc, STOP_TIMEOUT_S)
    finally:
        services.stop()


def worker_command() -> list[str]:
    """One ``memrelay worker`` process: builds its services once and runs jobs itself (no fork per job)."""
    return [sys.executable, "-m", "memrelay.cli.main", "worker"]


def run_worker_process(settings: Settings, *, burst: bool = False, name: str | None = None,
                       grace_s: float | None = None) -> int:
    """What ``memrelay worker`` runs — also in a worker forked by ``memrelay up``: the embedded services it
    needs (started unless they run), then :func:`memrelay.worker.main.run_worker` on settings read again from
    the environment (which now points at them). 0 when the worker stopped cleanly."""
    from memrelay.engine.core.settings import load_settings
    from memrelay.supervise.warm_parent import tune_malloc
    from memrelay.worker.main import run_worker
    from memrelay.worker.runtime import WARM_SHUTDOWN_GRACE_S

    tune_malloc()  # inherited already by a worker forked from `memrelay up`; set again, the same values
    embedded = ensure_embedded_services(settings)
    os.environ.update(embedded.env)
    try:
        run_worker(load_settings(), burst=burst, name=name,
                   grace_s=WARM_SHUTDOWN_GRACE_S if grace_s is None else grace_s)
    finally:
        embedded.stop()
    return 0


WORKER_PROCESS_NAME = "memrelay-worker"
"""``/proc/<pid>/comm`` of an RQ worker forked by ``memrelay up`` (its command line is the supervisor's)."""


def _forked_worker() -> int:
    from memrelay.engine.core.settings import load_settings

    return run_worker_process(load_settings())  # a settings error: traceback and exit 1 (fork_child)


STOP_TIMEOUT_S = 25.0
"""Longer than a worker's warm-shutdown grace (``memrelay.worker.runtime.WARM_SHUTDOWN_GRACE_S``, 15 s)."""


@dataclass
class Backoff:
    """Restart delays for one child: ``initial_s`` doubling up to ``max_s``; a child that ran for
    ``healthy_after_s`` starts over. After ``give_up_after`` deaths in a row without a healthy run the
    supervisor stops (a gateway that cannot bind its port must not spin forever)."""

    initial_s: float = 0.5
    max_s: float = 30.0
    healthy_after_s: float = 30.0
    give_up_after: int = 8
    failures: int = 0

    def record_exit(self, ran_for_s: float) -> float:
        """Count one death; the delay before the next start."""
        if ran_for_s >= self.healthy_after_s:
            self.failures = 0
        self.failures += 1
        return min(self.max_s, self.initial_s * 2 ** (self.failures - 1))

    @property
    def exhausted(self) -> bool:
        return self.failures >= self.give_up_after


@dataclass
class Child:
    """One supervised process: how to start it, the running process and its restart state."""

    name: str
    spawn: Callable[[], subprocess.Popen[bytes]]
    stop: Callable[[subprocess.Popen[bytes]], None]
    is_service: bool = False
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restart_at: float | None = None
    backoff: Backoff = field(default_factory=Backoff)

    def start(self) -> None:
        self.proc = self.spawn()
        self.started_at = time.monotonic()
        self.restart_at = None


def _terminate(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Supervisor:
    """Runs children in the foreground, restarts the ones that die and tears everything down on a signal."""

    def __init__(self, settings: Settings, *, poll_s: float = 0.25, org_check_s: float = 30.0,
                 fork_workers: bool = True):
        self.settings = settings
        self.fork_workers = fork_workers
        """The web workers and the RQ workers are forked from this (warm) process and share its loaded pages;
        False: each one is a process of its own, gunicorn (with its master) or ``memrelay worker`` (also the
        fallback when this process cannot fork safely)."""
        self.poll_s = poll_s
        self.org_check_s = org_check_s
        self.children: dict[str, Child] = {}
        self.stopping = False
        self.exit_code = 0
        self._services: EmbeddedServices | None = None
        self._engine: Services | None = None
        self._next_org_check = 0.0
        self.web: WebWorkers | None = None

    def add(self, name: str, spawn: Callable[[], subprocess.Popen[bytes]], *, is_service: bool = False,
            stop: Callable[[subprocess.Popen[bytes]], None] = _terminate) -> Child:
        child = Child(name, spawn, stop, is_service=is_service)
        self.children[name] = child
        return child

    def _command(self, cmd: list[str], env: dict[str, str]) -> Callable[[], subprocess.Popen[bytes]]:
        return lambda: subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)

    def _forked_or_exec(self, name: str, target: Callable[[], int], exec_cmd: list[str],
                        env: dict[str, str]) -> Callable[[], subprocess.Popen[bytes]]:
        """Start a child forked from this warm process when it can fork safely (see :meth:`_fork`), else as
        its own process running ``exec_cmd``."""
        exec_child = self._command(exec_cmd, env)

        def spawn() -> subprocess.Popen[bytes]:
            if self.fork_workers:
                from memrelay.warmup import NotForkSafe

                try:
                    return cast("subprocess.Popen[bytes]", self._fork(name, target, env))
                except NotForkSafe as exc:
                    print(f"{exc}; starting {name} as its own process", file=sys.stderr, flush=True)
            return exec_child()

        return spawn

    def _worker(self, env: dict[str, str]) -> Callable[[], subprocess.Popen[bytes]]:
        """One RQ worker: what ``memrelay worker`` runs, forked from this process or as its own process."""
        return self._forked_or_exec(WORKER_PROCESS_NAME, _forked_worker, worker_command(), env)

    def _web_worker(self, web: WebWorkers, env: dict[str, str]) -> Callable[[], subprocess.Popen[bytes]]:
        """One web worker forked from this process over ``web``'s listening sockets (see
        :mod:`memrelay.supervise.web_workers`). It cannot fall back to a process of its own: this process
        forks, or it starts gunicorn's own master (:meth:`run`)."""
        from memrelay.supervise.gunicorn_warm import WORKER_TITLE

        def spawn() -> subprocess.Popen[bytes]:
            proc = web.fork_worker(lambda serve: self._fork(GATEWAY_PROCESS_NAME, serve, env, title=WORKER_TITLE,
                                                            web=True))
            return cast("subprocess.Popen[bytes]", proc)

        return spawn

    def _fork(self, name: str, target: Callable[[], int], env: dict[str, str], *,
              title: str | None = None, web: bool = False) -> ForkedProcess:
        """Fork a child running ``target``: it shares the pages :func:`preload_parent` loaded here and builds
        its own services, connections and threads after the fork.

        Nothing live crosses the fork: no other thread (refused), no pooled SQL connection (this process's pool
        is closed first and the child drops its copy of the pool without touching the parent's sockets); the
        gateway's listening sockets only into a web worker (``web``)."""
        import gc

        from memrelay.supervise.forked import fork_child
        from memrelay.warmup import fork_safe_or_raise

        fork_safe_or_raise(f"fork {name}")
        engine = self._engine
        if engine is not None:
            engine.db.dispose()  # the org check reconnects on its next query

        listening = self.web

        def in_child() -> None:
            if engine is not None:
                engine.db.engine.dispose(close=False)
                engine.db.read_engine.dispose(close=False)
            if listening is not None and not web:
                listening.drop_in_child()

        gc.freeze()  # what this process allocated since the last freeze stays shared too
        return fork_child(name, target, env=env, before_child=in_child, title=title)

    def _preload(self, env: dict[str, str]) -> None:
        """Become the children's warm parent: the environment they run in (read at import by e.g.
        prometheus_client), then what they all load, once (:func:`preload_parent`). A parent that cannot fork
        safely starts its children as their own processes instead."""
        from memrelay.supervise.warm_parent import preload_parent
        from memrelay.warmup import NotForkSafe

        os.environ.update(env)
        try:
            preload_parent(self.settings)
        except NotForkSafe as exc:
            print(f"{exc}; the gateway and workers start as their own processes", file=sys.stderr, flush=True)
            self.fork_workers = False
        except Exception as exc:  # each child loads (and reports) it again after the fork
            print(f"preloading for the children failed ({exc.__class__.__name__}: {exc}); they load "
                  "everything themselves", file=sys.stderr, flush=True)

    def run(self) -> int:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)
        s = self.settings
        s.ensure_data_dir()
        code = prepare_database(s, fork=self.fork_workers)
        if code != 0:
            if self.stopping:  # interrupted while migrating
                return self.exit_code
            print(f"preparing the database failed (exit {code}): see the error above", file=sys.stderr, flush=True)
            return code
        key_path = s.data_dir / "admin_key"
        services = ensure_embedded_services(s, lazy_milvus=s.milvus_lazy)
        self._services = services
        if services.deferred_milvus is not None:
            self._engine = Services(s)  # its SQL pool answers "has an org outgrown exact search?"
        try:
            if services.redis is not None:
                self._adopt("redis", services.redis.proc, services.redis.spawn)
            if services.milvus is not None:
                self._adopt("milvus", services.milvus.proc, services.milvus.spawn)
            prom = s.data_dir / "prometheus"
            shutil.rmtree(prom, ignore_errors=True)
            prom.mkdir(parents=True)
            env = {**os.environ, **services.env, "PROMETHEUS_MULTIPROC_DIR": str(prom)}
            if self.fork_workers:
                self._preload(env)
            if self.fork_workers:  # web workers forked from here; else gunicorn's own master forks them
                self.web = WebWorkers(gunicorn_args(s))
                for i in range(s.web_workers):
                    self.add(f"web-{i}", self._web_worker(self.web, env)).start()
            else:
                self.add("gateway", self._command(gunicorn_command(s), env)).start()
            for i in range(s.workers):
                self.add(f"worker-{i}", self._worker(env)).start()
            print(f"memrelay is up: http://{s.host}:{s.port}  (docs: /docs, readiness: /readyz)", flush=True)
            print(f"admin API key: {key_path.resolve()}", flush=True)
            print(f"data dir: {s.data_dir.resolve()}  (Ctrl-C stops everything)", flush=True)
            while not self.stopping:
                self.watch_once()
                self.start_milvus_if_needed()
                time.sleep(self.poll_s)
        finally:
            self.shutdown()
            if self.web is not None:
                self.web.close()
            services.stop()
            if self._engine is not None:
                self._engine.close()
        return self.exit_code

    def start_milvus_if_needed(self) -> bool:
        """Start the deferred Milvus Lite once a child asks for it (its wanted file) or an org has more live
        memories than exact in-process search serves (checked every ``org_check_s``); True when started.

        Until then memories stay ``pending`` for the index; the workers' periodic reconcile indexes them once
        Milvus answers."""
        services = self._services
        if services is None or services.deferred_milvus is None or self.stopping:
            return False
        wanted = services.milvus_wanted is not None and services.milvus_wanted.exists()
        reason = "requested" if wanted else None
        now = time.monotonic()
        if reason is None and self._engine is not None and now >= self._next_org_check:
            self._next_org_check = now + self.org_check_s
            # past it, org-wide recall and similar use Milvus (MEMRELAY_EXACT_SEARCH_MAX_ROWS)
            if largest_org_memories(self._engine) > self._engine.settings.exact_search_max_rows:
                reason = "an organisation outgrew exact search"
        if reason is None:
            return False
        milvus, services.deferred_milvus = services.deferred_milvus, None
        print(f"starting Milvus Lite ({reason})", file=sys.stderr, flush=True)
        self.add("milvus", milvus.spawn, is_service=True).start()
        services.milvus = milvus
        if services.milvus_wanted is not None:
            services.milvus_wanted.unlink(missing_ok=True)
        if services.on_demand_marker is not None:
            services.on_demand_marker.unlink(missing_ok=True)
            services.on_demand_marker = None
        if self._engine is not None:
            self._engine.close()
            self._engine = None
        return True

    def _adopt(self, name: str, proc: subprocess.Popen[bytes] | None,
               spawn: Callable[[], subprocess.Popen[bytes]]) -> None:
        """Supervise an embedded service that :func:`ensure_embedded_services` already started."""
        child = self.add(name, spawn, is_service=True)
        child.proc, child.started_at = proc, time.monotonic()

    def watch_once(self) -> None:
        """One round: notice children that died, schedule their restart, start the ones that are due."""
        now = time.monotonic()
        for child in self.children.values():
            if child.restart_at is not None:
                if now >= child.restart_at and not self.stopping:
                    print(f"restarting {child.name}", file=sys.stderr, flush=True)
                    child.start()
                continue
            if isinstance(child.proc, WebWorkerProcess) and (done := child.proc.check_heartbeat()):
                print(f"{child.name} sent no heartbeat for {child.proc.timeout:.0f} s: {done}", file=sys.stderr,
                      flush=True)
            if child.proc is None or child.proc.poll() is None:
                continue
            if isinstance(child.proc, WebWorkerProcess) and child.proc.returncode == 0 and not self.stopping:
                # a web worker's clean exit: it recycled itself (gunicorn's max_requests), not a failure to back
                # off from; its successor is forked at once, as gunicorn's arbiter does (the socket stays open)
                print(f"{child.name} recycled itself; starting a new one", file=sys.stderr, flush=True)
                child.start()
                continue
            delay = child.backoff.record_exit(now - child.started_at)
            if child.backoff.exhausted:
                print(f"{child.name} exited with {child.proc.returncode} {child.backoff.failures} times in a row; "
                      "giving up and shutting down", file=sys.stderr, flush=True)
                self.exit_code = 1
                self.stopping = True
                return
            print(f"{child.name} exited with {child.proc.returncode}; restarting in {delay:.1f} s",
                  file=sys.stderr, flush=True)
            child.restart_at = now + delay

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.stopping = True

    def shutdown(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM the gateway and workers (workers finish their job within their grace period), SIGKILL after
        ``timeout``; then stop the services they use (the caller stops the embedded ones it started)."""
        procs = [c.proc for c in self.children.values() if not c.is_service and c.proc is not None]
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for child in self.children.values():
            if child.is_service and child.proc is not None:
                child.stop(child.proc)
