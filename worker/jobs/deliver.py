"""Outbound webhook delivery: the RQ job (one attempt; job id = delivery id) and the dispatcher loop
that fans the outbox out into deliveries and enqueues every delivery that is due."""

from __future__ import annotations

import logging
import threading
from typing import Any

import redis

from memrelay.composition import Services
from memrelay.engine.egress.webhooks_out import DISPATCH_BATCH, DeliveryFailed, get_webhooks_out
from memrelay.queue.connection import queue
from memrelay.queue.enqueue import waiting_in_redis
from memrelay.worker.context import get_engine
from memrelay.worker.periodic import run_periodically, try_lock

log = logging.getLogger(__name__)
JOB_TIMEOUT_S = 60  # > the 15 s HTTP timeout
DISPATCH_EVERY_S = 1.0
MAX_BATCHES_PER_TICK = 20


def deliver(delivery_id: str) -> dict[str, Any]:
    """Attempt one delivery; a failed attempt (retry scheduled in SQL, or dead) raises for RQ to record."""
    out = get_webhooks_out(get_engine()).attempt(delivery_id)
    if out.get("status") in ("retrying", "dead"):
        raise DeliveryFailed(f"delivery {delivery_id} attempt {out['attempt']} failed: {out['error']}", details=out)
    return out


def enqueue_deliveries(conn: redis.Redis, delivery_ids: list[str]) -> list[str]:
    """One job per delivery on the ``deliver`` queue. On a Redis outage the rows stay due in SQL and the
    next dispatcher tick enqueues them."""
    if not delivery_ids:
        return []
    try:
        q = queue(conn, "deliver")
        with conn.pipeline() as pipe:
            for did in delivery_ids:
                q.enqueue_call(deliver, args=(did,), job_id=did, timeout=JOB_TIMEOUT_S, result_ttl=3600,
                               failure_ttl=7 * 86400, description=f"webhook delivery {did}", pipeline=pipe)
            pipe.execute()
    except redis.RedisError as exc:
        log.warning("could not enqueue webhook deliveries (%s); the dispatcher will retry", exc)
        return []
    return list(delivery_ids)


def dispatch_tick(eng: Services, conn: redis.Redis) -> dict[str, int]:
    """Dispatch the outbox backlog, then enqueue every due delivery not already waiting in Redis."""
    svc = get_webhooks_out(eng)
    taken = 0
    for _ in range(MAX_BATCHES_PER_TICK):
        n = svc.dispatch()
        taken += n
        if n < DISPATCH_BATCH:
            break
    due = svc.due()
    waiting = waiting_in_redis(conn, due)
    return {"events": taken, "enqueued": len(enqueue_deliveries(conn, [d for d in due if d not in waiting]))}


def start_dispatcher(eng: Services, conn: redis.Redis, stop: threading.Event,
                     every_s: float = DISPATCH_EVERY_S) -> threading.Thread:
    """A daemon thread running ``dispatch_tick`` about every ``every_s`` in one worker at a time."""

    def tick() -> None:
        if try_lock(conn, "webhook-dispatcher", every_s):
            dispatch_tick(eng, conn)

    return run_periodically("webhook-dispatcher", every_s, tick, stop)
