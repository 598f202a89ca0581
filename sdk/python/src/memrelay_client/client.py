"""The clients: :class:`MemrelayClient` (blocking) and :class:`AsyncMemrelayClient` (asyncio).

Both expose the same resources (``memory``, ``records``, ``collections``, ``guidelines``, ``generation``,
``webhooks``) built from the same classes; only the transport differs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import TracebackType
from typing import Self

import httpx

from memrelay_client._decode import one
from memrelay_client._protocol import Call, HttpProtocol
from memrelay_client._resource import Async, Sync
from memrelay_client._transport import AsyncTransport, SyncTransport
from memrelay_client.errors import MemrelayError
from memrelay_client.models.account import Me
from memrelay_client.resources.collections import Collections
from memrelay_client.resources.generation import Generation
from memrelay_client.resources.guidelines import Guidelines
from memrelay_client.resources.memory import Memory
from memrelay_client.resources.records import Records
from memrelay_client.resources.webhooks import Webhooks
from memrelay_client.retry import RetryPolicy

DEFAULT_BASE_URL = "http://127.0.0.1:8080"
DEFAULT_TIMEOUT = 60.0


def _protocol(api_key: str | None, base_url: str | None, timeout: float | httpx.Timeout,
              headers: Mapping[str, str] | None) -> HttpProtocol:
    key = api_key or os.environ.get("MEMRELAY_API_KEY")
    if not key:
        raise MemrelayError("an API key is required: pass api_key= or set MEMRELAY_API_KEY", code="no_api_key")
    url = base_url or os.environ.get("MEMRELAY_BASE_URL") or DEFAULT_BASE_URL
    return HttpProtocol(base_url=url, api_key=key, headers=dict(headers or {}),
                        timeout=timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout))


def me_call() -> Call[Me]:
    """``GET /me``: the calling key's org, scopes and rate limit."""
    return Call("GET", "/me", one(Me))


class MemrelayClient:
    """Blocking client. ``api_key`` defaults to ``MEMRELAY_API_KEY``, ``base_url`` to ``MEMRELAY_BASE_URL``
    (else ``http://127.0.0.1:8080``). ``timeout`` is per attempt; ``retry`` bounds the attempts."""

    def __init__(self, api_key: str | None = None, *, base_url: str | None = None,
                 timeout: float | httpx.Timeout = DEFAULT_TIMEOUT, retry: RetryPolicy | None = None,
                 headers: Mapping[str, str] | None = None, http_client: httpx.Client | None = None) -> None:
        self._transport = SyncTransport(_protocol(api_key, base_url, timeout, headers), retry or RetryPolicy(),
                                        http_client or httpx.Client())
        self.memory: Memory[Sync] = Memory(self._transport)
        self.records: Records[Sync] = Records(self._transport)
        self.collections: Collections[Sync] = Collections(self._transport)
        self.guidelines: Guidelines[Sync] = Guidelines(self._transport)
        self.generation: Generation[Sync] = Generation(self._transport)
        self.webhooks: Webhooks[Sync] = Webhooks(self._transport)

    def me(self) -> Me:
        """The key's org, scopes and rate limit (a cheap connection test)."""
        return self._transport.execute(me_call())

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class AsyncMemrelayClient:
    """asyncio client: the same resources and methods as :class:`MemrelayClient`, awaited."""

    def __init__(self, api_key: str | None = None, *, base_url: str | None = None,
                 timeout: float | httpx.Timeout = DEFAULT_TIMEOUT, retry: RetryPolicy | None = None,
                 headers: Mapping[str, str] | None = None, http_client: httpx.AsyncClient | None = None) -> None:
        self._transport = AsyncTransport(_protocol(api_key, base_url, timeout, headers), retry or RetryPolicy(),
                                         http_client or httpx.AsyncClient())
        self.memory: Memory[Async] = Memory(self._transport)
        self.records: Records[Async] = Records(self._transport)
        self.collections: Collections[Async] = Collections(self._transport)
        self.guidelines: Guidelines[Async] = Guidelines(self._transport)
        self.generation: Generation[Async] = Generation(self._transport)
        self.webhooks: Webhooks[Async] = Webhooks(self._transport)

    async def me(self) -> Me:
        """The key's org, scopes and rate limit (a cheap connection test)."""
        return await self._transport.execute(me_call())

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()
