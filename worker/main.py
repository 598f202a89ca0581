"""Worker entry point: an RQ worker on every memrelay queue."""

from __future__ import annotations

from rq import Worker

from engine.logging_setup import configure_logging
from engine.settings import Settings
from worker.connection import QUEUES, connect


def run_worker(settings: Settings, *, burst: bool = False, name: str | None = None) -> bool:
    """Process jobs until stopped (or until the queues are empty with ``burst``)."""
    configure_logging(settings.log_level, json_logs=settings.log_json)
    conn = connect(settings)
    w = Worker(list(QUEUES), connection=conn, name=name)
    return bool(w.work(burst=burst, with_scheduler=True, logging_level=settings.log_level))
