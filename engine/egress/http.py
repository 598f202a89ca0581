"""The one guarded HTTP client for everything memrelay sends out: outbound webhooks, workflow deliveries and
CRM API calls.

Every request — and every redirect hop — is checked by the SSRF guard (:mod:`memrelay.engine.egress.ssrf`)
under an :class:`EgressPolicy` and then sent to exactly the address that was checked, so DNS rebinding
between check and connect cannot reach another host. Two policies cover the uses:

- :meth:`EgressPolicy.user_url` — URLs an org supplied (webhook subscriptions, templated workflow URLs):
  public addresses only, unless the org's allowlist names the host, address or network; redirects are
  not followed.
- :meth:`EgressPolicy.configured` — base URLs the operator configured (a CRM ``api_base`` or
  ``instance_url``, a workflow URL written in a definition file or named by ``env:``): their origin is
  reached whatever it resolves to (a local fake server in tests, an on-premise proxy); any other host,
  e.g. a redirect target, is checked strictly.

Both bound the time (``timeout_s`` per connect and per read, unless the caller passes its own) and the
response size (``max_response_bytes``, :class:`ResponseTooLarge` above it). Proxies from the environment
are ignored (a proxy would connect on our behalf, past the check). Errors: ``BlockedAddress`` (422, from
:mod:`~memrelay.engine.egress.ssrf`) for a refused target, :class:`ResponseTooLarge`; transport failures
stay ``requests`` / ``urllib3`` exceptions for the caller (or the SDK on top) to classify as retryable.

:class:`GuardedSession` is a ``requests.Session`` (simple-salesforce, workflow and webhook posts);
:class:`GuardedPoolManager` is a ``urllib3.PoolManager`` for SDKs built on urllib3 (hubspot-api-client).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool

from memrelay.engine.core.errors import UpstreamError
from memrelay.engine.egress.ssrf import BlockedAddress, Target, check_url, normalise_allowlist, origin

__all__ = ["BlockedAddress", "EgressPolicy", "GuardedPoolManager", "GuardedSession", "HttpResult",
           "ResponseTooLarge", "post_for_status"]

DEFAULT_TIMEOUT_S = 30.0
DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
SNIPPET_BYTES = 1024
_CHUNK = 64 * 1024


class ResponseTooLarge(UpstreamError):
    """The answer was larger than the policy's ``max_response_bytes``."""

    code = "response_too_large"


@dataclass(frozen=True)
class EgressPolicy:
    """Which destinations one use of the client may reach, and its time and size bounds."""

    allowlist: tuple[str, ...] = ()
    """Org allowlist entries (host names, addresses, CIDR networks) admitted although not public."""
    trusted: frozenset[tuple[str, str, int]] = field(default_factory=frozenset)
    """Operator-configured origins ``(scheme, host, port)`` admitted whatever they resolve to."""
    follow_redirects: bool = False
    allow_local: bool = True
    """False: loopback / link-local addresses are refused even when the allowlist names them."""
    max_redirects: int = 5
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES

    @classmethod
    def user_url(cls, allowlist: Iterable[str] = (), **bounds: Any) -> EgressPolicy:
        """For URLs an org supplied: public addresses or the org's ``allowlist``; no redirects."""
        return cls(allowlist=tuple(normalise_allowlist(allowlist)), **bounds)

    @classmethod
    def configured(cls, *base_urls: str, follow_redirects: bool = True, **bounds: Any) -> EgressPolicy:
        """For base URLs the operator configured: their origins are trusted; redirects elsewhere are checked."""
        return cls(trusted=frozenset(origin(u) for u in base_urls if u), follow_redirects=follow_redirects,
                   **bounds)

    def check(self, url: str) -> Target:
        """The checked target of ``url`` under this policy; raises ``BlockedAddress``."""
        return check_url(url, self.allowlist, trusted=self.trusted, allow_local=self.allow_local)


@dataclass(frozen=True)
class HttpResult:
    """One answer, reduced to what a delivery log keeps."""

    status: int
    headers: dict[str, str]
    snippet: str


def _pool_args(target: Target) -> dict[str, Any]:
    """Connect to the checked address; name the host for TLS SNI and certificate checks."""
    if target.scheme == "https":
        return {"server_hostname": target.host, "assert_hostname": target.host}
    return {}


