"""Flask application factory."""

from __future__ import annotations

import logging
import time
import uuid

from flask import Flask, Response, g, request

from memrelay.composition import Services, build_services
from memrelay.engine.core.access import reset_access
from memrelay.engine.core.logging_setup import configure_logging, request_id_var
from memrelay.engine.core.settings import Settings, load_settings
from memrelay.gateway.bodylimit import buffer_streamed_body
from memrelay.gateway.errors import register_error_handlers
from memrelay.gateway.metrics import observe_request
from memrelay.gateway.state import AppState
from memrelay.queue.connection import connect

log = logging.getLogger("memrelay.gateway")


def create_app(settings: Settings | None = None, *, services: Services | None = None) -> Flask:
    """Build the WSGI app. ``settings`` default to the environment (``MEMRELAY_*``); ``services`` to
    ``build_services(settings)`` (call this after any fork: each gunicorn worker builds its own)."""
    settings = settings or load_settings()
    configure_logging(settings.log_level, json_logs=settings.log_json)
    settings.ensure_data_dir()
    app = Flask("memrelay")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    services = services or build_services(settings)
    app.extensions["memrelay"] = AppState(settings=settings, services=services, redis=connect(settings))

    @app.before_request
    def _start() -> None:
        g.request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex
        g.t0 = time.perf_counter()
        request_id_var.set(g.request_id)
        reset_access()  # no department scope until this request's key is authenticated
        buffer_streamed_body()

    @app.teardown_request
    def _end(_exc: BaseException | None) -> None:
        reset_access()  # the thread serves the next request (or a test's direct engine calls) org-wide

    @app.after_request
    def _finish(resp: Response) -> Response:
        resp.headers["X-Request-Id"] = g.get("request_id", "")
        if rl := g.get("rate_limit"):
            resp.headers["X-RateLimit-Limit"], resp.headers["X-RateLimit-Remaining"] = str(rl[0]), str(rl[1])
            resp.headers["X-RateLimit-Reset"] = str(rl[2])
        elapsed = time.perf_counter() - g.get("t0", time.perf_counter())
        observe_request(request.method, request.url_rule.rule if request.url_rule else "unmatched",
                        resp.status_code, elapsed)
        return resp

    register_error_handlers(app)
    from memrelay.gateway.blueprints import register_blueprints

    register_blueprints(app)
    from memrelay.gateway.console import bp as console_bp  # operator console at /console

    app.register_blueprint(console_bp)
    # Index what a crash left pending, in the background, so start-up never waits for Milvus.
    services.index.start_background_reconcile()
    return app


def warm_app(app: Flask) -> None:
    """Warm this process before it serves (gunicorn ``post_worker_init``): the services' heavy loads (see
    :mod:`memrelay.warmup`), then one request through Flask's routing, JSON and error rendering."""
    from memrelay.warmup import warm_services

    st: AppState = app.extensions["memrelay"]
    report = warm_services(st.services)
    t = time.perf_counter()
    try:
        with app.test_client() as client:
            client.get("/healthz")
            client.get("/api/v1/me")  # 401 through the API error path
        report.steps["flask"] = time.perf_counter() - t
    except Exception as exc:  # reported by /readyz to an admin
        report.errors["flask"] = f"{exc.__class__.__name__}: {exc}"
    st.warm = report
