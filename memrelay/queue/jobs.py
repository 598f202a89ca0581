"""The job table and the one enqueue helper.

Every background job memrelay runs is declared once in :data:`JOBS`: its name, its function (a dotted path,
so this package never imports ``memrelay.worker``), queue, timeout, result and failure TTLs, its retry
policy (from :mod:`memrelay.engine.core.backoff`), who drives the retries and what happens when they are
exhausted. Every caller — gateway blueprints, worker loops, jobs, CLI — enqueues through :func:`enqueue`
(or :func:`enqueue_each` for the common "one job per SQL row id" case), so no call site carries numbers.

Job functions receive the worker's :class:`memrelay.worker.context.JobContext` as their first argument,
then the arguments given here (ids and plain JSON).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import redis
from redis.client import Pipeline
from rq import Retry
from rq.job import Job

from memrelay.engine.core.access import refuse_if_restricted
from memrelay.engine.core.backoff import BATCH_CHUNKS, DELIVERIES, EVENTS, NO_RETRY, RetryPolicy
from memrelay.engine.stores.event_log import LEASE_S
from memrelay.queue.connection import queue

log = logging.getLogger(__name__)

RetriedBy = Literal["rq", "owner", "nobody"]
"""``rq``: the policy is attached to the job as ``rq.Retry``; ``owner``: the job is one attempt and the SQL
log that owns the work (event log, delivery log) schedules the next attempt by the policy and re-enqueues;
``nobody``: one attempt."""

HOUR = 3600
DAY = 24 * HOUR
WORKER_PACKAGE = "memrelay.worker.jobs"


@dataclass(frozen=True)
class JobSpec:
    """One kind of job: where it runs, how long it may take and live, and how it is retried."""

    name: str
    func: str
    queue: str
    timeout_s: int
    result_ttl_s: int
    failure_ttl_s: int
    retry: RetryPolicy
    retried_by: RetriedBy
    on_exhausted: str
    description: str
    job_id: str | None = None
    """How the job id is formed from the arguments (``str.format``), when the job must be addressable by the
    SQL row that owns it (a given ``job_id`` wins); None: rq's random id."""

    def job_id_for(self, args: Sequence[Any], kwargs: dict[str, Any]) -> str | None:
        return self.job_id.format(*args, **kwargs) if self.job_id else None

    def rq_retry(self) -> Retry | None:
        """The ``rq.Retry`` to attach, when rq drives this job's retries."""
        if self.retried_by != "rq" or self.retry.max_retries < 1:
            return None
        return Retry(max=self.retry.max_retries, interval=[int(s) for s in self.retry.intervals()])


def _spec(name: str, module: str, queue_name: str, timeout_s: int, result_ttl_s: int, failure_ttl_s: int,
          retry: RetryPolicy, retried_by: RetriedBy, on_exhausted: str, description: str,
          job_id: str | None = None) -> JobSpec:
    return JobSpec(name, f"{WORKER_PACKAGE}.{module}.{name}", queue_name, timeout_s, result_ttl_s, failure_ttl_s,
                   retry, retried_by, on_exhausted, description, job_id)


JOBS: dict[str, JobSpec] = {s.name: s for s in (
    # job id = event id; shorter than the event lease, so a lease never expires under a live job
    _spec("process_event", "events", "events", LEASE_S - 30, HOUR, 7 * DAY, EVENTS, "owner",
          "the event log marks the event dead (event.failed is emitted; `memrelay events replay` retries it)",
          "event {0}"),
    # job id = delivery id; > the 15 s HTTP timeout
    _spec("deliver", "deliver", "deliver", 60, HOUR, 7 * DAY, DELIVERIES, "owner",
          "the delivery log marks the delivery dead (redeliver from the API)", "webhook delivery {0}"),
    _spec("run_prompt", "generate", "generate", 600, DAY, DAY, NO_RETRY, "nobody",
          "failed job; GET /api/v1/jobs/<id> shows the error", "prompt run for {0}"),
    _spec("run_agent", "generate", "generate", 600, DAY, DAY, NO_RETRY, "nobody",
          "failed job; GET /api/v1/jobs/<id> shows the error", "agent {1} run for {0}"),
    # job id = "<run id>-<chunk index>"; the chunk row in SQL counts attempts, and the sweeper re-drives a
    # chunk whose job is gone (worker killed, Redis lost) or that failed, once its wait passed
    _spec("process_batch_chunk", "memorize", "memorize", 1800, DAY, 7 * DAY, BATCH_CHUNKS, "owner",
          "the batch run records the chunk's rows as failed; the run ends partial or failed", "batch {0} chunk {2}",
          job_id="{0}-{2}"),
    # job id = run id; steps retry in process (the workflow_steps policy)
    _spec("run_workflow", "workflow", "default", 1800, 7 * DAY, 7 * DAY, NO_RETRY, "nobody",
          "the run is recorded failed with its step errors", "workflow run {0}"),
    # enrichment (memrelay.engine.enrichment): job id = "<run id>-<chunk index>"; a chunk is done once, and a
    # failed one is recorded on its run (POST /enrichment/runs/<id>/resume or `memrelay enrich --resume`)
    _spec("run_enrichment_chunk", "enrich", "default", 1800, DAY, 7 * DAY, NO_RETRY, "nobody",
          "the chunk and its run are recorded failed; resuming the run re-runs it", "enrichment {0} chunk {2}",
          job_id="{0}-{2}"),
    # deduplicated per process tick / per org (fixed job ids); stale marks stay in SQL until refreshed
    _spec("sweep_enrichment", "enrich", "default", 600, HOUR, DAY, NO_RETRY, "nobody",
          "failed job; the next tick sweeps again from the same cursor", "enrichment change sweep",
          job_id="enrichment-sweep"),
    _spec("refresh_inferred", "enrich", "default", 1800, HOUR, DAY, NO_RETRY, "nobody",
          "failed job; the stale marks stay and the next sweep enqueues it again", "refresh inferred of {0}",
          job_id="enrichment-refresh-{0}"),
    # the next scheduled run resumes an unfinished one
    _spec("sync_source", "sync", "default", 6 * HOUR, 7 * DAY, 7 * DAY, NO_RETRY, "nobody",
          "failed job; the next scheduled sync resumes from the last finished run", "CRM sync of {source_id}"),
)}


