"""Periodic maintenance run inside workers (each task in one worker at a time, under a fenced Redis lease
with a round deadline — see :mod:`memrelay.worker.periodic`): recover the jobs of dead workers, re-enqueue
events the log says are due, batch chunks and queued workflow runs whose job is gone, start due scheduled
workflows, purge expired soft deletes, index memories left pending (a Milvus write that failed after its SQL
commit), and store current readings for memories whose stored readings are missing or stale."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable

import redis
from rq.registry import StartedJobRegistry

from memrelay.composition import Services
from memrelay.engine.core.util import utcnow
from memrelay.engine.domain import readings
from memrelay.engine.stores.memory_readings import refresh_readings
from memrelay.engine.stores.retention import purge_history
from memrelay.queue import redis_keys
from memrelay.queue.connection import QUEUES
from memrelay.queue.jobs import chunk_job_id, enqueue, enqueue_each, live_job_ids, workflow_run_enqueuer
from memrelay.worker.periodic import Round, run_periodically, run_round
from memrelay.workflows import store
from memrelay.workflows.triggers import tick

log = logging.getLogger(__name__)
SWEEP_EVERY_S = 5
SWEEP_DEADLINE_S = 10
PURGE_EVERY_S = 3600
PURGE_DEADLINE_S = 300
SCHEDULE_EVERY_S = 60
SCHEDULE_DEADLINE_S = 30
RECONCILE_EVERY_S = 30
RECONCILE_DEADLINE_S = 120
SNAPSHOT_EVERY_S = 15
READINGS_EVERY_S = 30
READINGS_DEADLINE_S = 10  # pure-Python work in a job process: at most ~1/3 of a period, so jobs keep the GIL
READINGS_BATCH = 500  # ~70 ms of reading texts per batch


def _unguarded() -> None:
    """No lease to check (a direct call, e.g. from tests or the CLI)."""


def recover_abandoned(services: Services, conn: redis.Redis, *, guard: Callable[[], None] = _unguarded) -> int:
    """Fail (or retry, per the job table) the jobs of workers that stopped heart-beating, then give back the
    leases of events whose job is no longer alive in Redis (its worker died, or it ran without the lease).
    Returns how many leases were given back."""
    for name in QUEUES:
        guard()
        StartedJobRegistry(name, connection=conn).cleanup()
    leased = services.events.leased()
    alive = live_job_ids(conn, leased)
    guard()
    return services.events.release([e for e in leased if e not in alive])


def sweep_once(services: Services, conn: redis.Redis, *, stale_after_s: int = 30,
               guard: Callable[[], None] = _unguarded) -> int:
    """Recover dead workers' events, then enqueue every event received but not waiting in Redis, failed and
    due, or whose lease was given back or expired. Returns how many were enqueued. ``guard`` runs before
    every write (the sweeper lease's check)."""
    released = recover_abandoned(services, conn, guard=guard)
    if released:
        log.warning("re-driving %d event(s) whose worker died", released)
    due = services.events.due(stale_after_s=stale_after_s)
    waiting = live_job_ids(conn, due)
    guard()
    return len(enqueue_each(conn, "process_event", [e for e in due if e not in waiting]))


def redrive_chunks(services: Services, conn: redis.Redis, *, stale_after_s: int = 30,
                   guard: Callable[[], None] = _unguarded) -> tuple[int, int]:
    """Batch chunks whose job is not alive in Redis: enqueue again the due ones (a dead worker's, a lost
    job's, a failed attempt's after its wait), give up those whose attempts ran out (their rows become row
    errors). Returns (re-enqueued, given up). Run after :func:`recover_abandoned` (which fails dead workers'
    jobs, so they no longer look alive)."""
    pending = services.batches.pending_chunks()
    if not pending:
        return 0, 0
    alive = live_job_ids(conn, [chunk_job_id(c.run_id, c.chunk_index) for c in pending])
    now = utcnow()
    redriven = given_up = 0
    for c in pending:
        if chunk_job_id(c.run_id, c.chunk_index) in alive or not c.due(now, stale_after_s=stale_after_s):
            continue
        guard()
        if c.status == "running" and c.exhausted:
            given_up += services.batches.give_up_chunk(c.run_id, c.org_id, c.chunk_index)
            continue
        try:
            enqueue(conn, "process_batch_chunk", c.run_id, c.org_id, c.chunk_index)
            redriven += 1
        except redis.RedisError as exc:
            log.warning("could not re-enqueue batch chunk %s/%d: %s", c.run_id, c.chunk_index, exc)
            break
    return redriven, given_up


def requeue_workflow_runs(services: Services, conn: redis.Redis, *, stale_after_s: int = 30,
                          guard: Callable[[], None] = _unguarded) -> int:
    """Enqueue again workflow runs still ``queued`` in SQL after ``stale_after_s`` whose job is not in Redis
    (Redis was down when they were started, or lost its data). Returns how many."""
    queued = store.stale_queued_runs(services.db, older_than_s=stale_after_s)
    waiting = live_job_ids(conn, queued)
    guard()
    return len(enqueue_each(conn, "run_workflow", [r for r in queued if r not in waiting]))


def reconcile_index(services: Services, rnd: Round) -> dict[str, int]:
    """Index memories left pending and apply tombstones, batch by batch within the round."""
    result = services.index.reconcile(between=rnd.guard)
    if any(result.values()):
        log.info("index reconciled: %s", result)
    return result


def _sweep(services: Services, conn: redis.Redis, rnd: Round) -> None:
    n = sweep_once(services, conn, guard=rnd.guard)
    if n:
        log.info("sweeper enqueued %d events", n)
    redriven, given_up = redrive_chunks(services, conn, guard=rnd.guard)
    if redriven or given_up:
        log.warning("batch chunks: %d re-enqueued, %d given up", redriven, given_up)
    runs = requeue_workflow_runs(services, conn, guard=rnd.guard)
    if runs:
        log.warning("re-enqueued %d queued workflow run(s) missing from Redis", runs)


def _tick(services: Services, conn: redis.Redis, rnd: Round) -> None:
    rnd.guard()
    tick(services, enqueue=workflow_run_enqueuer(conn))


def _purge(services: Services, rnd: Round) -> None:
    rnd.guard()
    purged = services.records.purge_expired()
    if purged:
        log.info("purged %d expired soft-deleted records", purged)
    rnd.guard()
    log.info("retention: %s", purge_history(services.db))


def sweep_round(services: Services, conn: redis.Redis) -> None:
    """One maintenance round; each task runs in one worker at a time at its own pace."""
    run_round(conn, "sweeper", every_s=SWEEP_EVERY_S - 1, deadline_s=SWEEP_DEADLINE_S,
              body=lambda rnd: _sweep(services, conn, rnd))
    run_round(conn, "workflow-tick", every_s=SCHEDULE_EVERY_S, deadline_s=SCHEDULE_DEADLINE_S,
              body=lambda rnd: _tick(services, conn, rnd))
    run_round(conn, "purge", every_s=PURGE_EVERY_S, deadline_s=PURGE_DEADLINE_S,
              body=lambda rnd: _purge(services, rnd))


def start_sweeper(services: Services, conn: redis.Redis, stop: threading.Event,
                  every_s: float = SWEEP_EVERY_S) -> threading.Thread:
    """A daemon thread running the maintenance rounds until ``stop`` is set."""
    return run_periodically("sweeper", every_s, lambda: sweep_round(services, conn), stop)


def start_reconciler(services: Services, conn: redis.Redis, stop: threading.Event,
                     every_s: float = RECONCILE_EVERY_S) -> threading.Thread:
    """A daemon thread indexing pending memories about every ``every_s`` in one worker at a time (its own
    thread: a long reconcile never delays the sweeper)."""
    return run_periodically("index-reconcile", every_s, lambda: reconcile_round(services, conn, every_s), stop)


def reconcile_round(services: Services, conn: redis.Redis, every_s: float = RECONCILE_EVERY_S) -> bool:
    """One index-reconcile round under its lease; True when it ran."""
    return run_round(conn, "index-reconcile", every_s=every_s, deadline_s=RECONCILE_DEADLINE_S,
                     body=lambda rnd: reconcile_index(services, rnd))


def start_readings_refresher(services: Services, conn: redis.Redis, stop: threading.Event,
                             every_s: float = READINGS_EVERY_S) -> threading.Thread:
    """A daemon thread refreshing stale memory readings about every ``every_s`` in one worker at a time (its own
    thread: a pass over every memory after a reading-code change must not delay the sweeper or index reconcile)."""
    return run_periodically("memory-readings", every_s, lambda: refresh_readings_round(services, conn, every_s), stop)


def refresh_readings_round(services: Services, conn: redis.Redis, every_s: float = READINGS_EVERY_S, *,
                           batch: int = READINGS_BATCH) -> bool:
    """One memory-readings round under its lease; True when it ran. Once the pass for the current reading code
    (``READINGS_VERSION``) has finished, a round is one Redis GET (no lease) until that code changes: memories are
    written with current readings, so a finished pass stays finished."""
    try:
        if _readings_cursor(conn) == (readings.READINGS_VERSION, None):
            return False
    except redis.RedisError:
        return False  # as run_round does when Redis is unreachable: the next round tries again
    return run_round(conn, "memory-readings", every_s=every_s, deadline_s=READINGS_DEADLINE_S,
                     body=lambda rnd: refresh_memory_readings(services, conn, rnd, batch=batch))


def refresh_memory_readings(services: Services, conn: redis.Redis, rnd: Round, *, batch: int = READINGS_BATCH) -> int:
    """Store current readings for the memories whose stored ones are missing or stale, ``batch`` memories (by id) at
    a time from where the last round stopped, until the round's deadline or the end of the table. The cursor
    (``[READINGS_VERSION, last id scanned]``, the id null once the pass finished) is kept in Redis after every
    batch, so a pass resumes across rounds, workers and restarts; another reading code starts a new pass. Returns
    how many memories were updated."""
    version = readings.READINGS_VERSION
    cursor = _readings_cursor(conn)
    after: str | None = cursor[1] if cursor is not None and cursor[0] == version else ""
    updated = 0
    try:
        while after is not None:
            rnd.guard()
            after, n = refresh_readings(services.db, after_id=after, limit=batch)
            updated += n
            conn.set(redis_keys.readings_cursor(), json.dumps([version, after]))
    finally:
        if updated:
            log.info("memory readings refreshed: %d (pass %s)", updated,
                     "finished" if after is None else f"at {after}")
    return updated


def _readings_cursor(conn: redis.Redis) -> tuple[str, str | None] | None:
    """(reading code version, last memory id scanned or None once its pass finished) from Redis; None when there is
    no (readable) cursor, i.e. a pass starts from the beginning."""
    raw = conn.get(redis_keys.readings_cursor())
    try:
        version, last = json.loads(raw) if raw is not None else (None, None)
    except (TypeError, ValueError):
        return None
    if not isinstance(version, str) or not (last is None or isinstance(last, str)):
        return None
    return version, last


def rebuild_org_snapshots(services: Services) -> list[str]:
    """Rebuild the org-wide recall snapshots of this host that are due (off the request path). Not leased in
    Redis: snapshots live in this host's data directory, and their file lock lets one builder run per org."""
    with services.db.read() as s:
        rebuilt = services.recall.exact.rebuild_due(s)
    if rebuilt:
        log.info("org-wide recall snapshots rebuilt: %s", ", ".join(rebuilt))
    return rebuilt


def start_snapshot_builder(services: Services, stop: threading.Event,
                           every_s: float = SNAPSHOT_EVERY_S) -> threading.Thread:
    """A daemon thread rebuilding due org-wide recall snapshots about every ``every_s`` (its own thread: a
    rebuild at 1M memories takes ~20 s)."""
    return run_periodically("org-snapshots", every_s, lambda: rebuild_org_snapshots(services), stop)
