"""OpenAPI 3.1 document generated from the endpoint registry (:data:`memrelay.gateway.api.ENDPOINTS`) and its
pydantic models.

Every operation gets its ``operationId``, request body, query and path parameters, its success answers
(the declared status, the envelope ``{success: true, data: <response model>}`` unless ``envelope=False``)
and the error answers that can really happen (one ``Error`` schema, the shape gateway/errors.py renders).
Component names are pydantic's: a model's own name, module-qualified when two models share a name."""

from __future__ import annotations

import html
import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from memrelay.gateway.api import ENDPOINTS, EndpointDoc

REF = "#/components/schemas/{model}"

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Error",
    "description": "Every failure: a stable ``code``, a message, details naming the problem, and the request id.",
    "required": ["success", "error"],
    "properties": {"success": {"const": False}, "error": {"type": "object", "properties": {
        "code": {"type": "string", "examples": ["validation_failed"]}, "message": {"type": "string"},
        "details": {"type": "object"}, "requestId": {"type": ["string", "null"]}},
        "required": ["code", "message", "details"]}},
}

#: status -> (component name, description); statuses every operation of a kind can answer
ERRORS: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "The request is malformed (not JSON, wrong shape, a bad argument)."),
    401: ("Unauthorized", "No API key, or an unknown or revoked one (or a bad webhook signature)."),
    402: ("PaymentRequired", "The org's LLM budget would be exceeded."),
    403: ("Forbidden", "The key lacks the scope this operation needs."),
    404: ("NotFound", "The object named in the path (or body) does not exist in the caller's org."),
    409: ("Conflict", "The change conflicts with existing data (a name in use, a version mismatch)."),
    413: ("PayloadTooLarge", "The request body exceeds the deployment's size limit."),
    422: ("ValidationFailed", "The body or arguments fail validation; details list each bad field."),
    429: ("RateLimited", "The key's rate limit is exhausted; retry after ``Retry-After`` seconds."),
    502: ("UpstreamError", "An upstream service (an LLM provider, a CRM) failed."),
    503: ("ServiceUnavailable", "The database, the job queue or the LLM is unavailable or not configured."),
}

RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}}

TAGS: dict[str, str] = {
    "admin": "Identity, plan limits and API keys of the calling org.",
    "memory": "Structured memory: collections, entity types, records, properties, search and deletion.",
    "semantic": "Semantic memory: memorize, batch memorize, smart recall, digest, similar, segment.",
    "governance": "Guidelines with version history, and smart guidelines.",
    "generation": "Prompt runs, saved agents, background jobs and LLM usage.",
    "outbound": "Outbound webhooks and the Zapier surface (REST hooks, polling triggers, actions).",
    "webhooks": "Inbound webhook sources and the inbound event log.",
    "workflows": "Workflow definitions, runs and signals.",
    "enrichment": "Proactive enrichment runs of inferred properties.",
    "personize_v1_1": "Personize's v1.1 surface over memrelay's own views.",
    "personize_v1_test": "Personize's key check on the v1 prefix.",
}

_PATH_ARG = re.compile(r"<(?:\w+:)?(\w+)>")


def openapi_path(rule: str) -> str:
    """A Flask rule (``/x/<a>``) as an OpenAPI path (``/x/{a}``)."""
    return _PATH_ARG.sub(r"{\1}", rule)


def error_statuses(ep: EndpointDoc) -> list[int]:
    """The error statuses an operation can answer: those that follow from its declaration plus its own."""
    out = {503} | set(ep.errors)  # the database (or the queue) may be unavailable for any operation
    if ep.scope is not None:
        out |= {401, 403, 429}
    if ep.body is not None:
        out |= {400, 413, 422}
    elif ep.method in ("post", "put", "patch"):
        out.add(413)  # the size limit applies to any body
    if ep.query is not None:
        out |= {400, 422}
    if _PATH_ARG.search(ep.path):
        out.add(404)
    return sorted(out)


def _models(eps: list[EndpointDoc]) -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    seen: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {}
    for ep in eps:
        for model, mode in ((ep.body, "validation"), (ep.query, "validation"), (ep.response, "serialization"),
                            *((m, "serialization") for _, m in ep.also)):
            if model is not None:
                seen[(model, mode)] = None  # type: ignore[index]
    return list(seen)


def _query_parameters(model: type[BaseModel], ref: dict[str, Any], schemas: dict[str, Any]) -> list[dict[str, Any]]:
    schema = schemas[ref["$ref"].rsplit("/", 1)[1]]
    required = set(schema.get("required", []))
    params = []
    for name, prop in schema.get("properties", {}).items():
        prop = _not_null(prop)
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if prop.get("description"):
            param["description"] = prop["description"]
        params.append(param)
    return params


