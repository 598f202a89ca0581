"""Exceptions: one tree rooted at :class:`MemrelayError`.

HTTP failures carry the gateway's error envelope (``{"success": false, "error": {"code", "message", "details",
"requestId"}}``) as attributes, plus the HTTP status; the class says the family (auth, not found, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class MemrelayError(Exception):
    """Base of every error this client raises."""

    def __init__(self, message: str, *, code: str = "client_error", status: int | None = None,
                 request_id: str | None = None, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.request_id = request_id
        self.details: dict[str, Any] = dict(details or {})

    def __str__(self) -> str:
        where = f" (HTTP {self.status}, request {self.request_id})" if self.status else ""
        return f"{self.code}: {self.message}{where}"


class MemrelayConnectionError(MemrelayError):
    """The gateway could not be reached (refused, reset, DNS) after every allowed attempt."""


class MemrelayTimeoutError(MemrelayConnectionError):
    """The request timed out after every allowed attempt."""


class UnexpectedResponseError(MemrelayError):
    """A success answer this client could not read (a gateway newer or older than the client)."""


class APIError(MemrelayError):
    """The gateway answered with an error status; ``status``, ``code`` and ``request_id`` say which."""


class InvalidRequestError(APIError):
    """400, 405, 413, 415: the request itself is malformed."""


class ValidationFailedError(InvalidRequestError):
    """422: the body parsed but its values were refused (``details["errors"]`` names the fields)."""


class AuthenticationError(APIError):
    """401: missing, unknown or revoked API key."""


class PermissionDeniedError(APIError):
    """403: the key lacks a scope, or the object is a protected one."""


class NotFoundError(APIError):
    """404: no such record, collection, guideline, agent, subscription or job."""


class ConflictError(APIError):
    """409: a version check failed, a name is taken, or an identifier is ambiguous."""


class BudgetExhaustedError(APIError):
    """402: the org's monthly LLM budget is spent."""


class RateLimitError(APIError):
    """429: too many requests; ``retry_after`` is the wait the gateway asked for, in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ServerError(APIError):
    """5xx: the gateway failed (or a dependency of it did)."""


class ServiceUnavailableError(ServerError):
    """503: the job queue or the LLM is unavailable or not configured."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: InvalidRequestError, 401: AuthenticationError, 402: BudgetExhaustedError, 403: PermissionDeniedError,
    404: NotFoundError, 405: InvalidRequestError, 409: ConflictError, 413: InvalidRequestError,
    415: InvalidRequestError, 422: ValidationFailedError, 429: RateLimitError, 503: ServiceUnavailableError,
}


def error_class(status: int) -> type[APIError]:
    """The exception class for an HTTP error status."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    return ServerError if status >= 500 else APIError