class GuardedPoolManager(urllib3.PoolManager):
    """A ``urllib3.PoolManager`` that checks each URL under ``policy`` and connects to the checked address.

    It never follows redirects itself (a 3xx is returned as it is)."""

    def __init__(self, policy: EgressPolicy, **kw: Any):
        super().__init__(**kw)
        self.policy = policy

    def pinned_pool(self, target: Target, pool_kwargs: dict[str, Any] | None = None) -> HTTPConnectionPool:
        """The connection pool for a checked target (keyed by address, host name and TLS settings)."""
        return self.connection_from_host(target.ip, target.port, target.scheme,
                                         pool_kwargs={**(pool_kwargs or {}), **_pool_args(target)})

    def urlopen(self, method: str, url: str, redirect: bool = True,  # type: ignore[override]  # as PoolManager
                **kw: Any) -> urllib3.BaseHTTPResponse:
        target = self.policy.check(url)
        headers = dict(kw.pop("headers", None) or self.headers)
        headers["Host"] = target.host_header
        if kw.get("timeout") is None:
            kw["timeout"] = urllib3.Timeout(connect=self.policy.timeout_s, read=self.policy.timeout_s)
        preload = kw.pop("preload_content", True)
        kw.update(assert_same_host=False, redirect=False, headers=headers, preload_content=False)
        response = self.pinned_pool(target).urlopen(method, target.path, **kw)
        cap = self.policy.max_response_bytes
        _refuse_declared_size(response.headers, cap, response.release_conn)
        if preload:
            body = response.read(cap + 1, decode_content=kw.get("decode_content", True))
            if len(body) > cap:
                response.release_conn()
                raise ResponseTooLarge(f"the answer from {target.host} is larger than {cap} bytes",
                                       details={"limit": cap})
            if isinstance(response, urllib3.HTTPResponse):
                response._body = body  # what preload_content=True leaves behind (``response.data``)
            response.release_conn()
        return response


class _GuardedAdapter(HTTPAdapter):
    """requests' transport adapter on a :class:`GuardedPoolManager`: check, pin, bound time and size."""

    def __init__(self, policy: EgressPolicy):
        self.policy = policy
        super().__init__(max_retries=0)  # retries are the caller's (memrelay.engine.core.backoff)

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any) -> None:
        self.poolmanager = GuardedPoolManager(self.policy, num_pools=connections, maxsize=maxsize, block=block,
                                              **pool_kwargs)

    def get_connection_with_tls_context(self, request: requests.PreparedRequest, verify: bool | str | None,
                                        proxies: Mapping[str, str] | None = None,
                                        cert: Any = None) -> HTTPConnectionPool:
        target = self.policy.check(request.url or "")
        request.headers["Host"] = target.host_header
        _, pool_kwargs = self.build_connection_pool_key_attributes(request, True if verify is None else verify, cert)
        return self.poolmanager.pinned_pool(target, pool_kwargs)

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None,
             verify: bool | str = True, cert: Any = None, proxies: Mapping[str, str] | None = None
             ) -> requests.Response:
        if timeout is None:
            timeout = (self.policy.timeout_s, self.policy.timeout_s)
        resp = super().send(request, stream=True, timeout=timeout, verify=verify, cert=cert, proxies=None)
        cap = self.policy.max_response_bytes
        _refuse_declared_size(resp.headers, cap, resp.close)
        if not stream:
            body = bytearray()
            try:
                for chunk in resp.iter_content(_CHUNK):
                    body += chunk
                    if len(body) > cap:
                        raise ResponseTooLarge(f"the answer from {request.url} is larger than {cap} bytes",
                                               details={"limit": cap})
            except ResponseTooLarge:
                resp.close()
                raise
            resp._content = bytes(body)  # what requests.Response.content does after reading
            resp.raw.release_conn()
        return resp


def _refuse_declared_size(headers: Mapping[str, str], cap: int, close: Callable[[], None]) -> None:
    declared = headers.get("Content-Length")
    if declared and declared.strip().isdigit() and int(declared) > cap:
        close()
        raise ResponseTooLarge(f"the answer declares {declared} bytes, more than {cap}",
                               details={"limit": cap, "declared": int(declared)})


class GuardedSession(requests.Session):
    """A ``requests.Session`` whose every request and redirect hop goes through the guard of ``policy``.

    ``verify`` may be set to a CA bundle path; it then wins over ``REQUESTS_CA_BUNDLE`` (requests would
    otherwise let the environment override it). Environment proxies are not used."""

    def __init__(self, policy: EgressPolicy):
        super().__init__()
        self.policy = policy
        self.max_redirects = policy.max_redirects
        adapter = _GuardedAdapter(policy)
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        origin(url.decode() if isinstance(url, bytes) else url)  # a non-http(s) URL is refused as such
        return super().request(method, url, *args, **kwargs)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if not self.policy.follow_redirects:
            kwargs["allow_redirects"] = False
        return super().send(request, **kwargs)

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> Any:
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        settings["proxies"] = {}
        if isinstance(self.verify, str) and (verify is None or verify is True):
            settings["verify"] = self.verify
        return settings

    def rebuild_proxies(self, prepared_request: requests.PreparedRequest, proxies: Any) -> dict[str, str]:
        return {}


def post_for_status(session: GuardedSession, url: str, body: bytes, headers: Mapping[str, str]) -> HttpResult:
    """POST ``body`` once and keep the status, the headers and the first KiB of the answer.

    Raises ``BlockedAddress``, ``ResponseTooLarge`` (declared size) or a ``requests`` transport error."""
    with session.post(url, data=body, headers=dict(headers), stream=True) as resp:
        raw = resp.raw.read(SNIPPET_BYTES, decode_content=True) or b""
        return HttpResult(resp.status_code, {k.lower(): v for k, v in resp.headers.items()},
                          raw.decode("utf-8", "replace"))
