"""OpenAPI 3.1 document generated from the endpoint registry and its pydantic models."""

from __future__ import annotations

import html
import re
from typing import Any

from pydantic import BaseModel

from memrelay.gateway.api import ENDPOINTS

ERROR_SCHEMA = {
    "type": "object",
    "required": ["success", "error"],
    "properties": {"success": {"const": False}, "error": {"type": "object", "properties": {
        "code": {"type": "string"}, "message": {"type": "string"}, "details": {"type": "object"},
        "requestId": {"type": "string"}}, "required": ["code", "message", "details"]}},
}


def _ref(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in schema.pop("$defs", {}).items():
        components[name] = sub
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def build_openapi() -> dict[str, Any]:
    components: dict[str, Any] = {"Error": ERROR_SCHEMA}
    paths: dict[str, Any] = {}
    for ep in ENDPOINTS:
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", ep.path)
        op: dict[str, Any] = {"summary": ep.summary.splitlines()[0] if ep.summary else "", "tags": [ep.tag],
                              "responses": {"default": {"description": "error", "content": {
                                  "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}
        params = re.findall(r"\{(\w+)\}", path)
        if params:
            op["parameters"] = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                                for p in params]
        if ep.scope:
            op["security"] = [{"bearer": []}, {"apiKey": []}]
            op["description"] = f"Requires the '{ep.scope}' scope."
        if ep.body is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(ep.body, components)}}}
        ok: dict[str, Any] = {"description": "success"}
        data: dict[str, Any] = _ref(ep.response, components) if ep.response is not None else {}
        if ep.envelope:
            ok["content"] = {"application/json": {"schema": {
                "type": "object", "required": ["success", "data"],
                "properties": {"success": {"const": True}, "data": data}}}}
        elif data:
            ok["content"] = {"application/json": {"schema": data}}
        op["responses"]["200"] = ok
        paths.setdefault(path, {})[ep.method] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "memrelay", "version": "0.1.0",
                 "description": "Personalization memory gateway: structured + semantic memory per entity."},
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": components, "securitySchemes": {
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
                        f"<td>{html.escape(op.get('description', 'public'))}</td></tr>")
    return ("<!doctype html><html><head><meta charset='utf-8'><title>memrelay API</title><style>"
            "body{font-family:system-ui;margin:2rem}td{padding:.25rem .75rem;border-bottom:1px solid #ddd}"
            "</style></head><body><h1>memrelay API</h1><p>Machine-readable schema: "
            "<a href='/openapi.json'>/openapi.json</a>. Authenticate with <code>Authorization: Bearer &lt;key&gt;"
            "</code> or <code>X-API-Key</code>.</p><table>" + "".join(rows) + "</table></body></html>")
