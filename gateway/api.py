"""Endpoint declaration: auth scope, rate limit, body parsing and OpenAPI metadata in one decorator."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Blueprint, g, jsonify, request
from pydantic import BaseModel, ValidationError

from memrelay.engine.core.errors import BadRequest, Forbidden, ValidationFailed
from memrelay.engine.core.safejson import check_tree, loads_bounded
from memrelay.engine.stores.tenancy import KeyInfo
from memrelay.gateway.ratelimit import enforce_rate_limit
from memrelay.gateway.state import state

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class EndpointDoc:
    """One operation as ``/openapi.json`` documents it (see :mod:`memrelay.gateway.openapi`)."""

    path: str
    method: str
    summary: str
    scope: str | None
    body: type[BaseModel] | None
    response: type[BaseModel] | None
    tag: str
    envelope: bool = True
    operation_id: str = ""
    query: type[BaseModel] | None = None
    status: int = 200
    also: tuple[tuple[int, type[BaseModel] | None], ...] = ()
    errors: tuple[int, ...] = ()
    body_example: dict[str, Any] | None = None
    description: str = ""


ENDPOINTS: list[EndpointDoc] = []


def api_key_from_request() -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return request.headers.get("X-API-Key") or None


def authenticate(scope: str) -> KeyInfo:
    """Resolve the caller's key, check its scope and its rate limit."""
    info = state().services.tenancy.authenticate(api_key_from_request())
    g.auth = info
    if not info.allows(scope):
        raise Forbidden(f"this key lacks the '{scope}' scope", details={"scopes": list(info.scopes)})
    from memrelay.gateway.department import enter

    enter(info)  # a department-restricted key: its routes only, its scope bound for the engine calls
    enforce_rate_limit(info)
    return info


def request_payload() -> dict[str, Any]:
    """The JSON (or form-encoded, ``__``-flattened) body as a dict; 400 naming the problem otherwise.

    Bodies are bounded (:mod:`memrelay.engine.core.safejson`): nesting depth, 64-bit integers, no NaN or
    lone surrogates; the size limit (413) is Flask's ``MAX_CONTENT_LENGTH``, chunked bodies included."""
    ctype = (request.mimetype or "").lower()
    raw = request.get_data(cache=True)
    if ctype == "application/x-www-form-urlencoded":
        from memrelay.connectors.formdata import parse_fields

        fields = parse_fields(raw, request.content_type or "")
        check_tree(fields)
        return fields
    if not raw.strip():
        return {}
    data = loads_bounded(raw)
    if not isinstance(data, dict):
        raise BadRequest("the JSON body must be an object")
    return data


def parse_body(model: type[M], data: dict[str, Any] | None = None) -> M:
    """Validate the body against ``model``: 422 listing each bad field (400 for a body of the wrong shape)."""
    try:
        return model.model_validate(request_payload() if data is None else data)
    except TypeError as exc:  # a "before" validator met a value of the wrong JSON type (e.g. a list for an object)
        raise BadRequest(f"request body has the wrong shape: {exc}") from None
    except ValidationError as exc:
        errors = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]
        raise ValidationFailed("request body is invalid: " + "; ".join(f"{e['field']}: {e['message']}"
                                                                       for e in errors[:5]),
                               details={"errors": errors}) from None


def enveloped(payload: Any) -> dict[str, Any]:
    """Personize's success envelope: every documented endpoint answers ``{"success": true, "data": ...}``."""
    return {"success": True, "data": payload}


def endpoint(bp: Blueprint, rule: str, *, methods: tuple[str, ...] = ("POST",), scope: str | None = "read",
             body: type[BaseModel] | None = None, response: type[BaseModel] | None = None,
             summary: str = "", envelope: bool = True, operation_id: str | None = None,
             query: type[BaseModel] | None = None, status: int = 200,
             also: Mapping[int, type[BaseModel] | None] | None = None, errors: tuple[int, ...] = (),
             example: dict[str, Any] | None = None,
             body_doc: type[BaseModel] | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a view: ``view(auth, body?, **url_args)`` returning a dict/list or (payload, status).

    Answers are wrapped in Personize's envelope ``{"success": true, "data": payload}``; ``envelope=False``
    is for callers with a fixed protocol of their own (Zapier's polling triggers expect a bare array).

    The rest documents the operation: ``response`` is the model of the success payload (``data``) answered
    with ``status``; ``also`` maps other success statuses the view answers to their payload model (e.g. 202
    when queued); ``query`` the query-string arguments the view reads; ``errors`` statuses beyond those that
    follow from the declaration (401/403/429 with a scope, 400/413/422 with a body, 413 for any other
    POST/PUT/PATCH, 400/422 with a query, 404 with a path argument, 503 always); ``operation_id`` defaults to the view's name (``_<method>`` appended when the view
    serves several methods); ``example`` is a request body example; ``body_doc`` documents the request body of
    a view that parses its body itself (``body`` is then None).
    """

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(**kwargs: Any) -> Any:
            args: list[Any] = []
            if scope is not None:
                args.append(authenticate(scope))
            if body is not None:
                args.append(parse_body(body))
            result = view(*args, **kwargs)
            code = 200
            if isinstance(result, tuple):
                result, code = result
            if isinstance(result, BaseModel):
                result = result.model_dump(mode="json", by_alias=True)
            return jsonify(enveloped(result) if envelope else result), code

        bp.add_url_rule(rule, view.__name__, wrapper, methods=list(methods))
        prefix = bp.url_prefix or ""
        base_id = operation_id or view.__name__
        doc = (view.__doc__ or "").strip()
        for m in methods:
            ENDPOINTS.append(EndpointDoc(
                prefix + rule, m.lower(), summary or doc, scope, body or body_doc, response, bp.name, envelope,
                operation_id=base_id if len(methods) == 1 else f"{base_id}_{m.lower()}", query=query,
                status=status, also=tuple(sorted((also or {}).items())), errors=tuple(errors),
                body_example=example, description=doc))
        return wrapper

    return decorate
