"""Safe outbound HTTP: refuse targets on non-public addresses and pin the connection to the checked one.

A target URL must be http(s) and every address its host resolves to must be public, unless the org's
allowlist names the host, the address or a network containing it. ``post`` connects to the address that
was checked (Host header and TLS SNI/certificate still use the host name), so a DNS answer that changes
between the check and the connection (rebinding) cannot redirect a delivery. Redirects are never followed.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3

from memrelay.engine.core.errors import ValidationFailed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?\.)*[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?$")
SNIPPET_BYTES = 1024


class BlockedAddress(ValidationFailed):
    """The URL is not http(s), does not resolve, or resolves to a non-public address."""

    code = "blocked_url"


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (``ip``) and what to call it (``host``)."""

    scheme: str
    host: str
    port: int
    path: str
    ip: str

    @property
    def host_header(self) -> str:
        name = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return name if self.port == default else f"{name}:{self.port}"


@dataclass(frozen=True)
class HttpResult:
    status: int
    headers: dict[str, str]
    snippet: str


def normalise_allowlist(entries: Iterable[str]) -> list[str]:
    """Validate allowlist entries (host names, IP addresses, CIDR networks); 422 naming a bad one."""
    out: list[str] = []
    for raw in entries:
        entry = str(raw).strip().lower()
        try:
            out.append(str(ipaddress.ip_network(entry, strict=False)))
            continue
        except ValueError:
            pass
        if not _HOSTNAME.match(entry):
            raise ValidationFailed(f"allowlist entry {raw!r} is not a host name, IP address or CIDR network",
                                   details={"entry": raw})
        out.append(entry)
    return list(dict.fromkeys(out))


def _public(ip: IPAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _allowed(ip: IPAddress, networks: list[Network]) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip.version == n.version and ip in n for n in networks)


def _split(allowlist: Iterable[str]) -> tuple[set[str], list[Network]]:
    """Allowlist entries as host names and networks."""
    hosts: set[str] = set()
    networks: list[Network] = []
    for entry in allowlist:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            hosts.add(entry.lower())
    return hosts, networks


def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise BlockedAddress(f"cannot resolve {host!r}: {exc}", details={"host": host}) from None
    return list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos))


def check_url(url: str, allowlist: Iterable[str] = ()) -> Target:
    """Resolve ``url`` and refuse it unless every address is public or allowlisted."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise BlockedAddress("the URL must use http or https", details={"url": url})
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise BlockedAddress("the URL has an invalid port", details={"url": url}) from None
    if not host:
        raise BlockedAddress("the URL has no host", details={"url": url})
    port = port or (443 if parts.scheme == "https" else 80)
    hosts, networks = _split(allowlist)
    ips = _resolve(host, port)
    if host not in hosts:
        bad = [str(ip) for ip in ips if not _public(ip) and not _allowed(ip, networks)]
        if bad:
            raise BlockedAddress(f"{host} resolves to a non-public address ({', '.join(bad)}); "
                                 "an admin can allowlist it (PUT /api/v1/webhooks/allowlist)",
                                 details={"host": host, "addresses": bad})
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, host, port, path, str(ips[0]))


def post(target: Target, body: bytes, headers: dict[str, str], *, timeout_s: float) -> HttpResult:
    """POST to the checked address; raises ``urllib3`` errors on network failure and timeout."""
    kw: dict[str, object] = {"timeout": urllib3.Timeout(total=timeout_s), "retries": False, "maxsize": 1}
    if target.scheme == "https":
        pool: urllib3.HTTPConnectionPool = urllib3.HTTPSConnectionPool(
            target.ip, target.port, server_hostname=target.host, assert_hostname=target.host, **kw)
    else:
        pool = urllib3.HTTPConnectionPool(target.ip, target.port, **kw)
    try:
        resp = pool.urlopen("POST", target.path, body=body, headers={**headers, "Host": target.host_header},
                            redirect=False, preload_content=False)
        try:
            snippet = resp.read(SNIPPET_BYTES, decode_content=True).decode("utf-8", "replace")
        finally:
            resp.release_conn()
        return HttpResult(resp.status, {k.lower(): v for k, v in resp.headers.items()}, snippet)
    finally:
        pool.close()
