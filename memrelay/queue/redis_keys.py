"""Every Redis key memrelay uses is built here."""

from __future__ import annotations

PREFIX = "memrelay"


def rate_limit(key_id: str, window: int) -> str:
    return f"{PREFIX}:rl:{key_id}:{window}"


def receiver_rate_limit(kind: str, ident: str, window: int) -> str:
    """Webhook receiver counters: ``kind`` is ``addr`` (client address) or ``src`` (source id)."""
    return f"{PREFIX}:rlw:{kind}:{ident}:{window}"


def lock(name: str) -> str:
    return f"{PREFIX}:lock:{name}"


def pace(name: str) -> str:
    """Set once per period by the worker that runs maintenance task ``name`` (see ``memrelay.worker.periodic``)."""
    return f"{PREFIX}:pace:{name}"


def console_session(digest: str) -> str:
    """An operator-console session, named by the SHA-256 of its cookie (the cookie itself is never stored)."""
    return f"{PREFIX}:console:{digest}"


def readings_cursor() -> str:
    """Where the worker's memory-readings refresh stands: ``[READINGS_VERSION, last memory id scanned or null once
    the pass for that version finished]`` (see ``memrelay.worker.sweeper.refresh_readings_round``)."""
    return f"{PREFIX}:readings:cursor"
