"""What a job function receives: the services its worker process built once, and the worker's Redis.

A job function is ``def job(ctx: JobContext, *ids_and_json) -> result``. The worker entry point
(:func:`memrelay.worker.main.run_worker`) builds the :class:`JobContext`; :class:`ContextJob` passes it
as the first argument. Nothing here builds services from the environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis
from rq.job import Job

from memrelay.composition import Services


@dataclass(frozen=True)
class JobContext:
    """Per-process: built once by the worker entry point, shared by every job the process runs."""

    services: Services
    redis: redis.Redis


class ContextJob(Job):
    """An rq job whose function is called with the worker's :class:`JobContext` first.

    The worker sets :attr:`context` on each job it is about to perform; a job performed without one (e.g.
    by a plain ``rq`` worker that did not build memrelay's services) fails instead of guessing."""

    context: JobContext | None = None

    def _execute(self) -> Any:  # rq 3.0: the single place Job.perform() calls the function
        if self.context is None:
            raise RuntimeError(f"job {self.id} ({self.func_name}) needs memrelay's worker (`memrelay worker`), "
                               "which hands jobs their services")
        if not self.func:
            raise ValueError("Cannot execute job: function is None")
        return self.func(self.context, *self.args, **self.kwargs)
