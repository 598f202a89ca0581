"""The transport against a local scripted HTTP server: envelope unwrapping, error mapping, retries on 429/5xx
honouring Retry-After (seconds and HTTP date), bounded attempts, connection failures and timeouts —
for the sync and the async client alike. Waits are recorded instead of slept."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from memrelay_client import (
    NO_RETRIES,
    AsyncMemrelayClient,
    MemrelayClient,
    MemrelayConnectionError,
    MemrelayTimeoutError,
    NotFoundError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    ServiceUnavailableError,
    parse_retry_after,
)

from tests.support.processes import free_port

OK_ME = {"success": True, "data": {"org": {"id": "org_1", "name": "acme"}, "key": {"id": "key_1"},
                                   "rateLimit": {"requestsPerMinute": 2}}}


def _error(code: str, message: str = "nope") -> dict[str, Any]:
    return {"success": False, "error": {"code": code, "message": message, "details": {"why": code},
                                        "requestId": f"req-{code}"}}


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


class Scripted:
    """A local HTTP server answering each request with the next scripted reply (a 200 ``/me`` when empty)."""

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                scripted.requests.append((self.command, self.path, dict(self.headers), body))
                reply = scripted.replies.popleft() if scripted.replies else Reply(200, OK_ME)
                if reply.delay_s:
                    threading.Event().wait(reply.delay_s)
                raw = json.dumps(reply.body).encode() if not isinstance(reply.body, bytes) else reply.body
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and left

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def then(self, status: int, body: Any, delay_s: float = 0.0, **headers: str) -> Scripted:
        self.replies.append(Reply(status, body, {k.replace("_", "-"): v for k, v in headers.items()}, delay_s))
        return self


@pytest.fixture
def server() -> Iterator[Scripted]:
    s = Scripted()
    s.thread.start()
    yield s
    s.server.shutdown()
    s.server.server_close()


def sync_client(url: str, slept: list[float], **kw: Any) -> MemrelayClient:
    client = MemrelayClient("mr_test", base_url=url, **kw)
    client._transport.sleep = slept.append
    return client


def async_client(url: str, slept: list[float], **kw: Any) -> AsyncMemrelayClient:
    client = AsyncMemrelayClient("mr_test", base_url=url, **kw)

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    client._transport.sleep = sleep
    return client


def test_parse_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7", now=now) == 7.0
    assert parse_retry_after(" 1.5 ", now=now) == 1.5
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now=now) == 30.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now=now) == 0.0
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after(None) is None


def test_success_envelope_is_unwrapped_and_the_key_sent(server: Scripted) -> None:
    with sync_client(server.url, []) as client:
        me = client.me()
    assert me.org["id"] == "org_1" and me.rate_limit == {"requestsPerMinute": 2}
    method, path, headers, _ = server.requests[0]
    assert (method, path, headers["Authorization"]) == ("GET", "/api/v1/me", "Bearer mr_test")
    assert headers["User-Agent"].startswith("memrelay-client-python/")


def test_a_429_is_retried_after_its_retry_after_seconds(server: Scripted) -> None:
    server.then(429, _error("rate_limited"), Retry_After="3")
    slept: list[float] = []
    with sync_client(server.url, slept) as client:
        assert client.me().org["id"] == "org_1"
    assert slept == [3.0] and len(server.requests) == 2


def test_a_503_with_an_http_date_is_retried_after_that_date(server: Scripted) -> None:
    when = datetime.now(UTC) + timedelta(seconds=40)
    server.then(503, _error("queue_unavailable"), Retry_After=format_datetime(when, usegmt=True))
    slept: list[float] = []
    with sync_client(server.url, slept) as client:
        client.me()
    assert len(slept) == 1 and 30 < slept[0] <= 40


def test_5xx_without_retry_after_backs_off_then_gives_up_with_the_last_error(server: Scripted) -> None:
    for _ in range(3):
        server.then(500, _error("internal_error"))
    slept: list[float] = []
    policy = RetryPolicy(max_attempts=3, backoff_base=1.0, backoff_max=8.0, jitter=lambda: 1.0)
    with sync_client(server.url, slept, retry=policy) as client, pytest.raises(ServerError) as failed:
        client.me()
    assert slept == [1.0, 2.0] and len(server.requests) == 3
    assert (failed.value.status, failed.value.code, failed.value.request_id) == (500, "internal_error",
                                                                                 "req-internal_error")


def test_a_retry_after_beyond_the_allowed_wait_raises_at_once(server: Scripted) -> None:
    server.then(429, _error("rate_limited"), Retry_After="120")
    slept: list[float] = []
    with sync_client(server.url, slept) as client, pytest.raises(RateLimitError) as limited:
        client.me()
    assert slept == [] and limited.value.retry_after == 120.0 and len(server.requests) == 1


def test_client_errors_are_not_retried_and_map_to_their_class(server: Scripted) -> None:
    server.then(404, _error("not_found", "no such record"))
    slept: list[float] = []
    with sync_client(server.url, slept) as client, pytest.raises(NotFoundError) as missing:
        client.records.get(type="contact", email="x@y.example")
    assert slept == [] and len(server.requests) == 1
    assert missing.value.message == "no such record" and missing.value.details == {"why": "not_found"}
    assert json.loads(server.requests[0][3]) == {"email": "x@y.example", "type": "contact",
                                                 "include_superseded": False}


def test_a_non_json_error_still_maps_to_its_status_class(server: Scripted) -> None:
    server.then(503, b"<html>bad gateway</html>")
    with sync_client(server.url, [], retry=NO_RETRIES) as client, pytest.raises(ServiceUnavailableError) as down:
        client.me()
    assert down.value.status == 503 and down.value.code == "http_503"


def test_connection_refused_is_retried_then_raised() -> None:
    slept: list[float] = []
    with sync_client(f"http://127.0.0.1:{free_port()}", slept, retry=RetryPolicy(max_attempts=2)) as client, \
            pytest.raises(MemrelayConnectionError):
        client.me()
    assert len(slept) == 1


def test_a_timeout_is_bounded_and_raised(server: Scripted) -> None:
    server.then(200, OK_ME, delay_s=2.0).then(200, OK_ME, delay_s=2.0)
    slept: list[float] = []
    with sync_client(server.url, slept, timeout=0.2, retry=RetryPolicy(max_attempts=2)) as client, \
            pytest.raises(MemrelayTimeoutError):
        client.me()
    assert len(slept) == 1 and len(server.requests) == 2


def test_async_client_shares_the_retry_and_error_logic(server: Scripted) -> None:
    server.then(429, _error("rate_limited"), Retry_After="2").then(200, OK_ME).then(404, _error("not_found"))
    slept: list[float] = []

    async def scenario() -> None:
        async with async_client(server.url, slept) as client:
            assert (await client.me()).org["id"] == "org_1"
            with pytest.raises(NotFoundError) as missing:
                await client.guidelines.get("gdl_missing")
            assert missing.value.request_id == "req-not_found"

    asyncio.run(scenario())
    assert slept == [2.0] and [r[1] for r in server.requests] == ["/api/v1/me", "/api/v1/me",
                                                                    "/api/v1/guidelines/gdl_missing"]


def test_paging_follows_has_more_in_both_clients(server: Scripted) -> None:
    def page(n: int, more: bool) -> dict[str, Any]:
        records = [{"recordId": f"rec_{n}_{i}", "type": "contact"} for i in range(2)]
        return {"success": True, "data": {"records": records, "total": 5, "page": n, "pageSize": 2,
                                          "hasMore": more}}

    for n, more in ((1, True), (2, True), (3, False), (1, True), (2, True), (3, False)):
        server.then(200, page(n, more))
    with sync_client(server.url, []) as client:
        ids = [r.record_id for r in client.records.iter_search(page_size=2, type="contact")]

    async def collect() -> list[str]:
        async with async_client(server.url, []) as client:
            return [r.record_id async for r in client.records.iter_search(page_size=2, type="contact")]

    assert ids == asyncio.run(collect()) == [f"rec_{n}_{i}" for n in (1, 2, 3) for i in range(2)]
    assert [json.loads(r[3])["page"] for r in server.requests] == [1, 2, 3, 1, 2, 3]
