"""Job functions only the worker-runtime tests enqueue (by dotted path, like the job table's), to hold a
worker busy for a known time. They take the worker's JobContext like every memrelay job."""

from __future__ import annotations

import time
from typing import Any


def sleep_then_mark(ctx: Any, seconds: float, key: str) -> str:
    """Sleep (interruptible by rq's SIGALRM timeout), then set Redis ``key`` to show the job ran to its end."""
    time.sleep(seconds)
    ctx.redis.set(key, "done")
    return "slept"
