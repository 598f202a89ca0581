"""The one guarded HTTP client: SSRF policy per use (org-supplied URLs strictly, operator-configured bases
explicitly), checks on every redirect hop, connections pinned to the checked address (DNS rebinding),
time and size bounds, environment proxies ignored, errors from the project's tree.

The far side is a real HTTP server on 127.0.0.1; DNS answers for made-up names come from a fake resolver
(``socket.getaddrinfo``), since no test may depend on real DNS."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from urllib3.util.retry import Retry

from memrelay.engine.core.errors import MemrelayError, UpstreamError
from memrelay.engine.egress.http import (
    BlockedAddress,
    EgressPolicy,
    GuardedPoolManager,
    GuardedSession,
    ResponseTooLarge,
    post_for_status,
)
from memrelay.workflows.delivery import DeliveryFailed, post_json

BIG = 5000


class Server:
    """A threaded HTTP/1.1 server on 127.0.0.1 recording each request's path and headers."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body_in = self.rfile.read(length) if length else b""
                owner.requests.append({"method": self.command, "path": self.path,
                                       "headers": dict(self.headers.items()), "body": body_in})
                url = urlsplit(self.path)
                if url.path == "/redirect":
                    self.send_response(302)
                    self.send_header("Location", parse_qs(url.query)["to"][0])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if url.path == "/slow":
                    time.sleep(1.5)
                if url.path == "/chunked-big":
                    self.send_response(200)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for _ in range(BIG // 500):
                        self.wfile.write(b"1f4\r\n" + b"x" * 500 + b"\r\n")
                    self.wfile.write(b"0\r\n\r\n")
                    return
                body = b"x" * BIG if url.path == "/big" else (self.headers.get("Host") or "").encode()
                self.send_response(429 if url.path == "/throttled" else 200)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Retry-After", "7")
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer  # noqa: N815 (http.server's names)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str = "/ok", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.close()


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[list[str]]]:
    """Fake DNS for ``*.test`` names: each lookup pops the next answer (the last one repeats)."""
    answers: dict[str, list[list[str]]] = {}
    lookups: dict[str, int] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kw: Any) -> Any:
        if isinstance(host, str) and host.endswith(".test"):
            lookups[host] = lookups.get(host, 0) + 1
            queue = answers[host]
            ips = queue.pop(0) if len(queue) > 1 else queue[0]
            return [(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                     (ip, int(port or 0))) for ip in ips]
        return real(host, port, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    answers["__lookups__"] = lookups  # type: ignore[assignment]
    return answers


# --- org-supplied URLs: strict ---------------------------------------------------------------------------
@pytest.mark.parametrize("url", [
    "http://127.0.0.1/", "http://10.0.0.5/", "http://172.16.3.4/", "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/", "http://100.64.0.1/", "http://0.0.0.0/", "http://[::1]/",
    "http://[fe80::1]/", "http://[fd00::1]/", "http://[::ffff:127.0.0.1]/", "http://[::ffff:a9fe:a9fe]/",
    "http://[2002:7f00:1::]/", "http://[64:ff9b::a00:1]/", "http://224.0.0.1/", "http://localhost/",
    "ftp://example.com/", "file:///etc/passwd", "http:///nohost"])
def test_private_loopback_link_local_and_mapped_addresses_are_refused(url: str):
    with GuardedSession(EgressPolicy.user_url()) as http, pytest.raises(BlockedAddress) as caught:
        http.get(url)
    assert isinstance(caught.value, MemrelayError) and caught.value.http_status == 422
    assert caught.value.code == "blocked_url"


def test_a_refused_target_is_never_connected_to(server: Server):
    with GuardedSession(EgressPolicy.user_url()) as http, pytest.raises(BlockedAddress, match="non-public"):
        http.post(server.url(), json={"a": 1})
    assert server.requests == []


def test_the_org_allowlist_admits_exactly_what_it_names(server: Server):
    with GuardedSession(EgressPolicy.user_url(["127.0.0.1"])) as http:
        assert http.get(server.url()).status_code == 200
    with GuardedSession(EgressPolicy.user_url(["localhost"])) as http:
        assert http.get(server.url(host="localhost")).text == f"localhost:{server.port}"  # Host: the name
    with GuardedSession(EgressPolicy.user_url(["10.0.0.0/8"])) as http, pytest.raises(BlockedAddress):
        http.get(server.url())
    assert len(server.requests) == 2


def test_a_name_resolving_to_any_private_address_is_refused(dns: dict[str, Any]):
    dns["mixed.test"] = [["93.184.216.34", "10.1.2.3"]]
    dns["inner.test"] = [["::ffff:192.168.0.10"]]
    with GuardedSession(EgressPolicy.user_url()) as http:
        with pytest.raises(BlockedAddress) as caught:
            http.get("http://mixed.test/hook")
        assert caught.value.details["addresses"] == ["10.1.2.3"]
        with pytest.raises(BlockedAddress):
            http.get("http://inner.test/hook")


def test_the_connection_goes_to_the_checked_address_not_a_second_lookup(server: Server, dns: dict[str, Any]):
    """DNS rebinding: the first answer is checked (allowlisted 127.0.0.1), later answers would point
    elsewhere; the request must still reach the checked address, looked up once."""
    dns["rebind.test"] = [["127.0.0.1"], ["10.255.255.1"]]
    with GuardedSession(EgressPolicy.user_url(["127.0.0.1"], timeout_s=5)) as http:
        resp = http.get(server.url(host="rebind.test"))
    assert resp.status_code == 200 and resp.text == f"rebind.test:{server.port}"
    assert dns["__lookups__"]["rebind.test"] == 1
    dns["rebind2.test"] = [["10.255.255.1"], ["127.0.0.1"]]  # private first: refused, never connected
    with GuardedSession(EgressPolicy.user_url()) as http, pytest.raises(BlockedAddress):
        http.get(server.url(host="rebind2.test"))
    assert len(server.requests) == 1


def test_org_supplied_urls_do_not_follow_redirects(server: Server):
    with GuardedSession(EgressPolicy.user_url(["127.0.0.1"])) as http:
        resp = http.get(server.url("/redirect?to=" + server.url("/ok")))
    assert resp.status_code == 302 and [r["path"] for r in server.requests] == [
        "/redirect?to=" + server.url("/ok")]


# --- operator-configured bases: explicit -----------------------------------------------------------------
def test_a_configured_base_is_reached_although_local_but_only_that_origin(server: Server):
    with GuardedSession(EgressPolicy.configured(server.url("/api"))) as http:
        assert http.get(server.url("/ok")).status_code == 200
        with pytest.raises(BlockedAddress):
            http.get(server.url(host="localhost"))  # another host name: not the configured origin
        with pytest.raises(BlockedAddress):
            http.get(f"http://127.0.0.1:{server.port + 1 if server.port < 65535 else 1}/")  # another port
        with pytest.raises(BlockedAddress):
            http.get(server.url().replace("http://", "https://"))  # another scheme


def test_redirects_are_checked_on_every_hop(server: Server):
    with GuardedSession(EgressPolicy.configured(server.url())) as http:
        assert http.get(server.url("/redirect?to=/ok")).status_code == 200  # same origin: followed
        for private in ("http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/", "http://[::1]:1/",
                        server.url(host="localhost")):
            with pytest.raises(BlockedAddress):
                http.get(server.url("/redirect?to=" + private))
    assert [r["path"] for r in server.requests].count("/ok") == 1
    assert len(server.requests) == 2 + 4  # the 4 refused targets were never contacted


def test_redirect_to_a_public_looking_name_that_resolves_privately_is_refused(server: Server, dns: dict[str, Any]):
    dns["evil.test"] = [["127.0.0.1"]]
    with GuardedSession(EgressPolicy.configured(server.url())) as http, pytest.raises(BlockedAddress):
        http.get(server.url("/redirect?to=" + server.url(host="evil.test")))


# --- bounds ------------------------------------------------------------------------------------------------
def test_response_size_is_capped_declared_or_streamed(server: Server):
    policy = EgressPolicy.configured(server.url(), max_response_bytes=BIG - 1)
    with GuardedSession(policy) as http:
        with pytest.raises(ResponseTooLarge) as caught:
            http.get(server.url("/big"))
        assert isinstance(caught.value, UpstreamError) and caught.value.details["declared"] == BIG
        with pytest.raises(ResponseTooLarge):
            http.get(server.url("/chunked-big"))  # no Content-Length: counted while reading
        assert http.get(server.url("/ok")).status_code == 200  # the session stays usable
    with GuardedSession(EgressPolicy.configured(server.url(), max_response_bytes=BIG)) as http:
        assert len(http.get(server.url("/chunked-big")).content) == BIG


def test_the_policy_timeout_applies_when_the_caller_gives_none(server: Server):
    with GuardedSession(EgressPolicy.configured(server.url(), timeout_s=0.2)) as http:
        with pytest.raises(requests.Timeout):
            http.get(server.url("/slow"))
        assert http.get(server.url("/slow"), timeout=10).status_code == 200  # the caller's own wins


def test_environment_proxies_are_not_used(server: Server, monkeypatch: pytest.MonkeyPatch):
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://10.255.255.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with GuardedSession(EgressPolicy.user_url(["127.0.0.1"], timeout_s=5)) as http:
        assert http.get(server.url()).status_code == 200
    assert server.requests[0]["path"] == "/ok"  # asked directly (a proxy would see an absolute URI)


def test_post_for_status_keeps_status_headers_and_a_snippet(server: Server):
    with GuardedSession(EgressPolicy.user_url(["127.0.0.1"])) as http:
        result = post_for_status(http, server.url("/big"), b'{"a":1}', {"Content-Type": "application/json"})
        throttled = post_for_status(http, server.url("/throttled"), b"{}", {})
    assert result.status == 200 and len(result.snippet) == 1024 and result.headers["retry-after"] == "7"
    assert (throttled.status, throttled.headers["retry-after"]) == (429, "7")
    assert server.requests[0]["body"] == b'{"a":1}'


# --- urllib3 SDKs (hubspot-api-client) ---------------------------------------------------------------------
def test_the_pool_manager_checks_pins_and_caps_too(server: Server, dns: dict[str, Any]):
    dns["crm.test"] = [["127.0.0.1"]]
    base = server.url("/", host="crm.test")
    pm = GuardedPoolManager(EgressPolicy.configured(base, max_response_bytes=BIG - 1, timeout_s=5),
                            retries=Retry(total=0))
    resp = pm.request("GET", server.url("/ok", host="crm.test"))
    assert resp.status == 200 and resp.data == f"crm.test:{server.port}".encode()
    with pytest.raises(ResponseTooLarge):
        pm.request("GET", server.url("/chunked-big", host="crm.test"))
    with pytest.raises(BlockedAddress):
        pm.request("GET", server.url("/ok"))  # 127.0.0.1 by address is not the configured origin
    redirect = pm.request("GET", server.url("/redirect?to=http://10.0.0.1/", host="crm.test"))
    assert redirect.status == 302  # never followed by the pool manager
    streamed = pm.request("GET", server.url("/ok", host="crm.test"), preload_content=False)
    assert streamed.read() == f"crm.test:{server.port}".encode()


# --- workflow deliveries ---------------------------------------------------------------------------------
def test_workflow_urls_written_in_a_definition_are_trusted_rendered_ones_are_not(server: Server,
                                                                                 monkeypatch: pytest.MonkeyPatch):
    assert post_json(server.url("/hook"), {"text": "hi"}, written=server.url("/hook")) == {"status": 200}
    monkeypatch.setenv("HOOK_URL", server.url("/env"))
    assert post_json("env:HOOK_URL", {"text": "hi"}, written="env:HOOK_URL") == {"status": 200}
    with pytest.raises(DeliveryFailed) as caught:  # rendered from run data: strict, not retryable
        post_json(server.url("/hook"), {"text": "hi"}, written="{{ input.url }}")
    assert caught.value.retryable is False and caught.value.details["code"] == "blocked_url"
    with pytest.raises(DeliveryFailed) as local:  # an org allowlist admits loopback only if the operator says so
        post_json(server.url("/org"), {"t": 1}, written="{{ input.url }}", allowlist=["127.0.0.1"])
    assert local.value.details["code"] == "blocked_url"
    assert post_json(server.url("/org"), {"t": 1}, written="{{ input.url }}", allowlist=["127.0.0.1"],
                     allow_local=True) == {"status": 200}
    assert [r["path"] for r in server.requests] == ["/hook", "/env", "/org"]
    with pytest.raises(DeliveryFailed) as redirected:  # a written URL's redirect is not followed either
        post_json(server.url("/redirect?to=http://10.0.0.1/"), {}, written=server.url("/redirect?to=http://10.0.0.1/"))
    assert redirected.value.details["status"] == 302 and redirected.value.retryable is False
