"""Retries of provider calls: what is retried, and the ``llm_calls`` policy of
:mod:`memrelay.engine.core.backoff` (waits, Retry-After, exhaustion) run by tenacity.

Retried: 429, 5xx and connection errors (litellm reports an unreachable server or an unparseable
body as a 500). Not retried: other 4xx and timeouts — the timeout is the caller's latency budget, so
repeating it would multiply the wait. Waits are exponential with jitter, except that a provider's
``Retry-After`` (or OpenAI's ``retry-after-ms``) is honoured; one longer than
``LLMConfig.max_retry_after_s`` ends the retries at once. The bounds come from :class:`LLMConfig`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

import openai
import tenacity

from memrelay.engine.adapters.llm.config import LLMConfig
from memrelay.engine.adapters.llm.errors import LLMTimeout, LLMUpstreamError
from memrelay.engine.core.backoff import LLM_CALLS, RetryPolicy, retry_after

log = logging.getLogger(__name__)

_LITELLM_PREFIX = re.compile(r"^(litellm\.\w+:\s*)?(\w+Error:\s*)?(\w+Exception\s*-\s*)?")


def status_of(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, openai.APITimeoutError)  # litellm.Timeout subclasses it


def is_retryable(exc: BaseException) -> bool:
    if is_timeout(exc):
        return False
    if isinstance(exc, openai.APIConnectionError):
        return True
    status = status_of(exc)
    return status is not None and (status == 429 or status >= 500)


def response_headers(exc: BaseException) -> Mapping[str, str]:
    """Provider response headers attached to a litellm exception.

    litellm's exception mapping stores them as ``exc.litellm_response_headers`` (an httpx.Headers);
    its rebuilt ``exc.response`` carries an empty header set, so that is only the fallback.
    """
    for candidate in (
        getattr(exc, "litellm_response_headers", None),
        getattr(getattr(exc, "response", None), "headers", None),
        getattr(exc, "headers", None),
    ):
        if candidate:
            return candidate
    return {}


def retry_after_seconds(exc: BaseException, now: float | None = None) -> float | None:
    """Seconds the provider asked us to wait (``retry-after-ms``, ``Retry-After`` seconds or HTTP date)."""
    return retry_after(response_headers(exc), now=now)


def provider_message(exc: BaseException) -> str:
    """The provider's own error text, without litellm's ``litellm.XError: XError: OpenAIException -``."""
    message = str(getattr(exc, "message", None) or exc)
    return _LITELLM_PREFIX.sub("", message, count=1).strip() or message


def policy_for(config: LLMConfig) -> RetryPolicy:
    """The ``llm_calls`` policy with ``config``'s attempts and bounds (jitter: up to one base step)."""
    return LLM_CALLS.but(max_attempts=config.max_retries + 1, base_s=config.backoff_base_s,
                         max_s=config.backoff_max_s, jitter_s=config.backoff_base_s,
                         max_retry_after_s=config.max_retry_after_s)


def _next_delay(policy: RetryPolicy, retry_state: tenacity.RetryCallState) -> float | None:
    exc = retry_state.outcome.exception() if retry_state.outcome else None
    hinted = retry_after_seconds(exc) if exc else None
    return policy.next_delay(retry_state.attempt_number, retry_after=hinted)


def retrying(config: LLMConfig) -> tenacity.Retrying:
    """A tenacity ``Retrying`` for one provider request under ``config``; re-raises the last error."""
    policy = policy_for(config)
    return tenacity.Retrying(
        retry=tenacity.retry_if_exception(is_retryable),
        stop=lambda state: _next_delay(policy, state) is None,
        wait=lambda state: _next_delay(policy, state) or 0.0,
        before_sleep=_log_retry,
        reraise=True,
    )


def _log_retry(retry_state: tenacity.RetryCallState) -> None:
    exc = retry_state.outcome.exception() if retry_state.outcome else None
    wait = retry_state.next_action.sleep if retry_state.next_action else 0.0
    log.warning(
        "LLM request failed (attempt %d, HTTP %s), retrying in %.2f s: %s",
        retry_state.attempt_number, status_of(exc) if exc else None, wait, provider_message(exc) if exc else "",
    )


def to_upstream_error(exc: BaseException, *, model: str, attempts: int, timeout_s: float) -> LLMUpstreamError:
    """Translate a final litellm/openai exception into memrelay's error tree."""
    details: dict[str, Any] = {"model": model, "attempts": attempts}
    if is_timeout(exc):
        details["timeout_s"] = timeout_s
        return LLMTimeout(f"LLM provider did not answer within {timeout_s:g} s ({model})", details=details)
    status = status_of(exc)
    if status is not None:
        details["provider_status"] = status
    hinted = retry_after_seconds(exc)
    if hinted is not None:
        details["retry_after"] = hinted
    message = provider_message(exc)
    suffix = f" after {attempts} attempts" if attempts > 1 else ""
    return LLMUpstreamError(f"LLM provider error{suffix} (HTTP {status or 'n/a'}): {message}", details=details)
