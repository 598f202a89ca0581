"""Egress (issue 17, item 2): IPv6 forms that embed a blocked IPv4 address are unwrapped and refused; CRM
API bases name only the providers' hosts (or an operator test host); every outbound HTTP call in the code
base goes through engine/egress/http.py. Only loopback is ever contacted (and here, nothing at all)."""

from __future__ import annotations

import ast
import socket
from pathlib import Path
from typing import Any

import pytest

from memrelay.connectors.registry import validate_config
from memrelay.engine.core.errors import ValidationFailed
from memrelay.engine.egress import crm_hosts
from memrelay.engine.egress.crm_hosts import check_crm_base
from memrelay.engine.egress.ssrf import BlockedAddress, check_url

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("host", [
    "[64:ff9b::a9fe:a9fe]",        # NAT64 (well-known prefix) of 169.254.169.254
    "[64:ff9b::7f00:1]",           # ... of 127.0.0.1
    "[64:ff9b::c0a8:101]",         # ... of 192.168.1.1
    "[64:ff9b:1::a9fe:a9fe]",      # local-use NAT64 prefix (RFC 8215)
    "[2002:a9fe:a9fe::1]",         # 6to4 of 169.254.169.254
    "[2002:0a00:0001::1]",         # 6to4 of 10.0.0.1
    "[::ffff:169.254.169.254]",    # IPv4-mapped
    "[::ffff:7f00:1]",
    "[::169.254.169.254]",         # IPv4-compatible (deprecated)
    "[::7f00:1]",
])
def test_ipv6_forms_of_blocked_ipv4_addresses_are_refused(host: str):
    with pytest.raises(BlockedAddress):
        check_url(f"http://{host}/latest/meta-data/")


