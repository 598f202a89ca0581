"""Shared pieces of the CRM API clients: throttling-aware retries and the fields a mapping reads.

Pure code (no database). Used by :mod:`memrelay.connectors.hubspot_api` and :mod:`memrelay.connectors.salesforce_api`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from memrelay.connectors.mapping import FieldSpec, MappingSpec
from memrelay.connectors.transforms import PROPERTY_PREFIX, template_fields

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_ATTEMPTS = 6
MAX_WAIT_S = 120.0
"""Never sleep longer than this on one throttled call (a longer Retry-After fails the call instead)."""


def header_value(headers: Mapping[str, Any] | None, name: str) -> str | None:
    """Case-insensitive lookup in any header mapping (urllib3, requests, plain dict)."""
    if not headers:
        return None
    wanted = name.lower()
    for key, value in headers.items():
        if str(key).lower() == wanted:
            return str(value)
    return None


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return None


def call_with_retry(
    fn: Callable[[], T],
    *,
    what: str,
    retryable: Callable[[BaseException], bool],
    server_wait: Callable[[BaseException], float | None],
    attempts: int = DEFAULT_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``fn``; on a retryable error wait what the server asked (``server_wait``), else back off
    exponentially with jitter. The last error is re-raised unchanged."""
    backoff = wait_exponential_jitter(multiplier=0.5, max=30)

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        asked = server_wait(exc) if exc is not None else None
        seconds = min(asked, MAX_WAIT_S) if asked is not None else backoff(state)
        log.info("%s throttled or failed (%s); retry %d in %.1fs", what, exc.__class__.__name__,
                 state.attempt_number, seconds)
        return seconds

    retrying = Retrying(retry=retry_if_exception(retryable), wait=wait, stop=stop_after_attempt(max(1, attempts)),
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
    heads = (p.split(".", 1)[0] for p in paths if not p.startswith(PROPERTY_PREFIX))
    return list(dict.fromkeys(h for h in heads if h and not h.startswith("_")))
