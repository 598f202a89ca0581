"""Sans-IO core shared by the sync and the async client: what a call is, how it becomes an HTTP request,
how an answer becomes a result or an exception, and when an attempt is retried. No sockets here."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx
from pydantic import ValidationError

from memrelay_client._version import __version__
from memrelay_client.errors import (
    APIError,
    MemrelayConnectionError,
    MemrelayTimeoutError,
    RateLimitError,
    UnexpectedResponseError,
    error_class,
)
from memrelay_client.retry import RetryPolicy, parse_retry_after

T = TypeVar("T")
PageT = TypeVar("PageT")
ItemT = TypeVar("ItemT")

API_PREFIX = "/api/v1"
RETRYABLE_TRANSPORT_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API operation: method, path under ``/api/v1``, body or query, and how to decode its ``data``."""

    method: str
    path: str
    decode: Callable[[Any], T]
    json: Mapping[str, Any] | None = None
    params: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Paged(Generic[ItemT, PageT]):
    """A paged listing: the first page's call, the next page's call (``None`` at the end), a page's items."""

    first: Call[PageT]
    next_call: Callable[[PageT], Call[PageT] | None]
    items: Callable[[PageT], list[ItemT]]


@dataclass(frozen=True)
class HttpProtocol:
    """Turns calls into ``httpx.Request`` objects and answers into results or :mod:`errors` exceptions."""

    base_url: str
    api_key: str
    timeout: httpx.Timeout
    headers: Mapping[str, str] = field(default_factory=dict)

    def build(self, call: Call[Any]) -> httpx.Request:
        headers = {"Authorization": f"Bearer {self.api_key}", "Accept": "application/json",
                   "User-Agent": f"memrelay-client-python/{__version__}", **self.headers}
        params = {k: _query_value(v) for k, v in (call.params or {}).items() if v is not None}
        request = httpx.Request(call.method, self.base_url.rstrip("/") + API_PREFIX + call.path,
                                params=params or None, json=call.json, headers=headers)
        request.extensions["timeout"] = self.timeout.as_dict()
        return request

    def parse(self, call: Call[T], response: httpx.Response) -> T:
        """The decoded ``data`` of a success envelope; the matching exception otherwise."""
        if response.status_code >= 400:
            raise api_error(response)
        body = _json_or_none(response)
        if isinstance(body, dict) and body.get("success") is True and "data" in body:
            body = body["data"]
        try:
            return call.decode(body)
        except (ValidationError, KeyError, TypeError, ValueError) as exc:
            raise UnexpectedResponseError(
                f"unexpected answer to {call.method} {call.path}: {exc}", code="unexpected_response",
                status=response.status_code, request_id=response.headers.get("x-request-id")) from exc


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _json_or_none(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def api_error(response: httpx.Response) -> APIError:
    """The exception for an error answer: the envelope's code, message, details and request id."""
    body = _json_or_none(response)
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        err = {}
    status = response.status_code
    kwargs: dict[str, Any] = {
        "code": str(err.get("code") or f"http_{status}"),
        "status": status,
        "request_id": err.get("requestId") or response.headers.get("x-request-id"),
        "details": err.get("details") if isinstance(err.get("details"), dict) else {},
    }
    message = str(err.get("message") or response.reason_phrase or f"HTTP {status}")
    cls = error_class(status)
    if cls is RateLimitError:
        return RateLimitError(message, retry_after=parse_retry_after(response.headers.get("retry-after")), **kwargs)
    return cls(message, **kwargs)


class Exchange(Generic[T]):
    """The attempts of one call: the next request, and after each outcome whether (and how long) to wait."""

    def __init__(self, protocol: HttpProtocol, policy: RetryPolicy, call: Call[T]) -> None:
        self.protocol, self.policy, self.call = protocol, policy, call
        self.attempt = 0

    def request(self) -> httpx.Request:
        self.attempt += 1
        return self.protocol.build(self.call)

    def retry_delay(self, response: httpx.Response) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` when ``response`` is final."""
        return self.policy.delay_after_status(self.attempt, response.status_code, response.headers)

    def result(self, response: httpx.Response) -> T:
        return self.protocol.parse(self.call, response)

    def error_delay(self, exc: httpx.TransportError) -> float:
        """Seconds to wait after a transport failure; raises the client's exception when it is final."""
        delay = self.policy.delay_after_error(self.attempt) if isinstance(exc, RETRYABLE_TRANSPORT_ERRORS) else None
        if delay is not None:
            return delay
        where = f"{self.call.method} {self.call.path} after {self.attempt} attempt(s)"
        if isinstance(exc, httpx.TimeoutException):
            raise MemrelayTimeoutError(f"timed out: {where}", code="timeout") from exc
        raise MemrelayConnectionError(f"{exc.__class__.__name__}: {exc} ({where})", code="connection_error") from exc
