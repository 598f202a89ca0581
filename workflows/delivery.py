"""Delivery transports: a JSON webhook / Slack incoming webhook (the guarded HTTP client of
:mod:`memrelay.engine.egress.http`) and SMTP email (smtplib).

A URL written in a workflow definition (or named there as ``env:NAME``) is operator configuration and is
reached as written; a URL rendered from run data (``{{ input.url }}``) is org-supplied and passes the SSRF
guard strictly, under the org's webhook allowlist. Redirects are not followed.

SMTP is configured from the environment (``MEMRELAY_SMTP_HOST`` default ``127.0.0.1``, ``_PORT`` default 25,
``_FROM``, ``_USER``, ``_PASSWORD``, ``_STARTTLS``).
"""

from __future__ import annotations

import os
import smtplib
from collections.abc import Iterable
from email.message import EmailMessage
from typing import Any

import requests

from memrelay.engine.core.errors import ConfigError, UpstreamError
from memrelay.engine.egress.http import BlockedAddress, EgressPolicy, GuardedSession, ResponseTooLarge

TIMEOUT_S = 10


class DeliveryFailed(UpstreamError):
    code = "delivery_failed"

    def __init__(self, message: str, *, retryable: bool, details: dict[str, Any] | None = None):
        super().__init__(message, details={"retryable": retryable, **(details or {})})
        self.retryable = retryable


def resolve_url(url: str) -> str:
    if url.startswith("env:"):
        name = url[4:]
        value = os.environ.get(name, "").strip()
        if not value:
            raise ConfigError(f"environment variable {name} (delivery URL) is not set", details={"env": name})
        return value
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"delivery URL must be http(s): {url[:100]!r}")
    return url


def egress_policy(url: str, target: str, written: str | None, allowlist: Iterable[str], *,
                  allow_local: bool = False) -> EgressPolicy:
    """Operator-configured (trusted as written) when ``url`` is the definition's own text or ``env:`` name;
    otherwise the org-supplied policy under ``allowlist`` (loopback / link-local only with ``allow_local``,
    the operator's setting)."""
    if written is not None and (written.startswith("env:") or written == url):
        return EgressPolicy.configured(target, follow_redirects=False, timeout_s=TIMEOUT_S)
    return EgressPolicy.user_url(allowlist, timeout_s=TIMEOUT_S, allow_local=allow_local)


def post_json(url: str, body: dict[str, Any], *, written: str | None = None,
              allowlist: Iterable[str] = (), allow_local: bool = False) -> dict[str, Any]:
    """POST ``body`` to ``url`` (rendered from ``written``, the definition's text); 5xx/429/connection errors
    are retryable, other non-2xx and refused targets (``blocked_url``) are not."""
    target = resolve_url(url)
    try:
        with GuardedSession(egress_policy(url, target, written, allowlist, allow_local=allow_local)) as http:
            resp = http.post(target, json=body)
    except BlockedAddress as exc:
        raise DeliveryFailed(f"POST refused: {exc.message}", retryable=False,
                             details={"code": exc.code, **exc.details}) from None
    except ResponseTooLarge as exc:
        raise DeliveryFailed(f"POST failed: {exc.message}", retryable=False, details=exc.details) from None
    except requests.RequestException as exc:
        raise DeliveryFailed(f"POST failed: {exc.__class__.__name__}", retryable=True) from None
    if resp.status_code >= 300:
        retry = resp.status_code >= 500 or resp.status_code == 429
        raise DeliveryFailed(f"POST answered {resp.status_code}", retryable=retry,
                             details={"status": resp.status_code, "body": resp.text[:300]})
    return {"status": resp.status_code}


def send_email(to: str, subject: str, text: str) -> dict[str, Any]:
    env = os.environ
    host, port = env.get("MEMRELAY_SMTP_HOST", "127.0.0.1"), int(env.get("MEMRELAY_SMTP_PORT", "25"))
    msg = EmailMessage()
    msg["From"] = env.get("MEMRELAY_SMTP_FROM", "memrelay@localhost")
    msg["To"], msg["Subject"] = to, subject
    msg.set_content(text)
    try:
        with smtplib.SMTP(host, port, timeout=TIMEOUT_S) as smtp:
            if env.get("MEMRELAY_SMTP_STARTTLS", "").lower() in ("1", "true", "yes"):
                smtp.starttls()
            if env.get("MEMRELAY_SMTP_USER"):
                smtp.login(env["MEMRELAY_SMTP_USER"], env.get("MEMRELAY_SMTP_PASSWORD", ""))
            refused = smtp.send_message(msg)
    except smtplib.SMTPResponseException as exc:
        raise DeliveryFailed(f"SMTP answered {exc.smtp_code}", retryable=exc.smtp_code >= 400 and exc.smtp_code < 500,
                             details={"smtpCode": exc.smtp_code}) from None
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryFailed(f"SMTP to {host}:{port} failed: {exc.__class__.__name__}", retryable=True) from None
    return {"to": to, "refused": sorted(refused), "messageId": msg.get("Message-ID")}
