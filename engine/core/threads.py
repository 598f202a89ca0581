"""How many threads a process's native pools may use: its share of the machine's cores (a local embedder's
intra-op threads, numpy's BLAS). Standard library only: :func:`limit_blas_threads` must run before numpy loads."""

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


BLAS_ENV = "OPENBLAS_NUM_THREADS"  # numpy's wheels bundle OpenBLAS, which reads this once, when it loads


def limit_blas_threads() -> int:
    """Size numpy's BLAS pool to this process's share of cores (:func:`embedder_threads`) unless
    ``OPENBLAS_NUM_THREADS`` is set; returns the count in force. Call before numpy is imported; forked and
    started children inherit it.

    An org-wide recall's matrix-vector product gains nothing from a second BLAS thread on a shared machine, and
    OpenBLAS's idle threads spin for a while after each call: a `memrelay up` web worker spent 27 ms of CPU per
    org-wide recall with two BLAS threads and 13 ms with one, at the same wall time (bench/bench_warm.py)."""
    current = os.environ.get(BLAS_ENV, "").strip()
    if current.isdigit() and int(current) > 0:
        return int(current)
    os.environ[BLAS_ENV] = str(embedder_threads())
    return int(os.environ[BLAS_ENV])