def _not_null(prop: dict[str, Any]) -> dict[str, Any]:
    """A query argument's schema without pydantic's ``| None`` branch (an absent argument is the None)."""
    options = [o for o in prop.get("anyOf", []) if o.get("type") != "null"]
    if "anyOf" not in prop or len(options) != 1:
        return prop
    out = {**{k: v for k, v in prop.items() if k != "anyOf"}, **options[0]}
    if out.get("default", 0) is None:
        del out["default"]
    return out


def _success(ep: EndpointDoc, model: type[BaseModel] | None, refs: dict[Any, dict[str, Any]],
             status: int) -> dict[str, Any]:
    data = refs[(model, "serialization")] if model is not None else {}
    out: dict[str, Any] = {"description": {200: "OK", 201: "Created", 202: "Accepted"}.get(status, "Success")}
    if ep.envelope:
        out["content"] = {"application/json": {"schema": {
            "type": "object", "required": ["success", "data"],
            "properties": {"success": {"const": True}, "data": data}}}}
    else:
        out["content"] = {"application/json": {"schema": data}}
    return out


_CACHE: dict[int, dict[str, Any]] = {}


def build_openapi() -> dict[str, Any]:
    """The document (built once per set of registered endpoints)."""
    n = len(ENDPOINTS)
    if n not in _CACHE:
        _CACHE.clear()
        _CACHE[n] = _build(list(ENDPOINTS))
    return _CACHE[n]


def _build(eps: list[EndpointDoc]) -> dict[str, Any]:
    keys, defs = models_json_schema(_models(eps), ref_template=REF)
    refs: dict[Any, dict[str, Any]] = dict(keys)
    schemas: dict[str, Any] = {"Error": ERROR_SCHEMA, **defs.get("$defs", {})}
    paths: dict[str, Any] = {}
    for ep in eps:
        path = openapi_path(ep.path)
        summary = ep.summary.strip().splitlines()[0] if ep.summary.strip() else ""
        op: dict[str, Any] = {"operationId": ep.operation_id, "summary": summary, "tags": [ep.tag]}
        description = ep.description or ep.summary
        if ep.scope:
            op["security"] = [{"bearer": []}, {"apiKey": []}]
            description = (description + "\n\n" if description else "") + f"Requires the '{ep.scope}' scope."
        if description:
            op["description"] = description
        params = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                  for p in re.findall(r"\{(\w+)\}", path)]
        if ep.query is not None:
            params += _query_parameters(ep.query, refs[(ep.query, "validation")], schemas)
        if params:
            op["parameters"] = params
        if ep.body is not None and ep.method != "get":
            media: dict[str, Any] = {"schema": refs[(ep.body, "validation")]}
            if ep.body_example is not None:
                media["example"] = ep.body_example
            op["requestBody"] = {"required": True, "content": {"application/json": media}}
        responses: dict[str, Any] = {str(ep.status): _success(ep, ep.response, refs, ep.status)}
        for status, model in ep.also:
            responses[str(status)] = _success(ep, model, refs, status)
        for status in error_statuses(ep):
            responses.setdefault(str(status), {"$ref": f"#/components/responses/{ERRORS[status][0]}"})
        op["responses"] = responses
        paths.setdefault(path, {})[ep.method] = op
    error_content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    responses_c = {name: {"description": text, "content": error_content,
                          **({"headers": RETRY_AFTER} if status in (429, 503) else {})}
                   for status, (name, text) in ERRORS.items()}
    used_tags = sorted({ep.tag for ep in eps})
    return {
        "openapi": "3.1.0",
        "info": {"title": "memrelay", "version": "0.1.0",
                 "description": "Personalization memory gateway: structured + semantic memory per entity. Every "
                                "/api/v1 answer is {success: true, data} (Zapier hooks, triggers and actions "
                                "answer bare JSON); every failure is {success: false, error: {code, message, "
                                "details, requestId}}."},
        "tags": [{"name": t, "description": TAGS.get(t, t)} for t in used_tags],
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": dict(sorted(schemas.items())), "responses": responses_c, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}},
    }


def docs_html() -> str:
    """A dependency-free docs page listing every operation (the full schema is at /openapi.json)."""
    doc = build_openapi()
    rows = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            rows.append(f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}</code></td>"
                        f"<td>{html.escape(op.get('summary', ''))}</td>"
                        f"<td>{html.escape(op.get('description', 'public').splitlines()[-1])}</td></tr>")
    return ("<!doctype html><html><head><meta charset='utf-8'><title>memrelay API</title><style>"
            "body{font-family:system-ui;margin:2rem}td{padding:.25rem .75rem;border-bottom:1px solid #ddd}"
            "</style></head><body><h1>memrelay API</h1><p>Machine-readable schema: "
            "<a href='/openapi.json'>/openapi.json</a>. Authenticate with <code>Authorization: Bearer &lt;key&gt;"
            "</code> or <code>X-API-Key</code>.</p><table>" + "".join(rows) + "</table></body></html>")
