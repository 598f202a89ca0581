"""How many threads a local embedder may use: this process's share of the machine's cores."""

from __future__ import annotations

import os

THREADS_ENV = "MEMRELAY_EMBED_THREADS"
# Processes that embed on one machine under `memrelay up`: gunicorn web workers plus RQ workers
# (the Settings defaults are 2 and 2; the same variables configure both).
PROCESS_ENVS = (("MEMRELAY_WEB_WORKERS", 2), ("MEMRELAY_WORKERS", 2))


def available_cores() -> int:
    """Cores this process may run on (CPU affinity where the OS reports it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def embedder_threads(cores: int | None = None, processes: int | None = None) -> int:
    """Threads for one process's embedder: ``MEMRELAY_EMBED_THREADS`` if set, else cores / processes
    (at least 1). Oversubscribed intra-op threads are what turned a 55 ms MiniLM sentence into ~1 s."""
    explicit = os.environ.get(THREADS_ENV, "").strip()
    if explicit.isdigit() and int(explicit) > 0:
        return int(explicit)
    if processes is None:
        processes = sum(_env_int(name, default) for name, default in PROCESS_ENVS)
    return max(1, (cores or available_cores()) // max(1, processes))


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value.isdigit() else default
