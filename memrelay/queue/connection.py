"""The Redis connection and RQ queues for a process."""

from __future__ import annotations

import redis
from rq import Queue

from memrelay.engine.core.errors import QueueUnavailable
from memrelay.engine.core.settings import Settings

QUEUES = ("events", "memorize", "generate", "deliver", "default")


def redis_url(settings: Settings) -> str:
    return settings.redis_url or f"unix://{settings.embedded_redis_socket}"


def connect(settings: Settings) -> redis.Redis:
    """A client for the configured Redis (the embedded one's socket when no URL is set), with the
    ``MEMRELAY_REDIS_*`` timeouts, so a dead or unreachable server fails a call instead of hanging it."""
    url = redis_url(settings)
    tcp = {"socket_keepalive": settings.redis_keepalive} if not url.startswith("unix://") else {}
    return redis.Redis.from_url(url, socket_timeout=settings.redis_socket_timeout_s,
                                socket_connect_timeout=settings.redis_connect_timeout_s,
                                health_check_interval=settings.redis_health_check_interval_s, **tcp)


def require_queue(conn: redis.Redis) -> None:
    """Raise :class:`QueueUnavailable` (503) unless Redis answers: call it before writing anything a job
    must follow, so an outage is refused up front instead of leaving SQL work that nothing will run."""
    try:
        conn.ping()
    except redis.RedisError as exc:
        raise QueueUnavailable(f"the job queue (Redis) is unavailable: {exc.__class__.__name__}") from exc


def queue(conn: redis.Redis, name: str = "default") -> Queue:
    if name not in QUEUES:
        raise ValueError(f"unknown queue {name!r}")
    return Queue(name, connection=conn)
