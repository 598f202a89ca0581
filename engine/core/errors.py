"""One error tree for the whole project.

Every error carries a stable ``code`` and an ``http_status``; the gateway renders any of them as
``{"error": {"code", "message", "details"}}`` through a single handler.
"""

from __future__ import annotations

from typing import Any


class MemrelayError(Exception):
    """Root of every error memrelay raises on purpose."""

    code = "internal_error"
    http_status = 500

    def __init__(self, message: str, *, details: dict[str, Any] | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}
        if code:
            self.code = code

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class ConfigError(MemrelayError):
    code = "config_error"
    http_status = 500


class BadRequest(MemrelayError):
    code = "bad_request"
    http_status = 400


class Unauthorized(MemrelayError):
    code = "unauthorized"
    http_status = 401


class SignatureError(Unauthorized):
    """A webhook signature is missing, wrong, stale or replayed."""

    code = "invalid_signature"


class PaymentRequired(MemrelayError):
    code = "budget_exhausted"
    http_status = 402


class Forbidden(MemrelayError):
    code = "forbidden"
    http_status = 403


class NotFound(MemrelayError):
    code = "not_found"
    http_status = 404


class Conflict(MemrelayError):
    code = "conflict"
    http_status = 409


class PayloadTooLarge(MemrelayError):
    code = "payload_too_large"
    http_status = 413


class ValidationFailed(MemrelayError):
    """Well-formed input that breaks a rule (unknown property, wrong type, value not allowed)."""

    code = "validation_failed"
    http_status = 422


class RateLimited(MemrelayError):
    code = "rate_limited"
    http_status = 429

    def __init__(self, message: str, *, retry_after: int, details: dict[str, Any] | None = None):
        super().__init__(message, details={"retry_after": retry_after, **(details or {})})
        self.retry_after = retry_after


class UpstreamError(MemrelayError):
    """A provider (LLM, CRM API) failed; nothing was half-written."""

    code = "upstream_error"
    http_status = 502


class ServiceUnavailable(MemrelayError):
    code = "service_unavailable"
    http_status = 503


class QueueUnavailable(ServiceUnavailable):
    """The job queue (Redis) cannot be reached: the request that needs it is refused with nothing written."""

    code = "queue_unavailable"


class LLMNotConfigured(ServiceUnavailable):
    """A feature needs an LLM but ``MEMRELAY_LLM_MODEL`` is not set (defined here, not in the LLM adapter, so
    checking for it never imports litellm)."""

    code = "llm_not_configured"

    def __init__(self, feature: str | None = None):
        what = f"{feature} needs an LLM" if feature else "this feature needs an LLM"
        super().__init__(
            f"{what}, but none is configured: set MEMRELAY_LLM_MODEL (e.g. openai/gpt-4o-mini)",
            details={"setting": "MEMRELAY_LLM_MODEL", **({"feature": feature} if feature else {})},
        )
