"""Shared pieces of the CRM API clients: the guarded HTTP transport, throttling-aware retries (the
``crm_calls`` policy of :mod:`memrelay.engine.core.backoff`) and the fields a mapping reads.

No database. Used by the HubSpot and Salesforce API clients.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from memrelay.connectors.mapping import FieldSpec, MappingSpec
from memrelay.connectors.transforms import template_fields
from memrelay.engine.core.backoff import CRM_CALLS
from memrelay.engine.egress.http import EgressPolicy, GuardedPoolManager, GuardedSession

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_ATTEMPTS = CRM_CALLS.max_attempts
MAX_WAIT_S = CRM_CALLS.max_retry_after_s
"""Never sleep longer than this on one throttled call (a longer Retry-After is clamped to it)."""


def header_value(headers: Mapping[str, Any] | None, name: str) -> str | None:
    """Case-insensitive lookup in any header mapping (urllib3, requests, plain dict)."""
    if not headers:
        return None
    wanted = name.lower()
    for key, value in headers.items():
        if str(key).lower() == wanted:
            return str(value)
    return None


def egress_policy(base_url: str) -> EgressPolicy:
    """The CRM's operator-configured API base is reached as configured; redirects elsewhere are checked."""
    return EgressPolicy.configured(base_url)


def guarded_session(base_url: str, *, ca_bundle: str | None = None) -> GuardedSession:
    """A ``requests.Session`` for SDKs built on requests (simple-salesforce), through the SSRF guard;
    ``ca_bundle`` verifies TLS even when ``REQUESTS_CA_BUNDLE`` is set."""
    session = GuardedSession(egress_policy(base_url))
    if ca_bundle:
        session.verify = ca_bundle
    return session


def guarded_pool_manager(base_url: str, **pool_kwargs: Any) -> GuardedPoolManager:
    """A ``urllib3.PoolManager`` for SDKs built on urllib3 (hubspot-api-client), through the SSRF guard."""
    return GuardedPoolManager(egress_policy(base_url), **pool_kwargs)


def call_with_retry(
    fn: Callable[[], T],
    *,
    what: str,
    retryable: Callable[[BaseException], bool],
    server_wait: Callable[[BaseException], float | None],
    attempts: int = DEFAULT_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``fn`` up to ``attempts`` times; on a retryable error wait what the server asked
    (``server_wait``, clamped), else back off exponentially with jitter (the ``crm_calls`` policy).
    The last error is re-raised unchanged."""
    policy = CRM_CALLS.but(max_attempts=max(1, attempts))

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        asked = server_wait(exc) if exc is not None else None
        seconds = policy.next_delay(state.attempt_number, retry_after=asked) or 0.0
        log.info("%s throttled or failed (%s); retry %d in %.1fs", what, exc.__class__.__name__,
                 state.attempt_number, seconds)
        return seconds

    retrying = Retrying(retry=retry_if_exception(retryable), wait=wait, stop=stop_after_attempt(policy.max_attempts),
                        sleep=sleep, reraise=True)
    return retrying(fn)


# -- which source fields a mapping reads -------------------------------------------------------------


def _spec_fields(spec: FieldSpec | None) -> list[str]:
    if spec is None:
        return []
    fields = list(spec.source)
    for step in spec.transform:
        if step.name == "template" and isinstance(step.arg, str):
            fields += [f for f in template_fields(step.arg) if f != "value"]
    return fields


def mapping_fields(mapping: MappingSpec, object_type: str) -> list[str]:
    """Top-level source fields the mapping of ``object_type`` reads (keys, properties, timestamp, memory
    and tag templates, ``when`` clauses), without ``_event`` meta fields and ``{@property}`` references.
    Empty when the mapping has no such object."""
    obj = mapping.object_for(object_type)
    if obj is None:
        return []
    paths: list[str] = []
    for spec in [*obj.keys.specs().values(), *obj.properties.values(), obj.timestamp]:
        paths += _spec_fields(spec)
    for memory in obj.memories:
        paths += template_fields(memory.template) + list(memory.when)
    for tag in obj.tags:
        paths += template_fields(tag)
    heads = (p.split(".", 1)[0] for p in paths)
    return list(dict.fromkeys(h for h in heads if h and not h.startswith("_")))
