"""Per-key fixed-window rate limiting in Redis (429 with Retry-After)."""

from __future__ import annotations

import logging
import time

import redis
from flask import g, request

from memrelay.engine.core.errors import RateLimited
from memrelay.engine.stores.tenancy import KeyInfo
from memrelay.gateway.state import state
from memrelay.queue import redis_keys

log = logging.getLogger(__name__)
WINDOW_S = 60


def _count(keys: list[str]) -> list[int] | None:
    """Increment each fixed-window counter; ``None`` when Redis is unreachable."""
    try:
        pipe = state().redis.pipeline()
        for key in keys:
            pipe.incr(key)
            pipe.expire(key, WINDOW_S + 5)
        return [int(v) for v in pipe.execute()[::2]]
    except redis.RedisError as exc:  # availability over strictness: never fail a request on the limiter
        log.warning("rate limiter unavailable: %s", exc)
        return None


def _window() -> tuple[int, int]:
    now = time.time()
    window = int(now // WINDOW_S)
    return window, int((window + 1) * WINDOW_S - now) + 1


def enforce_rate_limit(info: KeyInfo) -> None:
    """Count this request against the key's per-minute budget; raise RateLimited when over it."""
    limit = info.rate_limit_per_minute or state().settings.rate_limit_per_minute
    window, reset = _window()
    counts = _count([redis_keys.rate_limit(info.key_id, window)])
    if counts is None:
        return
    g.rate_limit = (limit, max(0, limit - counts[0]), reset)
    if counts[0] > limit:
        raise RateLimited(f"rate limit of {limit} requests per minute exceeded", retry_after=reset,
                          details={"limit": limit})


def enforce_receiver_limits(source_id: str) -> None:
    """Webhook receivers are unauthenticated until verified: count each delivery per client address and per
    source id (``MEMRELAY_WEBHOOK_RATE_LIMIT_PER_ADDRESS`` / ``..._PER_SOURCE`` per minute); 429 over either."""
    settings = state().settings
    window, reset = _window()
    address = request.remote_addr or "unknown"
    counts = _count([redis_keys.receiver_rate_limit("addr", address, window),
                     redis_keys.receiver_rate_limit("src", source_id[:64], window)])
    if counts is None:
        return
    for count, limit, what in ((counts[0], settings.webhook_rate_limit_per_address, "client address"),
                               (counts[1], settings.webhook_rate_limit_per_source, "source")):
        if count > limit:
            raise RateLimited(f"webhook rate limit of {limit} deliveries per minute per {what} exceeded",
                              retry_after=reset, details={"limit": limit, "per": what})
