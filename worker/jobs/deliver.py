"""Outbound webhook delivery: job ``deliver`` (one attempt; job id = delivery id) and the dispatcher loop
that fans the outbox out into deliveries and enqueues every delivery that is due."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import redis

from memrelay.composition import Services
from memrelay.engine.egress.webhooks_out import DISPATCH_BATCH, DeliveryFailed
from memrelay.queue.jobs import enqueue_each, live_job_ids
from memrelay.worker.context import JobContext
from memrelay.worker.periodic import run_periodically, run_round

DISPATCH_EVERY_S = 1.0
MAX_BATCHES_PER_TICK = 20
DISPATCH_DEADLINE_S = 10.0


def deliver(ctx: JobContext, delivery_id: str) -> dict[str, Any]:
    """Attempt one delivery; a failed attempt (retry scheduled in SQL, or dead) raises for RQ to record."""
    out = ctx.services.webhooks_out.attempt(delivery_id)
    if out.get("status") in ("retrying", "dead"):
        raise DeliveryFailed(f"delivery {delivery_id} attempt {out['attempt']} failed: {out['error']}", details=out)
    return out


def _unguarded() -> None:
    """No lease to check (a direct call, e.g. from tests)."""


def dispatch_tick(services: Services, conn: redis.Redis, *, guard: Callable[[], None] = _unguarded) -> dict[str, int]:
    """Dispatch the outbox backlog, then enqueue every due delivery not already waiting in Redis.
    ``guard`` runs before every write (the dispatcher lease's check and the round's deadline)."""
    svc = services.webhooks_out
    taken = 0
    for _ in range(MAX_BATCHES_PER_TICK):
        guard()
        n = svc.dispatch()
        taken += n
        if n < DISPATCH_BATCH:
            break
    due = svc.due()
    waiting = live_job_ids(conn, due)
    guard()
    return {"events": taken, "enqueued": len(enqueue_each(conn, "deliver", [d for d in due if d not in waiting]))}


def start_dispatcher(services: Services, conn: redis.Redis, stop: threading.Event,
                     every_s: float = DISPATCH_EVERY_S) -> threading.Thread:
    """A daemon thread running ``dispatch_tick`` about every ``every_s`` in one worker at a time, under the
    dispatcher's fenced lease with a round deadline of :data:`DISPATCH_DEADLINE_S`."""

    def tick() -> None:
        run_round(conn, "webhook-dispatcher", every_s=every_s, deadline_s=DISPATCH_DEADLINE_S,
                  body=lambda rnd: dispatch_tick(services, conn, guard=rnd.guard))

    return run_periodically("webhook-dispatcher", every_s, tick, stop)
