"""The two thin I/O loops over :class:`~memrelay_client._protocol.Exchange`: one blocking, one asyncio.

Everything they decide (request, retry, wait, result, error) is delegated to the sans-IO core; they only
send, sleep and iterate pages.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx

from memrelay_client._protocol import Call, Exchange, HttpProtocol, Paged
from memrelay_client.retry import RetryPolicy

T = TypeVar("T")
ItemT = TypeVar("ItemT")
PageT = TypeVar("PageT")


class SyncTransport:
    """Runs calls on an ``httpx.Client`` (blocking)."""

    def __init__(self, protocol: HttpProtocol, policy: RetryPolicy, client: httpx.Client,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.protocol, self.policy, self.client, self.sleep = protocol, policy, client, sleep

    def execute(self, call: Call[T]) -> T:
        exchange = Exchange(self.protocol, self.policy, call)
        while True:
            try:
                response = self.client.send(exchange.request())
            except httpx.TransportError as exc:
                delay = exchange.error_delay(exc)
            else:
                retry_in = exchange.retry_delay(response)
                if retry_in is None:
                    return exchange.result(response)
                response.close()
                delay = retry_in
            self.sleep(delay)

    def paginate(self, paged: Paged[ItemT, PageT]) -> Iterator[ItemT]:
        call: Call[PageT] | None = paged.first
        while call is not None:
            page = self.execute(call)
            yield from paged.items(page)
            call = paged.next_call(page)

    def close(self) -> None:
        self.client.close()


class AsyncTransport:
    """Runs calls on an ``httpx.AsyncClient``."""

    def __init__(self, protocol: HttpProtocol, policy: RetryPolicy, client: httpx.AsyncClient,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        self.protocol, self.policy, self.client, self.sleep = protocol, policy, client, sleep

    async def execute(self, call: Call[T]) -> T:
        exchange = Exchange(self.protocol, self.policy, call)
        while True:
            try:
                response = await self.client.send(exchange.request())
            except httpx.TransportError as exc:
                delay = exchange.error_delay(exc)
            else:
                retry_in = exchange.retry_delay(response)
                if retry_in is None:
                    return exchange.result(response)
                await response.aclose()
                delay = retry_in
            await self.sleep(delay)

    async def paginate(self, paged: Paged[ItemT, PageT]) -> AsyncIterator[ItemT]:
        call: Call[PageT] | None = paged.first
        while call is not None:
            page = await self.execute(call)
            for item in paged.items(page):
                yield item
            call = paged.next_call(page)

    async def aclose(self) -> None:
        await self.client.aclose()
