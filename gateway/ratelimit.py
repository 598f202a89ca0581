"""Per-key fixed-window rate limiting in Redis (429 with Retry-After).

API keys are counted one request at a time (``INCR`` per request: the ``X-RateLimit-Remaining`` header reports
the exact count). Webhook receivers, the accept hot path, take their budget from Redis in blocks
(:class:`LeasedWindows`): most deliveries are admitted from the process's own lease without a Redis round trip,
and the shared counter still never admits more than the limit across all processes."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import redis
from flask import g, request

from memrelay.engine.core.errors import RateLimited
from memrelay.engine.stores.tenancy import KeyInfo
from memrelay.gateway.state import state
from memrelay.queue import redis_keys

log = logging.getLogger(__name__)
WINDOW_S = 60
MAX_BLOCK = 16
"""At most this many slots are leased at once by one process for one counter."""
SPREAD = 64
"""A lease is at most 1/SPREAD of the budget still free in the window (as last seen): near the limit a process
leases one slot at a time, so counting is exact where it decides anything."""


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


class LeasedWindows:
    """Fixed-window counters shared across processes, whose slots a process leases from Redis in blocks.

    The Redis counter of a window counts slots *leased* (``INCRBY block``); a lease gets the part of its block
    that was still under the limit, so the slots handed out by all processes together never exceed the limit.
    A process admits from its unused leased slots without a round trip. The block is
    ``min(MAX_BLOCK, free / SPREAD)`` with ``free`` the budget left as this process last saw the counter (1 until
    it has seen it): near the limit — and for small limits — every request asks Redis, exactly as one ``INCR``
    per request would. What a lease costs is under-admission, never over-admission: slots a process leased but
    did not use by the end of the window (at most ``MAX_BLOCK - 1`` per process and counter) are lost to the
    others. One instance per process (thread-safe; build it after fork)."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        self._lock = threading.Lock()
        self._window: int | None = None
        self._state: dict[str, list[int]] = {}  # key -> [unused leased slots, counter as last seen]
        self.round_trips = 0

    def take(self, counters: list[tuple[str, int]], window: int) -> list[bool] | None:
        """Take one slot of each ``(key, limit)`` counter of ``window``: per counter whether it had one; ``None``
        when Redis is unreachable (the caller admits: availability over strictness)."""
        out: list[bool | None] = [None] * len(counters)
        refill: list[tuple[int, str, int, int]] = []  # (position, key, limit, block)
        with self._lock:
            if window != self._window:
                self._window, self._state = window, {}
            for i, (key, limit) in enumerate(counters):
                st = self._state.setdefault(key, [0, 0])
                if st[0] > 0:
                    st[0] -= 1
                    out[i] = True
                else:
                    refill.append((i, key, limit, max(1, min(MAX_BLOCK, (limit - st[1]) // SPREAD))))
        if refill:
            try:
                pipe = self._redis.pipeline(transaction=False)
                for _, key, _, block in refill:
                    pipe.incrby(key, block)
                    pipe.expire(key, WINDOW_S + 5)
                totals = [int(v) for v in pipe.execute()[::2]]
                self.round_trips += 1
            except redis.RedisError as exc:  # availability over strictness: never fail a request on the limiter
                log.warning("rate limiter unavailable: %s", exc)
                return None
            with self._lock:
                for (i, key, limit, block), total in zip(refill, totals, strict=True):
                    granted = min(block, max(0, limit - (total - block)))
                    out[i] = granted >= 1
                    if window == self._window:
                        st = self._state.setdefault(key, [0, 0])
                        st[1] = max(st[1], total)
                        st[0] += max(0, granted - 1)
        return [bool(x) for x in out]


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


def _receiver_windows() -> LeasedWindows:
    st = state()
    found: Any = st.extras.get("receiver_limits")
    if found is None:
        found = st.extras.setdefault("receiver_limits", LeasedWindows(st.redis))
    assert isinstance(found, LeasedWindows)
    return found


def enforce_receiver_limits(source_id: str) -> None:
    """Webhook receivers are unauthenticated until verified: count each delivery per client address and per
    source id (``MEMRELAY_WEBHOOK_RATE_LIMIT_PER_ADDRESS`` / ``..._PER_SOURCE`` per minute); 429 over either."""
    settings = state().settings
    window, reset = _window()
    address = request.remote_addr or "unknown"
    limits = ((settings.webhook_rate_limit_per_address, "client address"),
              (settings.webhook_rate_limit_per_source, "source"))
    taken = _receiver_windows().take(
        [(redis_keys.receiver_rate_limit("addr", address, window), limits[0][0]),
         (redis_keys.receiver_rate_limit("src", source_id[:64], window), limits[1][0])], window)
    if taken is None:
        return
    for ok, (limit, what) in zip(taken, limits, strict=True):
        if not ok:
            raise RateLimited(f"webhook rate limit of {limit} deliveries per minute per {what} exceeded",
                              retry_after=reset, details={"limit": limit, "per": what})