def test_a_name_resolving_to_a_nat64_metadata_address_is_refused(monkeypatch: pytest.MonkeyPatch):
    real = socket.getaddrinfo

    def fake(host: Any, port: Any, *args: Any, **kw: Any) -> Any:
        if host == "metadata.test":
            return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("64:ff9b::a9fe:a9fe", int(port), 0, 0))]
        return real(host, port, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    with pytest.raises(BlockedAddress, match="non-public"):
        check_url("https://metadata.test/")


def test_the_org_allowlist_still_admits_a_nat64_form_of_an_allowlisted_network():
    assert check_url("http://[64:ff9b::a00:5]/", ["10.0.0.0/8"]).ip == "64:ff9b::a00:5"


# --- CRM API bases ---------------------------------------------------------------------------------
@pytest.fixture
def no_test_hosts():
    before = crm_hosts._test_hosts
    crm_hosts.configure_crm_test_hosts([])
    yield
    crm_hosts._test_hosts = before


@pytest.mark.parametrize("provider,url", [
    ("hubspot", "https://api.hubapi.com"), ("hubspot", "https://api-eu1.hubapi.com/"),
    ("salesforce", "https://acme.my.salesforce.com"), ("salesforce", "acme.my.salesforce.com"),
    ("salesforce", "https://acme--sandbox.sandbox.my.salesforce.com"), ("salesforce", "https://acme.lightning.force.com"),
])
def test_provider_hosts_are_accepted(no_test_hosts, provider: str, url: str):
    assert check_crm_base(provider, url) == url


@pytest.mark.parametrize("provider,url", [
    ("hubspot", "http://api.hubapi.com"),                 # not https
    ("hubspot", "https://169.254.169.254"), ("hubspot", "https://hubapi.com.evil.io"),
    ("hubspot", "https://evilhubapi.com"), ("hubspot", "http://127.0.0.1:8080"),
    ("salesforce", "https://acme.my.salesforce.com.evil.io"), ("salesforce", "https://[::1]"),
    ("salesforce", "https://metadata.google.internal"),
])
def test_other_crm_hosts_are_refused(no_test_hosts, provider: str, url: str):
    with pytest.raises(BlockedAddress):
        check_crm_base(provider, url)


def test_a_source_config_naming_another_host_is_a_422(no_test_hosts):
    with pytest.raises(ValidationFailed, match="api_base"):
        validate_config("hubspot", {"api_base": "http://169.254.169.254", "access_token": "pat"})
    with pytest.raises(ValidationFailed, match="instance_url"):
        validate_config("salesforce", {"instance_url": "https://10.0.0.1", "access_token": "x"})
    validate_config("hubspot", {"api_base": "https://api.hubapi.com", "access_token": "pat"})


def test_the_operator_may_admit_a_test_host(no_test_hosts):
    crm_hosts.configure_crm_test_hosts(["127.0.0.1"])
    assert check_crm_base("hubspot", "http://127.0.0.1:8123") == "http://127.0.0.1:8123"
    with pytest.raises(BlockedAddress):
        check_crm_base("hubspot", "http://10.0.0.1:8123")


def test_clients_refuse_a_stored_config_naming_another_host(no_test_hosts):
    """A config stored before validation existed is refused when a client is built (no request sent)."""
    from memrelay.connectors.hubspot.api import HubSpotApi
    from memrelay.connectors.salesforce.api import SalesforceApi

    with pytest.raises(BlockedAddress):
        HubSpotApi({"api_base": "http://169.254.169.254", "access_token": "pat"})
    with pytest.raises(BlockedAddress):
        SalesforceApi({"instance_url": "https://169.254.169.254", "access_token": "x"})


# --- one guarded client --------------------------------------------------------------------------
HTTP_LIBRARIES = {"requests", "httpx", "urllib3", "aiohttp", "http", "urllib"}
SENDING = {"get", "post", "put", "patch", "delete", "head", "options", "request", "urlopen", "Session", "Client",
           "AsyncClient", "ClientSession", "PoolManager", "ProxyManager", "HTTPConnection", "HTTPSConnection",
           "HTTPConnectionPool", "HTTPSConnectionPool", "connection_from_url"}
"""Names whose call sends a request or builds something that can (exception classes, Retry etc. cannot)."""
ALLOWED_FILES = {"engine/egress/http.py"}


def _outbound_calls(path: Path) -> list[str]:
    """Calls of a sending name of an HTTP library (``requests.post(...)``, ``PoolManager()``...)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            aliases.update({(a.asname or a.name.split(".")[0]): a.name for a in node.names
                            if a.name.split(".")[0] in HTTP_LIBRARIES})
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in HTTP_LIBRARIES:
            aliases.update({(a.asname or a.name): f"{node.module}.{a.name}" for a in node.names})
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        fn = node.func
        if isinstance(fn, ast.Attribute) and isinstance(fn.value, ast.Name) and fn.value.id in aliases:
            name = f"{aliases[fn.value.id]}.{fn.attr}"
        elif isinstance(fn, ast.Name) and fn.id in aliases:
            name = aliases[fn.id]
        else:
            continue
        if name.rsplit(".", 1)[-1] in SENDING:
            found.append(f"{path.relative_to(REPO)}:{node.lineno}: {name}")
    return found


def test_every_outbound_http_call_goes_through_the_egress_client():
    offenders = []
    for package in ("engine", "gateway", "connectors", "worker", "workflows", "memrelay"):
        for path in (REPO / package).rglob("*.py"):
            if str(path.relative_to(REPO)) not in ALLOWED_FILES:
                offenders += _outbound_calls(path)
    assert not offenders, "outbound HTTP outside engine/egress/http.py:\n" + "\n".join(offenders)


def test_the_scan_would_see_a_direct_call(tmp_path: Path):
    probe = REPO / "engine" / "egress" / "_probe_scan.py"
    probe.write_text("import requests\nfrom urllib3 import PoolManager\nrequests.post('http://x')\nPoolManager()\n")
    try:
        assert len(_outbound_calls(probe)) == 2
    finally:
        probe.unlink()
