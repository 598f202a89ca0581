"""A local OpenAI-compatible HTTP server for tests: the real client library talks to it over HTTP.

Serves ``POST /v1/chat/completions`` (plain, JSON mode, SSE streaming) and ``POST /v1/embeddings``
(deterministic hash-based vectors). Scripted steps are consumed one per request, in order; when the
queue of an endpoint is empty the server falls back to its default reply::

    with FakeLLMServer() as srv:
        srv.fail(429, retry_after=1, times=2)      # two rate limits ...
        srv.reply_json({"name": "Ada"})            # ... then a JSON answer
        client = LLMClient(LLMConfig(models={"basic": "openai/gpt-4o-mini"},
                                     api_base=srv.base_url, api_key="test"))
        ...
        assert len(srv.chat_requests) == 3

A step may be a handler ``fn(request_json) -> str | dict | FakeResponse | None``: a ``str`` is the
assistant's content, a ``dict`` is dumped as JSON content, a :class:`FakeResponse` gives full control
(status, raw body, headers) and ``None`` means "the default reply".
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import math
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

Endpoint = Literal["chat", "embeddings"]
Handler = Callable[[dict[str, Any]], "str | dict[str, Any] | FakeResponse | None"]
Responder = Callable[[list[dict[str, Any]]], str]

_PATHS: dict[str, Endpoint] = {
    "/v1/chat/completions": "chat",
    "/chat/completions": "chat",
    "/v1/embeddings": "embeddings",
    "/embeddings": "embeddings",
}
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_exceeded",
}
INVALID_JSON_CONTENT = 'Sure! Here is the JSON you asked for: {"name": "Ada", '


@dataclass
class FakeResponse:
    """A fully specified HTTP response. ``body`` may be a dict (JSON), str or bytes (sent verbatim)."""

    status: int = 200
    body: dict[str, Any] | str | bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RecordedRequest:
    """One request the server received (headers lower-cased)."""

    method: str
    path: str
    headers: dict[str, str]
    json: dict[str, Any] | None
    received_at: float  # time.monotonic()

    @property
    def endpoint(self) -> Endpoint | None:
        return _PATHS.get(self.path)

    @property
    def model(self) -> str | None:
        return (self.json or {}).get("model")

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list((self.json or {}).get("messages") or [])


def count_tokens(text: str) -> int:
    """Deterministic stand-in for a tokenizer: one token per whitespace-separated word (at least 1)."""
    return max(1, len(text.split()))


def message_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):  # multi-part content
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def fake_embedding(text: str, dim: int) -> list[float]:
    """A unit vector derived from sha256(text): same text, same vector; different text, unrelated one."""
    values: list[float] = []
    for block in itertools.count():
        digest = hashlib.sha256(f"{block}:{text}".encode()).digest()
        values.extend((b / 127.5) - 1.0 for b in digest)
        if len(values) >= dim:
            break
    values = values[:dim]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


def wants_json(request_json: dict[str, Any]) -> bool:
    fmt = request_json.get("response_format") or {}
    return isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema")


class FakeLLMServer:
    """OpenAI-compatible test double on 127.0.0.1 with an ephemeral port (see module docstring)."""

    def __init__(
        self,
        *,
        embedding_dim: int = 16,
        responder: Responder | None = None,
        require_api_key: str | None = None,
    ):
        self.embedding_dim = embedding_dim
        self.responder = responder
        self.require_api_key = require_api_key
        self._queues: dict[Endpoint, deque[Handler]] = {"chat": deque(), "embeddings": deque()}
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._ids = itertools.count(1)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self) -> FakeLLMServer:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-llm", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._stopping.set()  # wakes handlers sleeping in delay()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (no path)."""
        if self._httpd is None:
            raise RuntimeError("FakeLLMServer is not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL to give a client as ``api_base`` (ends in ``/v1``)."""
        return self.url + "/v1"

    # --- scripting -------------------------------------------------------------------------------
    def script(self, handler: Handler, *, times: int = 1, endpoint: Endpoint = "chat") -> FakeLLMServer:
        """Queue ``handler`` for the next ``times`` requests to ``endpoint``."""
        with self._lock:
            self._queues[endpoint].extend([handler] * times)
        return self

    def reply(self, content: str, *, times: int = 1, usage: dict[str, int] | None = None) -> FakeLLMServer:
        """Answer the next chat request(s) with ``content`` (optionally with an explicit ``usage``)."""
        if usage is None:
            return self.script(lambda _req: content, times=times)
        return self.script(lambda req: FakeResponse(body=self._chat_body(req, content, usage=usage)), times=times)

    def reply_json(self, value: Any, *, times: int = 1, usage: dict[str, int] | None = None) -> FakeLLMServer:
        """Answer the next chat request(s) with ``json.dumps(value)`` as content."""
        return self.reply(json.dumps(value), times=times, usage=usage)

    def reply_invalid_json(
        self, *, times: int = 1, content: str = INVALID_JSON_CONTENT, usage: dict[str, int] | None = None
    ) -> FakeLLMServer:
        """Answer with content that is not valid JSON (even in JSON mode)."""
        return self.reply(content, times=times, usage=usage)

    def fail(
        self,
        status: int,
        *,
        times: int = 1,
        message: str | None = None,
        retry_after: float | None = None,
        headers: dict[str, str] | None = None,
        endpoint: Endpoint = "chat",
    ) -> FakeLLMServer:
        """Answer with an OpenAI-style error body; ``retry_after`` sets the ``Retry-After`` header."""
        message = message or f"fake provider error {status}"
        hdrs = dict(headers or {})
        if retry_after is not None:
            hdrs["Retry-After"] = _format_seconds(retry_after)
        body = {
            "error": {
                "message": message,
                "type": _ERROR_TYPES.get(status, "server_error"),
                "param": None,
                "code": str(status),
            }
        }
        return self.script(lambda _req: FakeResponse(status, body, hdrs), times=times, endpoint=endpoint)

    def delay(self, seconds: float, *, times: int = 1, endpoint: Endpoint = "chat") -> FakeLLMServer:
        """Sleep ``seconds`` before the default reply (to provoke client timeouts)."""

        def slow(_req: dict[str, Any]) -> None:
            self._stopping.wait(seconds)
            return None

        return self.script(slow, times=times, endpoint=endpoint)

    def reset(self) -> None:
        """Forget scripted steps and recorded requests."""
        with self._lock:
            for queue in self._queues.values():
                queue.clear()
            self._requests.clear()

    # --- inspection ------------------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.endpoint == "chat"]

    @property
    def embedding_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.endpoint == "embeddings"]

    @property
    def pending(self) -> int:
        """Scripted steps not yet consumed (all endpoints)."""
        with self._lock:
            return sum(len(q) for q in self._queues.values())

    # --- request handling (called from server threads) -------------------------------------------
    def _next_step(self, endpoint: Endpoint) -> Handler | None:
        with self._lock:
            queue = self._queues[endpoint]
            return queue.popleft() if queue else None

    def _respond(self, request: RecordedRequest) -> FakeResponse:
        with self._lock:
            self._requests.append(request)
        if request.endpoint is None or request.method != "POST":
            return _error(404, f"no route for {request.method} {request.path}")
        if self.require_api_key is not None:
            if request.headers.get("authorization") != f"Bearer {self.require_api_key}":
                return _error(401, "Incorrect API key provided")
        step = self._next_step(request.endpoint)
        payload = request.json
        if payload is None:
            return _error(400, "request body is not valid JSON")
        result = step(payload) if step is not None else None
        if isinstance(result, FakeResponse):
            return result
        if request.endpoint == "embeddings":
            return FakeResponse(body=self._embeddings_body(payload))
        if isinstance(result, dict):
            result = json.dumps(result)
        content = result if isinstance(result, str) else self._default_content(payload)
        return FakeResponse(body=self._chat_body(payload, content))

    def _default_content(self, payload: dict[str, Any]) -> str:
        messages = list(payload.get("messages") or [])
        if self.responder is not None:
            return self.responder(messages)
        last_user = next((message_text(m) for m in reversed(messages) if m.get("role") == "user"), "")
        if wants_json(payload):
            return json.dumps({"echo": last_user})
        return f"fake reply to: {last_user}"

    def _chat_body(self, payload: dict[str, Any], content: str, usage: dict[str, int] | None = None) -> dict:
        prompt = sum(count_tokens(message_text(m)) + 3 for m in payload.get("messages") or [])
        completion = count_tokens(content)
        usage = dict(usage) if usage else {"prompt_tokens": prompt, "completion_tokens": completion}
        usage.setdefault("total_tokens", usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0))
        return {
            "id": f"chatcmpl-fake{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": payload.get("model", "fake-model"),
            "system_fingerprint": "fp_fake",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": usage,
        }

    def _embeddings_body(self, payload: dict[str, Any]) -> dict:
        raw = payload.get("input", [])
        texts = [raw] if isinstance(raw, str) else [t if isinstance(t, str) else json.dumps(t) for t in raw]
        dim = int(payload.get("dimensions") or self.embedding_dim)
        as_base64 = payload.get("encoding_format") == "base64"
        data = []
        for i, text in enumerate(texts):
            vector = fake_embedding(text, dim)
            encoded: Any = base64.b64encode(struct.pack(f"<{dim}f", *vector)).decode() if as_base64 else vector
            data.append({"object": "embedding", "index": i, "embedding": encoded})
        tokens = sum(count_tokens(t) for t in texts)
        return {
            "object": "list",
            "data": data,
            "model": payload.get("model", "fake-embedding"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    def _stream_events(self, body: dict[str, Any], include_usage: bool) -> list[dict[str, Any]]:
        """Turn a chat.completion body into chat.completion.chunk events (word by word)."""
        content = body["choices"][0]["message"]["content"]
        base = {k: body[k] for k in ("id", "created", "model", "system_fingerprint")}
        base["object"] = "chat.completion.chunk"
        pieces = [w + " " for w in content.split(" ")]
        pieces[-1] = pieces[-1][:-1]
        events = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                         "finish_reason": None}]}]
        events += [{**base, "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]}
                   for p in pieces if p]
        events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        if include_usage:
            events.append({**base, "choices": [], "usage": body["usage"]})
        return events


def _format_seconds(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)


def _error(status: int, message: str) -> FakeResponse:
    body = {"error": {"message": message, "type": _ERROR_TYPES.get(status, "server_error"),
                      "param": None, "code": None}}
    return FakeResponse(status, body)


def _make_handler(server: FakeLLMServer) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out as two writes; with Nagle on, a kept-alive client's delayed ACK held the body
        # back ~40 ms on every request after a connection's first (bench_warm: /prompt warm p50 60 ms vs 35 ms
        # first), a delay of this fake, not of the code under test.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            pass  # keep test output clean

        def do_GET(self) -> None:  # noqa: N802 - stdlib naming
            self._handle()

        def do_POST(self) -> None:  # noqa: N802 - stdlib naming
            self._handle()

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                payload = json.loads(raw) if raw else None
            except ValueError:
                payload = None
            request = RecordedRequest(
                method=self.command,
                path=self.path.split("?", 1)[0],
                headers={k.lower(): v for k, v in self.headers.items()},
                json=payload if isinstance(payload, dict) else None,
                received_at=time.monotonic(),
            )
            response = server._respond(request)
            try:
                if response.status == 200 and request.endpoint == "chat" and (payload or {}).get("stream"):
                    self._send_stream(response, payload or {})
                else:
                    self._send(response)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test); nothing to do

        def _send(self, response: FakeResponse) -> None:
            body = response.body
            headers = {k.lower(): v for k, v in response.headers.items()}
            if isinstance(body, dict):
                body = json.dumps(body).encode()
                headers.setdefault("content-type", "application/json")
            elif isinstance(body, str):
                body = body.encode()
                headers.setdefault("content-type", "text/plain; charset=utf-8")
            self.send_response(response.status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _send_stream(self, response: FakeResponse, payload: dict[str, Any]) -> None:
            if not isinstance(response.body, dict):
                self._send(response)
                return
            include_usage = bool((payload.get("stream_options") or {}).get("include_usage"))
            chunks = [f"data: {json.dumps(e)}\n\n" for e in server._stream_events(response.body, include_usage)]
            body = ("".join(chunks) + "data: [DONE]\n\n").encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return _Handler
