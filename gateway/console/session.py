"""Console sign-in: a server-side session in Redis, a CSRF token per session, and per-view scope checks.

The browser holds only a random session id (cookie ``mrc_session``: HttpOnly, SameSite=Strict, Path=/console,
Secure over HTTPS). Redis holds, under the SHA-256 of that id, the API key encrypted (AES-GCM) with a key derived
from the id — so neither a Redis dump nor the cookie alone reveals the API key — and the session's CSRF token.
Every request re-authenticates the key (a revoked key signs the console out at once), checks the view's scope and
counts against the key's rate limit like any API call. Every POST carries the CSRF token (a form field compared
in constant time); the sign-in form, which has no session yet, uses a double-submit cookie.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import redis
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import g, redirect, request, url_for
from werkzeug.wrappers import Response

from memrelay.engine.core.errors import Forbidden, Unauthorized
from memrelay.engine.stores.tenancy import KeyInfo
from memrelay.gateway.ratelimit import enforce_rate_limit
from memrelay.gateway.state import state
from memrelay.queue import redis_keys

SESSION_COOKIE = "mrc_session"
LOGIN_CSRF_COOKIE = "mrc_login_csrf"
SESSION_TTL_S = 8 * 3600
COOKIE_PATH = "/console"
F = TypeVar("F", bound=Callable[..., Any])


class CsrfError(Forbidden):
    code = "csrf_failed"


@dataclass
class ConsoleSession:
    sid: str
    api_key: str
    csrf: str
    flashes: list[list[str]] = field(default_factory=list)


def _digest(sid: str) -> str:
    return hashlib.sha256(b"memrelay-console-id:" + sid.encode()).hexdigest()


def _box(sid: str) -> AESGCM:
    return AESGCM(hashlib.sha256(b"memrelay-console-key:" + sid.encode()).digest())


def _seal(sid: str, api_key: str) -> str:
    nonce = secrets.token_bytes(12)
    return base64.b64encode(nonce + _box(sid).encrypt(nonce, api_key.encode(), b"console")).decode()


def _open(sid: str, sealed: str) -> str:
    raw = base64.b64decode(sealed)
    return _box(sid).decrypt(raw[:12], raw[12:], b"console").decode()


def _redis() -> redis.Redis:
    return state().redis


def create_session(api_key: str) -> ConsoleSession:
    sid = secrets.token_urlsafe(32)
    sess = ConsoleSession(sid, api_key, secrets.token_urlsafe(32))
    _save(sess)
    return sess


def _save(sess: ConsoleSession) -> None:
    body = {"k": _seal(sess.sid, sess.api_key), "csrf": sess.csrf, "flashes": sess.flashes[-10:],
            "created": int(time.time())}
    key = redis_keys.console_session(_digest(sess.sid))
    ttl = _redis().ttl(key)
    _redis().set(key, json.dumps(body), ex=ttl if isinstance(ttl, int) and ttl > 0 else SESSION_TTL_S)


def load_session() -> ConsoleSession | None:
    sid = request.cookies.get(SESSION_COOKIE)
    if not sid or len(sid) > 200:
        return None
    raw = cast("bytes | None", _redis().get(redis_keys.console_session(_digest(sid))))
    if raw is None:
        return None
    body = json.loads(raw)
    try:
        api_key = _open(sid, body["k"])
    except Exception:  # a tampered or foreign value: no session
        return None
    return ConsoleSession(sid, api_key, body["csrf"], body.get("flashes") or [])


def destroy_session(sess: ConsoleSession | None) -> None:
    if sess is not None:
        _redis().delete(redis_keys.console_session(_digest(sess.sid)))


def set_cookie(resp: Response, name: str, value: str, *, max_age: int | None) -> None:
    resp.set_cookie(name, value, max_age=max_age, path=COOKIE_PATH, secure=request.is_secure, httponly=True,
                    samesite="Strict")


def flash(kind: str, message: str) -> None:
    """A message for the next page this session renders (kept in the server-side session)."""
    sess: ConsoleSession | None = g.get("console_session")
    if sess is not None:
        sess.flashes.append([kind, message])
        _save(sess)


def pop_flashes() -> list[list[str]]:
    sess: ConsoleSession | None = g.get("console_session")
    if sess is None or not sess.flashes:
        return []
    out, sess.flashes = sess.flashes, []
    _save(sess)
    return out


def check_csrf(expected: str) -> None:
    sent = request.form.get("csrf_token", "")
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise CsrfError("the form's CSRF token is missing or wrong; reload the page and try again")
    origin = request.headers.get("Origin")
    if origin and origin != "null" and origin.rstrip("/") != request.host_url.rstrip("/"):
        raise CsrfError("cross-origin form submission refused")


def console_auth(scope: str) -> Callable[[F], F]:
    """Require a signed-in session whose key has ``scope``; POSTs also need the session's CSRF token.

    Signed out: GETs redirect to the sign-in page, other methods answer 401."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            sess = load_session()
            info: KeyInfo | None = None
            if sess is not None:
                try:
                    info = state().services.tenancy.authenticate(sess.api_key)
                except Unauthorized:
                    destroy_session(sess)
                    sess = None
            if sess is None or info is None:
                if request.method == "GET":
                    return redirect(url_for("console.login", next=request.full_path.rstrip("?")))
                raise Unauthorized("sign in to the console first")
            g.console_session, g.auth = sess, info
            if info.access.restricted:  # its pages show org-wide resources (events, sources, outbound)
                raise Forbidden("the console needs an org-wide key; this key is restricted to a department",
                                details={"access": info.access.to_json()})
            if request.method == "POST":
                check_csrf(sess.csrf)
            if not info.allows(scope):
                raise Forbidden(f"this page needs a key with the '{scope}' scope",
                                details={"scopes": list(info.scopes)})
            enforce_rate_limit(info)
            return view(info, *args, **kwargs)

        return cast(F, wrapper)

    return decorate


def current_auth() -> KeyInfo | None:
    return cast("KeyInfo | None", g.get("auth"))
