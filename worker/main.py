"""Worker entry point: an RQ worker on every memrelay queue."""

from __future__ import annotations

import logging
import threading

from rq import Worker

from memrelay.composition import Services
from memrelay.engine.core.logging_setup import configure_logging
from memrelay.engine.core.settings import Settings
from memrelay.queue.connection import QUEUES, connect
from memrelay.worker.context import set_engine
from memrelay.worker.jobs.deliver import start_dispatcher
from memrelay.worker.sweeper import start_sweeper


def run_worker(settings: Settings, *, burst: bool = False, name: str | None = None) -> bool:
    """Process jobs until stopped (or until the queues are empty with ``burst``)."""
    configure_logging(settings.log_level, json_logs=settings.log_json)
    conn = connect(settings)
    eng = Services(settings)
    set_engine(eng)
    stop = threading.Event()
    if not burst:
        start_sweeper(eng, conn, stop)
        start_dispatcher(eng, conn, stop)
        threading.Thread(target=_reconcile, args=(eng,), name="memrelay-reconcile", daemon=True).start()
    try:
        w = Worker(list(QUEUES), connection=conn, name=name)
        return bool(w.work(burst=burst, with_scheduler=True, logging_level=settings.log_level))
    finally:
        stop.set()


def _reconcile(eng) -> None:  # type: ignore[no-untyped-def]
    """Bring the vector index up to date with SQL after a crash (pending writes, tombstones)."""
    try:
        eng.sync_index()
    except Exception:
        logging.getLogger(__name__).exception("index reconciliation failed; `memrelay check-index --repair`")
