"""Per-key fixed-window rate limiting in Redis (429 with Retry-After)."""

from __future__ import annotations

import logging
import time

import redis
from flask import g

from memrelay.engine.core.errors import RateLimited
from memrelay.engine.stores.tenancy import KeyInfo
from memrelay.gateway.state import state
from memrelay.queue import redis_keys

log = logging.getLogger(__name__)
WINDOW_S = 60


def enforce_rate_limit(info: KeyInfo) -> None:
    """Count this request against the key's per-minute budget; raise RateLimited when over it."""
    limit = info.rate_limit_per_minute or state().settings.rate_limit_per_minute
    now = time.time()
    window = int(now // WINDOW_S)
    key = redis_keys.rate_limit(info.key_id, window)
    try:
        pipe = state().redis.pipeline()
        pipe.incr(key)
        pipe.expire(key, WINDOW_S + 5)
        count = int(pipe.execute()[0])
    except redis.RedisError as exc:  # availability over strictness: never fail a request on the limiter
        log.warning("rate limiter unavailable: %s", exc)
        return
    remaining = max(0, limit - count)
    reset = int((window + 1) * WINDOW_S - now) + 1
    g.rate_limit = (limit, remaining, reset)
    if count > limit:
        raise RateLimited(f"rate limit of {limit} requests per minute exceeded", retry_after=reset,
                          details={"limit": limit})
