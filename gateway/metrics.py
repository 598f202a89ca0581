"""Prometheus metrics (multi-process aware under gunicorn via PROMETHEUS_MULTIPROC_DIR).

Labels are deployment-wide by construction: the method, the route *template* (``/api/v1/keys/<key_id>``,
``unmatched`` for a 404) and the status — never a path, an id, a token or an org. The scrape endpoint itself is
an operator's, not an org's: with ``MEMRELAY_METRICS_TOKEN`` set it requires ``Authorization: Bearer <token>``
(Prometheus ``authorization: {type: Bearer, credentials_file: …}``); unset, it answers only a direct loopback
caller (a request relayed by a proxy — any ``Forwarded``/``X-Forwarded-For``/``X-Real-IP`` header — is refused),
so a fresh install never publishes it. Org API keys, admin ones included, are not accepted: metrics span every
org of the deployment.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from pydantic import SecretStr

REQUESTS = Counter("memrelay_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("memrelay_http_request_seconds", "HTTP request latency", ["method", "route"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    REQUESTS.labels(method, route, str(status)).inc()
    LATENCY.labels(method, route).observe(seconds)


def render_metrics() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


PROXY_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")


def scrape_allowed(token: SecretStr | None, remote_addr: str | None, headers: Any) -> bool:
    """Whether a ``/metrics`` request may be answered (see the module docstring); ``headers`` is any mapping
    with ``get`` (Werkzeug's ``Headers``)."""
    if token is not None and token.get_secret_value():
        auth = headers.get("Authorization", "")
        given = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        return bool(given) and hmac.compare_digest(given.encode(), token.get_secret_value().encode())
    if any(headers.get(h) for h in PROXY_HEADERS):
        return False
    try:
        return ipaddress.ip_address((remote_addr or "").split("%", 1)[0]).is_loopback
    except ValueError:
        return False
