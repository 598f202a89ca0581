"""CRM API base URLs may only name the provider's own hosts.

An org admin sets a HubSpot ``api_base`` or a Salesforce ``instance_url`` in a source's config, and the
worker sends that org's CRM token there. So the host must be the provider's (HTTPS, one of the suffixes
below); anything else — another host, an address, a link-local metadata service — is refused when the
config is saved (422) and again when a client is built. The operator (never an org) may admit test hosts
with ``MEMRELAY_CRM_TEST_HOSTS`` (e.g. ``127.0.0.1`` for local fakes); those may use http and any port.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from memrelay.engine.egress.ssrf import BlockedAddress, origin

PROVIDER_HOST_SUFFIXES: dict[str, tuple[str, ...]] = {
    "hubspot": ("hubapi.com", "hubspot.com"),
    "salesforce": ("salesforce.com", "force.com", "cloudforce.com", "database.com", "salesforce.mil",
                   "sfcrmproducts.cn"),
}
_test_hosts: frozenset[str] = frozenset()


def configure_crm_test_hosts(hosts: Iterable[str]) -> None:
    """Set the operator's extra CRM hosts (``MEMRELAY_CRM_TEST_HOSTS``; per process)."""
    global _test_hosts
    _test_hosts = frozenset(h.strip().lower() for h in hosts if h and h.strip())


def _provider_host(host: str, suffixes: tuple[str, ...]) -> bool:
    return any(host == s or host.endswith("." + s) for s in suffixes)


def check_crm_base(provider: str, url: str) -> str:
    """``url`` if it names ``provider``'s API over HTTPS (or an operator test host); BlockedAddress (422)."""
    scheme, host, _port = origin(url if "://" in url else "https://" + url)
    if host in _test_hosts:
        return url
    suffixes = PROVIDER_HOST_SUFFIXES[provider]
    if scheme != "https" or not _provider_host(host, suffixes):
        raise BlockedAddress(
            f"the {provider} API base must be an https URL on {', '.join('*.' + s for s in suffixes)}; "
            "the operator can admit a test host with MEMRELAY_CRM_TEST_HOSTS",
            details={"host": host, "provider": provider})
    return url


def crm_base_validator(provider: str) -> Callable[[str], str]:
    """A pydantic validator for a config field holding ``provider``'s API base (ValueError → 422 on the field)."""

    def validate(url: str) -> str:
        try:
            return check_crm_base(provider, url)
        except BlockedAddress as exc:
            raise ValueError(exc.message) from None

    return validate
