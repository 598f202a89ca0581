"""The SSRF guard: refuse targets on non-public addresses and say where a checked URL may connect.

A target URL must be http(s) and every address its host resolves to must be public, unless the org's
allowlist names the host, the address or a network containing it, or the URL's origin is one the operator
configured (a CRM API base: :func:`origin`, passed as ``trusted``). The answer is a :class:`Target` holding
the checked address; :mod:`memrelay.engine.egress.http` connects to exactly that address (Host header and
TLS SNI/certificate still use the host name), so a DNS answer that changes between the check and the
connection (rebinding) cannot redirect a request.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from memrelay.engine.core.errors import ValidationFailed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?\.)*[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?$")


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


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_V4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # deprecated IPv4-compatible form (::a.b.c.d)
_NEVER_PUBLIC = (ipaddress.IPv6Network("64:ff9b:1::/48"),)  # local-use NAT64 (RFC 8215): a private translator


def _embedded_v4(ip: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one stands for (IPv4-mapped, IPv4-compatible, 6to4, NAT64 well-known
    prefix), else itself."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            return ip.ipv4_mapped
        if ip.sixtofour:
            return ip.sixtofour
        if ip in _NAT64 or ip in _V4_COMPATIBLE:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def _public(ip: IPAddress) -> bool:
    if any(ip in net for net in _NEVER_PUBLIC if ip.version == net.version):
        return False
    ip = _embedded_v4(ip)
    return ip.is_global and not ip.is_multicast


_LOCAL = (ipaddress.IPv4Network("127.0.0.0/8"), ipaddress.IPv6Network("::1/128"),
          ipaddress.IPv4Network("169.254.0.0/16"), ipaddress.IPv6Network("fe80::/10"))


def is_local(ip: IPAddress) -> bool:
    """Loopback or link-local (cloud metadata lives at 169.254.169.254), also in an embedded IPv4 form."""
    forms = (ip, _embedded_v4(ip))
    return any(form.version == net.version and form in net for net in _LOCAL for form in forms)


def _allowed(ip: IPAddress, networks: list[Network]) -> bool:
    ip = _embedded_v4(ip)
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


def origin(url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of an http(s) URL, lower-cased, default port filled in; no DNS lookup.
    Raises ``BlockedAddress`` for another scheme, no host or a bad port."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https"):
        raise BlockedAddress("the URL must use http or https", details={"url": url})
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise BlockedAddress("the URL has an invalid port", details={"url": url}) from None
    if not host:
        raise BlockedAddress("the URL has no host", details={"url": url})
    scheme = parts.scheme.lower()
    return scheme, host.lower(), port or (443 if scheme == "https" else 80)


def check_url(url: str, allowlist: Iterable[str] = (), *,
              trusted: Iterable[tuple[str, str, int]] = (), allow_local: bool = True) -> Target:
    """Resolve ``url`` and refuse it unless every address is public or allowlisted, or its :func:`origin`
    is one of the operator-configured ``trusted`` origins (then any address is accepted). ``allow_local=False``:
    a loopback or link-local address is refused even when the allowlist names it (an operator setting)."""
    scheme, host, port = origin(url)
    parts = urlsplit(url.strip())
    hosts, networks = _split(allowlist)
    ips = _resolve(host, port)
    if not allow_local and (scheme, host, port) not in set(trusted):
        local = [str(ip) for ip in ips if is_local(ip)]
        if local:
            raise BlockedAddress(f"{host} resolves to a loopback or link-local address ({', '.join(local)}); "
                                 "only an operator setting can admit those", details={"host": host, "addresses": local})
    if host not in hosts and (scheme, host, port) not in set(trusted):
        bad = [str(ip) for ip in ips if not _public(ip) and not _allowed(ip, networks)]
        if bad:
            raise BlockedAddress(f"{host} resolves to a non-public address ({', '.join(bad)}); "
                                 "an admin can allowlist it (PUT /api/v1/webhooks/allowlist)",
                                 details={"host": host, "addresses": bad})
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(scheme, host, port, path, str(ips[0]))
