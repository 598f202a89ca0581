"""The Redis connection and RQ queues for a process."""

from __future__ import annotations

import redis
from rq import Queue

from memrelay.engine.core.settings import Settings

QUEUES = ("events", "memorize", "generate", "deliver", "default")


def redis_url(settings: Settings) -> str:
    return settings.redis_url or f"unix://{settings.embedded_redis_socket}"


def connect(settings: Settings) -> redis.Redis:
    """A client for the configured Redis (the embedded one's socket when no URL is set)."""
    return redis.Redis.from_url(redis_url(settings), socket_timeout=5, socket_connect_timeout=2,
                                health_check_interval=30)


def queue(conn: redis.Redis, name: str = "default") -> Queue:
    if name not in QUEUES:
        raise ValueError(f"unknown queue {name!r}")
    return Queue(name, connection=conn)
