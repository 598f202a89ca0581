"""The production worker class: jobs run in the worker process itself (no fork per job).

:class:`MemrelayWorker` is rq's :class:`~rq.SimpleWorker` (``perform_job`` in the main thread, so rq's
``UnixSignalDeathPenalty`` — ``SIGALRM`` — still enforces each job's timeout) plus:

- every job gets the process's :class:`~memrelay.worker.context.JobContext` (services built once);
- while a job runs, a heartbeat thread refreshes the job's entry in rq's ``StartedJobRegistry`` every
  :data:`HEARTBEAT_EVERY_S` with a short TTL (:data:`HEARTBEAT_TTL_S`), so a worker killed mid-job is
  recognised within seconds by ``StartedJobRegistry.cleanup()`` (the sweeper calls it), not after the
  job's timeout;
- SIGTERM is a warm shutdown: the current job may finish for ``grace_s``; then the worker stops it
  (cold) and puts it back at the front of its queue for another worker.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from types import FrameType
from typing import Any

import redis
from rq import SimpleWorker, worker_registration
from rq.executions import Execution
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.utils import utcparse
from rq.worker import WorkerStatus

from memrelay.queue.workers import IDLE_BEAT_S, STALE_AFTER_S, WORKER_TTL_S
from memrelay.worker.context import ContextJob, JobContext

log = logging.getLogger(__name__)
HEARTBEAT_EVERY_S = 2.0
HEARTBEAT_TTL_S = 10
WARM_SHUTDOWN_GRACE_S = 15.0
REGISTRATION_CHECK_S = 2.0


class MemrelayWorker(SimpleWorker):
    """An rq worker that performs jobs in its own process with the services it was given."""

    job_class = ContextJob

    max_connection_wait_time = 5.0
    """Back off at most this long between attempts while Redis is down (rq's default is 60 s)."""

    def __init__(self, queues: Sequence[str], *, context: JobContext, connection: redis.Redis | None = None,
                 grace_s: float = WARM_SHUTDOWN_GRACE_S, **kwargs: Any):
        """``connection`` is the worker's own (rq raises its socket timeout for blocking dequeues); it
        defaults to a client on the same server as ``context.redis``."""
        own = connection or redis.Redis(connection_pool=redis.ConnectionPool(
            connection_class=context.redis.connection_pool.connection_class,
            **context.redis.connection_pool.connection_kwargs))
        kwargs.setdefault("worker_ttl", WORKER_TTL_S)
        super().__init__(list(queues), connection=own, job_class=ContextJob, **kwargs)
        self.context = context
        self.grace_s = grace_s
        self._cold_stop = False
        self._grace_timer: threading.Timer | None = None
        self._registration_checked = 0.0

    # --- jobs run here, with the context, under a heartbeat --------------------------------------------------
    def execute_job(self, job: Job, queue: Queue) -> None:
        if isinstance(job, ContextJob):
            job.context = self.context
        execution = self.prepare_execution(job)
        with self._heartbeat(job, execution):
            self.perform_job(job, queue, execution)
        self.set_state(WorkerStatus.IDLE)

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        """Short: the heartbeat thread renews it while the job runs; a dead worker's job expires fast."""
        return HEARTBEAT_TTL_S

    @contextmanager
    def _heartbeat(self, job: Job, execution: Execution) -> Iterator[None]:
        done = threading.Event()

        def beat() -> None:
            while not done.wait(HEARTBEAT_EVERY_S):
                try:
                    self.maintain_heartbeats(job, execution)
                except Exception:  # a missed beat is retried; the job itself is not disturbed
                    log.warning("heartbeat for job %s failed", job.id, exc_info=True)

        thread = threading.Thread(target=beat, name=f"memrelay-heartbeat-{job.id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join(HEARTBEAT_EVERY_S + 5)

    # --- a dead predecessor under the same name does not block start-up -------------------------------------
    def register_birth(self) -> None:
        """rq's registration, after clearing a registration left under this name by a worker that died without
        registering its death (``kill -9``): rq would refuse the name until that key expires. A worker still
        alive under the name (fresh heartbeat, process alive) keeps it, and rq refuses this one."""
        deadline = time.monotonic() + STALE_AFTER_S + IDLE_BEAT_S
        while self._predecessor_alive() and time.monotonic() < deadline:
            time.sleep(1.0)  # another host's worker: wait for its heartbeat to go stale
        if self.connection.exists(self.key) and not self._predecessor_alive():
            log.warning("worker %s: clearing the registration of a dead worker with the same name", self.name)
            with self.connection.pipeline() as p:
                worker_registration.unregister(self, p)
                p.delete(self.key)
                p.execute()
        super().register_birth()

    def _predecessor_alive(self) -> bool:
        """Whether a live worker is registered under this name (False: none, or a dead one's leftovers)."""
        host, pid, beat, death = (v.decode() if isinstance(v, bytes) else v for v in self.connection.hmget(
            self.key, "hostname", "pid", "last_heartbeat", "death"))
        if death is not None or (host is None and beat is None):
            return False
        if host is not None and host == self.hostname and pid is not None:
            other = int(pid)
            if other == os.getpid() or not _process_exists(other):
                return False
        if beat is None:
            return True
        last = utcparse(beat)
        if last.tzinfo is None:
            last = last.replace(tzinfo=UTC)
        return (datetime.now(UTC) - last).total_seconds() <= STALE_AFTER_S

    # --- registration survives a Redis that came back empty -----------------------------------------------
    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        """rq's heartbeat, plus: if this worker is no longer registered (Redis restarted without its data),
        register again, so ``/readyz`` and the sweeper see it as soon as Redis is back."""
        if pipeline is None and self.birth_date is not None and self._registration_due() and not self._is_registered():
            log.warning("worker %s: not registered in Redis (restarted empty?); registering again", self.name)
            with self.connection.pipeline() as p:
                p.hset(self.key, mapping=self.serialize())
                worker_registration.register(self, p)
                p.execute()
        super().heartbeat(timeout, pipeline)

    def _registration_due(self) -> bool:
        """Check the registration at most every :data:`REGISTRATION_CHECK_S` (rq beats several times per job:
        one check per beat was a tenth of a job's Redis round trips)."""
        now = time.monotonic()
        if now - self._registration_checked < REGISTRATION_CHECK_S:
            return False
        self._registration_checked = now
        return True

    def _is_registered(self) -> bool:
        return bool(self.connection.sismember(worker_registration.REDIS_WORKER_KEYS, self.key))

    # --- shutdown: warm within a grace period, then cold with the job requeued ------------------------------
    def handle_warm_shutdown_request(self) -> None:
        super().handle_warm_shutdown_request()
        if self.get_state() == WorkerStatus.BUSY and self._grace_timer is None:
            log.info("worker %s: finishing the current job (up to %.0f s) before stopping", self.name, self.grace_s)
            self._grace_timer = threading.Timer(self.grace_s, os.kill, args=(os.getpid(), signal.SIGTERM))
            self._grace_timer.daemon = True
            self._grace_timer.start()

    def request_force_stop(self, signum: int, frame: FrameType | None) -> None:
        self._cold_stop = True
        super().request_force_stop(signum, frame)

    def handle_job_failure(self, job: Job, queue: Queue, started_job_registry: Any = None, exc_string: str = "",
                           execution: Execution | None = None) -> None:
        super().handle_job_failure(job, queue, started_job_registry=started_job_registry, exc_string=exc_string,
                                   execution=execution)
        if self._cold_stop and job.get_status(refresh=True) == JobStatus.FAILED:
            try:
                queue.failed_job_registry.requeue(job, at_front=True)
                log.warning("worker %s stopped during job %s: requeued it", self.name, job.id)
            except Exception:
                log.exception("could not requeue job %s after a cold stop", job.id)

    def teardown(self) -> None:
        if self._grace_timer is not None:
            self._grace_timer.cancel()
        super().teardown()


def _process_exists(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True
