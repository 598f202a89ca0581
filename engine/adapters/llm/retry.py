"""Retry policy for provider calls (tenacity): what is retried, how long to wait, what is raised at the end.

Retried: 429, 5xx and connection errors (litellm reports an unreachable server or an unparseable
body as a 500). Not retried: other 4xx and timeouts — the timeout is the caller's latency budget, so
repeating it would multiply the wait. Waits are exponential with jitter, except that a provider's
``Retry-After`` (or OpenAI's ``retry-after-ms``) is honoured; one longer than
``LLMConfig.max_retry_after_s`` ends the retries at once.
"""

from __future__ import annotations

import email.utils
import logging
import random
import re
import time
from collections.abc import Mapping
from typing import Any

import openai
import tenacity

from memrelay.engine.adapters.llm.config import LLMConfig
from memrelay.engine.adapters.llm.errors import LLMTimeout, LLMUpstreamError

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
    headers = response_headers(exc)
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    if "retry-after-ms" in lowered:
        try:
            return max(0.0, float(lowered["retry-after-ms"]) / 1000)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def provider_message(exc: BaseException) -> str:
    """The provider's own error text, without litellm's ``litellm.XError: XError: OpenAIException -``."""
    message = str(getattr(exc, "message", None) or exc)
    return _LITELLM_PREFIX.sub("", message, count=1).strip() or message


class _Wait(tenacity.wait.wait_base):
    """Retry-After when the provider sent one, else exponential backoff with full jitter on top."""

    def __init__(self, config: LLMConfig):
        self.config = config

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        hinted = retry_after_seconds(exc) if exc else None
        if hinted is not None:
            return hinted
        step = self.config.backoff_base_s * 2 ** (retry_state.attempt_number - 1)
        return min(self.config.backoff_max_s, step + random.uniform(0, self.config.backoff_base_s))


class _RetryAfterTooLong(tenacity.stop.stop_base):
    def __init__(self, limit_s: float):
        self.limit_s = limit_s

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        hinted = retry_after_seconds(exc) if exc else None
        return hinted is not None and hinted > self.limit_s


def retrying(config: LLMConfig) -> tenacity.Retrying:
    """A tenacity ``Retrying`` for one provider request under ``config``; re-raises the last error."""
    return tenacity.Retrying(
        retry=tenacity.retry_if_exception(is_retryable),
        stop=tenacity.stop_after_attempt(config.max_retries + 1) | _RetryAfterTooLong(config.max_retry_after_s),
        wait=_Wait(config),
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
