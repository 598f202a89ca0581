"""Liveness, readiness, metrics and the API description."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, jsonify, request

from memrelay.engine.core.errors import Forbidden, MemrelayError, Unauthorized
from memrelay.gateway.api import api_key_from_request
from memrelay.gateway.metrics import render_metrics, scrape_allowed
from memrelay.gateway.openapi import build_openapi, docs_html
from memrelay.gateway.state import state
from memrelay.queue.workers import STALE_AFTER_S, live_workers

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Any:
    """The process is alive."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Any:
    """Ready when SQL, the vector index, Redis and at least one worker answer.

    Probes get the status alone; the per-check detail (versions, counts, error text) only to a caller
    presenting an admin-scoped API key."""
    checks = readiness_checks()
    ok = all(c["ok"] for c in checks.values())
    body: dict[str, Any] = {"status": "ready" if ok else "not_ready"}
    if _is_admin():
        body["checks"] = checks
    return jsonify(body), 200 if ok else 503


def _is_admin() -> bool:
    key = api_key_from_request()
    if not key:
        return False
    try:
        return state().services.tenancy.authenticate(key).allows("admin")
    except MemrelayError:  # a wrong key on a probe is not an error: it just sees the status
        return False


def readiness_checks() -> dict[str, dict[str, Any]]:
    st = state()
    checks: dict[str, dict[str, Any]] = {}

    def run(name: str, fn: Callable[[], dict[str, Any] | None]) -> None:
        try:
            detail = fn()
            checks[name] = {"ok": True, **(detail or {})}
        except Exception as exc:  # a readiness probe reports, it does not raise
            checks[name] = {"ok": False, "error": f"{exc.__class__.__name__}: {exc}"}

    def sql() -> dict[str, Any]:
        st.services.db.ping()
        return {"dialect": st.services.db.dialect}

    run("sql", sql)
    run("redis", lambda: {"ping": bool(st.redis.ping())})
    run("vector_index", lambda: st.services.vector_index.ping())

    def workers() -> dict[str, Any]:
        n = len(live_workers(st.redis))
        if n < 1:
            raise RuntimeError(f"no live RQ worker (none beat in the last {STALE_AFTER_S} s)")
        return {"count": n}

    run("workers", workers)

    def warm() -> dict[str, Any]:  # gunicorn workers warm before serving (memrelay.warmup)
        from memrelay.warmup import loaded_modules

        if st.warm is not None and not st.warm.ok:
            raise RuntimeError(f"warm-up failed: {st.warm.required_failed or 'not finished'}")
        return {"warmed": st.warm is not None, **(st.warm.as_dict() if st.warm else {}),
                "embedderLoaded": bool(getattr(st.services.embedder, "loaded", True)), "modules": loaded_modules()}

    run("warm", warm)
    return checks


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus exposition: bearer ``MEMRELAY_METRICS_TOKEN``, or direct loopback callers when unset."""
    token = state().settings.metrics_token
    if not scrape_allowed(token, request.remote_addr, request.headers):
        if token is not None:
            raise Unauthorized("/metrics needs 'Authorization: Bearer <MEMRELAY_METRICS_TOKEN>'")
        raise Forbidden("/metrics answers loopback callers only; set MEMRELAY_METRICS_TOKEN to scrape it remotely")
    body, ctype = render_metrics()
    return Response(body, content_type=ctype)


@bp.get("/openapi.json")
def openapi() -> Any:
    return jsonify(build_openapi())


@bp.get("/docs")
def docs() -> Response:
    return Response(docs_html(), content_type="text/html")
