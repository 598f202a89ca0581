"""The one error handler: every failure becomes ``{"success": false, "error": {"code", "message", "details"}}``."""

from __future__ import annotations

import logging
from typing import Any

import redis
from flask import Flask, Response, g, jsonify
from pydantic import ValidationError
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError
from werkzeug.exceptions import HTTPException

from memrelay.engine.core.errors import MemrelayError, RateLimited

log = logging.getLogger(__name__)

_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 413: "payload_too_large", 415: "unsupported_media_type"}


def _render(code: str, message: str, status: int, details: dict[str, Any] | None = None) -> tuple[Response, int]:
    body = {"success": False, "error": {"code": code, "message": message, "details": details or {},
                      "requestId": getattr(g, "request_id", None)}}
    return jsonify(body), status


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(MemrelayError)
    def _memrelay(exc: MemrelayError) -> tuple[Response, int]:
        if exc.http_status >= 500:
            log.error("request failed: %s", exc.message, extra={"code": exc.code})
        resp, status = _render(exc.code, exc.message, exc.http_status, exc.details)
        if isinstance(exc, RateLimited):
            resp.headers["Retry-After"] = str(exc.retry_after)
        return resp, status

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> tuple[Response, int]:
        status = exc.code or 500
        details = {}
        if status == 405 and exc.valid_methods:  # type: ignore[attr-defined]
            details["allowed"] = sorted(exc.valid_methods)  # type: ignore[attr-defined]
        resp, status = _render(_HTTP_CODES.get(status, "http_error"), exc.description or exc.name, status, details)
        if status == 405 and details.get("allowed"):
            resp.headers["Allow"] = ", ".join(details["allowed"])
        return resp, status

    @app.errorhandler(redis.RedisError)
    def _queue_down(exc: redis.RedisError) -> tuple[Response, int]:
        log.warning("job queue unavailable: %s", exc)
        return _render("queue_unavailable", "the job queue (Redis) is unavailable; retry shortly", 503)

    @app.errorhandler(ValidationError)
    def _invalid(exc: ValidationError) -> tuple[Response, int]:
        # input validated outside parse_body (an engine model built from client values)
        errors = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]
        return _render("validation_failed", "invalid input: " + "; ".join(
            f"{e['field']}: {e['message']}" for e in errors[:5]), 422, {"errors": errors})

    @app.errorhandler(IntegrityError)
    def _conflict(exc: IntegrityError) -> tuple[Response, int]:
        # a uniqueness/reference rule the store enforces; the transaction was rolled back, nothing stored
        log.warning("integrity conflict: %s", str(exc.orig)[:200])
        return _render("conflict", "the change conflicts with existing data (a name or key already in use, "
                                   "or a reference that no longer exists)", 409)

    @app.errorhandler(DataError)
    def _bad_data(exc: DataError) -> tuple[Response, int]:
        log.warning("value refused by the database: %s", str(exc.orig)[:200])
        return _render("validation_failed", "a value is out of the range or size the store accepts", 422)

    def _db_unavailable(exc: DBAPIError) -> tuple[Response, int]:
        # a lost or reset connection, a failover, SQLite busy: the transaction was rolled back, nothing stored
        log.warning("database unavailable: %s", str(exc.orig)[:200])
        resp, status = _render("database_unavailable", "the database is unavailable; retry shortly", 503)
        resp.headers["Retry-After"] = "1"
        return resp, status

    @app.errorhandler(OperationalError)
    def _db_down(exc: OperationalError) -> tuple[Response, int]:
        return _db_unavailable(exc)

    @app.errorhandler(DBAPIError)
    def _db_error(exc: DBAPIError) -> tuple[Response, int]:
        return _db_unavailable(exc) if exc.connection_invalidated else _unexpected(exc)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> tuple[Response, int]:
        log.exception("unhandled error")
        return _render("internal_error", "internal server error", 500)