CALLER_JOBS = frozenset({"run_prompt", "run_agent", "process_batch_chunk"})
"""Jobs an API caller starts (the others are the system's own: deliveries, sweeps, syncs)."""


def spec(name: str) -> JobSpec:
    try:
        return JOBS[name]
    except KeyError:
        raise ValueError(f"unknown job {name!r}; jobs: {sorted(JOBS)}") from None


def enqueue(conn: redis.Redis, name: str, *args: Any, kwargs: dict[str, Any] | None = None,
            job_id: str | None = None, delay_s: float | None = None, meta: dict[str, Any] | None = None,
            description: str | None = None, pipeline: Pipeline | None = None) -> Job:
    """Enqueue job ``name`` of :data:`JOBS` with ``args``/``kwargs`` (ids and plain JSON).

    ``job_id`` makes the job addressable (and a re-enqueue replaces it); ``delay_s`` schedules it (run by
    the workers' scheduler); ``pipeline`` batches many enqueues into one round trip (the caller executes
    it). Raises ``redis.RedisError`` when Redis is unreachable.

    A job runs in a worker without its caller's department scope, so a department-restricted caller cannot
    queue caller-initiated work (403; see :mod:`memrelay.engine.core.access`)."""
    if name in CALLER_JOBS:
        refuse_if_restricted(f"queue a background job ({name}); run it synchronously")
    s = spec(name)
    q = queue(conn, s.queue)
    job = q.create_job(s.func, args=args, kwargs=kwargs or {}, timeout=s.timeout_s, result_ttl=s.result_ttl_s,
                       failure_ttl=s.failure_ttl_s, job_id=job_id or s.job_id_for(args, kwargs or {}), meta=meta,
                       retry=s.rq_retry(),
                       description=description or s.description.format(*args, **(kwargs or {})))
    if delay_s:
        return q.schedule_job(job, datetime.now(UTC) + timedelta(seconds=delay_s), pipeline=pipeline)
    return q.enqueue_job(job, pipeline=pipeline)


def chunk_job_id(run_id: str, chunk_index: int) -> str:
    """The id of batch chunk ``chunk_index``'s job (see ``process_batch_chunk`` in :data:`JOBS`)."""
    return str(spec("process_batch_chunk").job_id_for((run_id, None, chunk_index), {}))


def enqueue_each(conn: redis.Redis, name: str, ids: Sequence[str]) -> list[str]:
    """One job ``name(id)`` per id, job id = the id, in one round trip. Returns the ids enqueued: on a Redis
    outage none (logged), and the SQL log that owns them (events, deliveries) re-drives them later."""
    if not ids:
        return []
    try:
        with conn.pipeline() as pipe:
            for one in ids:
                enqueue(conn, name, one, job_id=one, pipeline=pipe)
            pipe.execute()
    except redis.RedisError as exc:
        log.warning("could not enqueue %d %s job(s) (%s); they stay due in SQL and are re-driven", len(ids),
                    name, exc)
        return []
    return list(ids)


LIVE_STATUSES = ("queued", "scheduled", "started", "deferred")


def live_job_ids(conn: redis.Redis, job_ids: Sequence[str]) -> set[str]:
    """The ids whose job exists in Redis and is queued, scheduled, running or deferred."""
    if not job_ids:
        return set()
    with conn.pipeline() as pipe:
        for jid in job_ids:
            pipe.hget(f"{Job.redis_job_namespace_prefix}{jid}", "status")
        statuses = pipe.execute()
    return {jid for jid, st in zip(job_ids, statuses, strict=True)
            if st is not None and st.decode() in LIVE_STATUSES}


def workflow_run_enqueuer(conn: redis.Redis) -> Callable[[str], None]:
    """What ``memrelay.workflows.triggers`` calls to queue a run it wrote to SQL (job id = run id). On a
    Redis outage the run stays ``queued`` in SQL and the failure is logged."""

    def enqueue_run(run_id: str) -> None:
        try:
            enqueue(conn, "run_workflow", run_id, job_id=run_id)
        except redis.RedisError as exc:
            log.warning("could not enqueue workflow run %s: %s", run_id, exc)

    return enqueue_run
