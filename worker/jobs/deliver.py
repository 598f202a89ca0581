"""Outbound webhook delivery: job ``deliver`` (one attempt; job id = delivery id) and the dispatcher loop
that fans the outbox out into deliveries and enqueues every delivery that is due."""

from __future__ import annotations

import threading
from typing import Any

import redis

from memrelay.composition import Services
from memrelay.engine.egress.webhooks_out import DISPATCH_BATCH, DeliveryFailed
from memrelay.queue.jobs import enqueue_each, live_job_ids
from memrelay.worker.context import JobContext
from memrelay.worker.periodic import run_periodically, try_lock

DISPATCH_EVERY_S = 1.0
MAX_BATCHES_PER_TICK = 20


def deliver(ctx: JobContext, delivery_id: str) -> dict[str, Any]:
    """Attempt one delivery; a failed attempt (retry scheduled in SQL, or dead) raises for RQ to record."""
    out = ctx.services.webhooks_out.attempt(delivery_id)
    if out.get("status") in ("retrying", "dead"):
        raise DeliveryFailed(f"delivery {delivery_id} attempt {out['attempt']} failed: {out['error']}", details=out)
    return out


def dispatch_tick(services: Services, conn: redis.Redis) -> dict[str, int]:
    """Dispatch the outbox backlog, then enqueue every due delivery not already waiting in Redis."""
    svc = services.webhooks_out
    taken = 0
    for _ in range(MAX_BATCHES_PER_TICK):
        n = svc.dispatch()
        taken += n
        if n < DISPATCH_BATCH:
            break
    due = svc.due()
    waiting = live_job_ids(conn, due)
    return {"events": taken, "enqueued": len(enqueue_each(conn, "deliver", [d for d in due if d not in waiting]))}


def start_dispatcher(services: Services, conn: redis.Redis, stop: threading.Event,
                     every_s: float = DISPATCH_EVERY_S) -> threading.Thread:
    """A daemon thread running ``dispatch_tick`` about every ``every_s`` in one worker at a time."""

    def tick() -> None:
        if try_lock(conn, "webhook-dispatcher", every_s):
            dispatch_tick(services, conn)

    return run_periodically("webhook-dispatcher", every_s, tick, stop)
