"""Worker entry point (``memrelay worker``): one process that builds its services once and runs jobs itself.

Start-up order matters and never forks: build the services and the Redis client, start the maintenance
threads (sweeper, webhook dispatcher, rq scheduler, periodic index reconcile, org-wide recall snapshot
rebuilds, memory readings refresh, embedder warm-up + a first reconcile), then run :class:`MemrelayWorker` on every memrelay queue in the main thread (so rq's SIGALRM
job timeouts work).
"""

from __future__ import annotations

import logging
import threading

from memrelay.composition import Services, build_services
from memrelay.engine.core.logging_setup import configure_logging
from memrelay.engine.core.settings import Settings
from memrelay.queue.connection import QUEUES, connect
from memrelay.worker.context import JobContext
from memrelay.worker.jobs.deliver import start_dispatcher
from memrelay.worker.jobs.enrich import start_enrichment
from memrelay.worker.runtime import WARM_SHUTDOWN_GRACE_S, MemrelayWorker
from memrelay.worker.scheduler import schedule_once, start_scheduler
from memrelay.worker.sweeper import (
    start_readings_refresher,
    start_reconciler,
    start_snapshot_builder,
    start_sweeper,
)

log = logging.getLogger(__name__)


def run_worker(settings: Settings, *, burst: bool = False, name: str | None = None,
               services: Services | None = None, grace_s: float = WARM_SHUTDOWN_GRACE_S) -> bool:
    """Process jobs until stopped (SIGTERM: warm shutdown), or until the queues are empty with ``burst``.

    ``services`` are built here from ``settings`` unless given (only the profiling bench passes its own, to count its
    SQL; tests run the worker as ``memrelay worker`` does)."""
    configure_logging(settings.log_level, json_logs=settings.log_json)
    own = services is None
    context = JobContext(services=services or build_services(settings), redis=connect(settings))
    stop = threading.Event()
    worker = MemrelayWorker(QUEUES, context=context, name=name, grace_s=grace_s)
    if burst:
        schedule_once(context.redis, QUEUES)
    else:
        from memrelay.warmup import warm_services

        # before it registers: a live worker is a warm one (/readyz); org-wide index left to the web workers
        warm_services(context.services, org_index=False)
        start_maintenance(context, stop)
    try:
        return bool(worker.work(burst=burst, with_scheduler=False, logging_level=settings.log_level))
    finally:
        stop.set()
        if own:
            context.services.close()


def start_maintenance(context: JobContext, stop: threading.Event) -> list[threading.Thread]:
    """The background loops of a worker process (each coordinated across workers by Redis locks)."""
    threads = [start_sweeper(context.services, context.redis, stop),
               start_dispatcher(context.services, context.redis, stop),
               start_scheduler(context.redis, QUEUES, stop),
               start_reconciler(context.services, context.redis, stop),
               start_enrichment(context.services, context.redis, stop),
               start_snapshot_builder(context.services, stop),
               start_readings_refresher(context.services, context.redis, stop)]
    reconcile = threading.Thread(target=_reconcile, args=(context.services,), name="memrelay-reconcile",
                                 daemon=True)
    reconcile.start()
    return [*threads, reconcile]


def _reconcile(services: Services) -> None:
    """Load the embedder now (once per process, not on the first job), then bring the vector index up to
    date with SQL after a crash (pending writes, tombstones)."""
    try:
        services.embedder.get()
        services.index.reconcile()
    except Exception:
        log.exception("index reconciliation failed; `memrelay check-index --repair`")
