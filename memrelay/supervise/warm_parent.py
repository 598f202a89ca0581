"""The one warm parent of `memrelay up` (and the gunicorn master of `memrelay serve`): what it loads before it
forks is held once, shared copy-on-write by every child, instead of once per child.

:func:`preload_parent` runs :func:`memrelay.warmup.preload_for_fork` (modules, SQLAlchemy's mappers, a local
embedder's weights, the token encoding), then imports what building the services imports — every child builds
all of them while warming (``warm_services``). (The CRM SDKs are not among them: the HubSpot and Salesforce
clients, with zeep, lxml, httpx and rich, ~260 modules and ~12 MB, load only in a process that syncs or fetches
from a CRM.) They are imported by building a throwaway :class:`~memrelay.composition.Services` (nothing in it
connects before its first use) and dropping it; then a collection and ``gc.freeze()``.

It refuses (:class:`~memrelay.warmup.NotForkSafe`) to leave a thread behind; what a child must not inherit — a
pooled SQL connection, a client socket — is never opened here.

:func:`tune_malloc` (run by :func:`preload_parent`, so inherited by every forked child, and by a
``memrelay worker`` of its own) caps glibc's malloc arenas per process at ``MALLOC_ARENAS``: a web worker runs 8
request threads, and glibc would give each its own arena, each keeping what it once held.
"""

from __future__ import annotations

import gc
import time
from functools import cached_property
from typing import Any

MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # mallopt parameter (malloc.h)


def tune_malloc() -> bool:
    """Cap glibc's malloc arenas (see the module docstring); a forked child inherits the setting. False where
    the C library is not glibc (nothing changed).

    The mmap threshold is left dynamic on purpose: fixed at 128 KB, each large temporary (a 50k-row score
    vector, a batch's token matrix) is a fresh mapping whose pages fault in again — 256 KB allocations took 24x
    longer on this machine — for no measurable gain in resident memory."""
    try:
        import ctypes

        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_ARENA_MAX, MALLOC_ARENAS) == 1)


def import_service_modules(settings: Any) -> None:
    """Import the modules every service's construction imports, by building each service of a throwaway
    :class:`~memrelay.composition.Services` (no connection is made: the SQL pool, Redis and Milvus clients
    connect on first use, the embedder loads on first use) and closing it."""
    from memrelay.composition import Services

    services = Services(settings)
    try:
        for name, attr in vars(Services).items():
            if isinstance(attr, cached_property):
                getattr(services, name)
    finally:
        services.close()


_preloaded = False  # inherited by a forked child: one that preloads again (it should not) loads nothing twice


def preload_parent(settings: Any) -> dict[str, float]:
    """Everything a forked child shares with this process (see the module docstring); seconds per step, none
    when this process (or the parent it was forked from) preloaded already. Raises
    :class:`~memrelay.warmup.NotForkSafe` when a thread runs afterwards."""
    global _preloaded
    from memrelay.warmup import fork_safe_or_raise, preload_for_fork, trim_heap

    if _preloaded:
        fork_safe_or_raise("preload before fork")
        return {}
    tune_malloc()
    steps = preload_for_fork(settings)
    t = time.perf_counter()
    import_service_modules(settings)
    steps["services"] = time.perf_counter() - t
    fork_safe_or_raise("preload before fork")
    gc.collect()
    trim_heap()  # freed pages left resident here would be resident in every child
    gc.freeze()
    _preloaded = True
    return steps
