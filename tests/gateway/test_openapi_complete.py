"""/openapi.json tells the truth: every /api/ route of the app is documented with an operationId, its request,
query and path parameters, a response model, its real success status and its error answers; the document is
valid OpenAPI 3.1; real answers of the running app validate against it."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

import jsonschema
import jsonschema_rs
import pytest
from referencing import Registry, Resource
from schemathesis.specs.openapi.definitions import OPENAPI_31

from memrelay.gateway.api import ENDPOINTS
from memrelay.gateway.openapi import openapi_path

HTTP_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


@pytest.fixture
def doc(app: Any) -> dict[str, Any]:
    r = app.test_client().get("/openapi.json")
    assert r.status_code == 200
    return dict(r.json)


def _routes(app: Any) -> list[tuple[str, str]]:
    return sorted((openapi_path(rule.rule), m.lower()) for rule in app.url_map.iter_rules()
                  if rule.rule.startswith("/api/") for m in (rule.methods or set()) & HTTP_METHODS)


def _success(op: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s: r for s, r in op["responses"].items() if s.startswith("2")}


def _data_schema(response: dict[str, Any]) -> dict[str, Any]:
    schema = response["content"]["application/json"]["schema"]
    return schema["properties"]["data"] if schema.get("properties", {}).get("success") else schema


def test_every_api_route_is_documented_with_id_response_model_and_parameters(app, doc):
    routes = _routes(app)
    assert len(routes) > 100
    missing, no_id, no_model, bad_params = [], [], [], []
    for path, method in routes:
        op = doc["paths"].get(path, {}).get(method)
        if op is None:
            missing.append(f"{method.upper()} {path}")
            continue
        if not op.get("operationId"):
            no_id.append(f"{method.upper()} {path}")
        success = _success(op)
        if not success or any(not _data_schema(r) for r in success.values()):
            no_model.append(f"{method.upper()} {path}")
        declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        if declared != set(re.findall(r"\{(\w+)\}", path)):
            bad_params.append(f"{method.upper()} {path}")
    assert not missing, f"routes missing from /openapi.json: {missing}"
    assert not no_id, f"operations without an operationId: {no_id}"
    assert not no_model, f"operations without a response model (declare response= on @endpoint): {no_model}"
    assert not bad_params, f"path parameters not documented: {bad_params}"
    assert not [e for e in ENDPOINTS if e.response is None], "an endpoint() registration lacks response="


def test_operation_ids_and_component_names_are_unique(doc):
    ids = Counter(op["operationId"] for ops in doc["paths"].values() for op in ops.values())
    assert not [i for i, n in ids.items() if n > 1], "duplicate operationIds"
    assert not [i for i, n in Counter(e.operation_id for e in ENDPOINTS).items() if n > 1]
    # two models of the same name each get their own component: /recall and /smart-recall both take a
    # "RecallRequest", and each is documented with its own schema
    schemas = doc["components"]["schemas"]
    refs: dict[str, set[type]] = {}
    for e in ENDPOINTS:
        if e.body is None or e.method == "get":
            continue
        op = doc["paths"][openapi_path(e.path)][e.method]
        ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
        refs.setdefault(ref, set()).add(e.body)
        assert set(schemas[ref].get("properties", {})) == set(e.body.model_json_schema().get("properties", {})), ref
    assert not {r: m for r, m in refs.items() if len(m) > 1}, "one component name documents two models"
    recall = doc["paths"]["/api/v1/recall"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    smart = doc["paths"]["/api/v1/smart-recall"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert recall != smart and "include_superseded" in schemas[recall["$ref"].rsplit("/", 1)[1]]["properties"]
    assert "query" in schemas[smart["$ref"].rsplit("/", 1)[1]]["properties"]


def test_document_is_valid_openapi_3_1(doc):
    jsonschema_rs.Draft202012Validator(OPENAPI_31).validate(doc)  # the OAS 3.1 meta-schema (schemathesis ships it)
    for schema in doc["components"]["schemas"].values():
        jsonschema_rs.meta.validate({"$schema": "https://json-schema.org/draft/2020-12/schema", **schema})
    import schemathesis

    schema = schemathesis.openapi.from_dict(doc)
    loaded = [op.ok() for op in schema.get_all_operations()]
    assert len(loaded) == sum(len(ops) for ops in doc["paths"].values())


def test_statuses_tags_queries_and_errors_are_declared(doc):
    paths = doc["paths"]
    assert list(_success(paths["/api/v1/collections"]["post"])) == ["201"]
    assert list(_success(paths["/api/v1/guidelines"]["post"])) == ["201"]
    assert set(_success(paths["/api/v1/batch-memorize"]["post"])) == {"200", "202"}
    assert list(_success(paths["/api/v1/workflows/{workflow_id}/run"]["post"])) == ["202"]
    assert {"401", "403", "422", "429", "503"} <= set(paths["/api/v1/memorize"]["post"]["responses"])
    assert "404" in paths["/api/v1/collections/{collection_id}"]["get"]["responses"]
    assert "409" in paths["/api/v1/collections"]["post"]["responses"]
    query = {p["name"] for p in paths["/api/v1/events"]["get"]["parameters"] if p["in"] == "query"}
    assert query == {"status", "source", "limit"}
    assert {p["name"] for p in paths["/api/v1/signals"]["get"]["parameters"]} >= {"tag", "sinceHours", "limit"}
    for path, ops in paths.items():
        for method, op in ops.items():
            assert op["tags"], (method, path)
            errors = [s for s in op["responses"] if not s.startswith("2")]
            assert errors and all(op["responses"][s]["$ref"].startswith("#/components/responses/") for s in errors)
    assert doc["components"]["responses"]["ValidationFailed"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"}
    example = paths["/api/v1/memorize"]["post"]["requestBody"]["content"]["application/json"]["example"]
    assert example["email"] and example["content"]


# --- real answers validate against the document --------------------------------------------------------
def _validator(doc: dict[str, Any], op: dict[str, Any], status: int) -> jsonschema.Draft202012Validator:
    registry = Registry().with_resource("urn:memrelay-openapi", Resource.from_contents(
        {**doc, "$schema": "https://json-schema.org/draft/2020-12/schema"}))
    response = op["responses"][str(status)]
    if "$ref" in response:
        response = doc["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    schema = json.loads(json.dumps(response["content"]["application/json"]["schema"])
                        .replace('"#/components/', '"urn:memrelay-openapi#/components/'))
    return jsonschema.Draft202012Validator(schema, registry=registry)


def _check(doc: dict[str, Any], method: str, path: str, response: Any) -> Any:
    op = doc["paths"][path][method]
    assert str(response.status_code) in op["responses"], (method, path, response.status_code, response.json)
    _validator(doc, op, response.status_code).validate(response.json)
    return response.json


def test_real_answers_match_the_documented_models(doc, api):
    c = "/api/v1"
    _check(doc, "get", f"{c}/me", api.get(f"{c}/me"))
    col = _check(doc, "post", f"{c}/collections", api.post(f"{c}/collections", {
        "collectionName": "Sales", "entityType": "contact",
        "properties": [{"propertyName": "job_title", "type": "text"}]}))["data"]
    _check(doc, "get", f"{c}/collections", api.get(f"{c}/collections"))
    _check(doc, "get", f"{c}/collections/{{collection_id}}/history",
           api.get(f"{c}/collections/{col['collectionId']}/history?mode=diff"))
    _check(doc, "get", f"{c}/entities", api.get(f"{c}/entities"))
    ref = {"email": "ada@acme.example", "type": "contact"}
    _check(doc, "post", f"{c}/upsert", api.post(f"{c}/upsert", {**ref, "properties": {"job_title": "CTO"}}))
    _check(doc, "post", f"{c}/memory/update", api.post(f"{c}/memory/update", {
        **ref, "propertyName": "job_title", "propertyValue": "CEO"}))
    mem = _check(doc, "post", f"{c}/memorize", api.post(f"{c}/memorize", {
        **ref, "content": "Ada prefers tea over coffee. Ada runs the Berlin office."}))["data"]
    assert mem["memoryIds"]
    _check(doc, "post", f"{c}/recall", api.post(f"{c}/recall", ref))
    _check(doc, "post", f"{c}/smart-recall", api.post(f"{c}/smart-recall", {
        **ref, "query": "what does Ada drink?", "include_property_values": True, "groupByRecord": True}))
    _check(doc, "post", f"{c}/smart-memory-digest", api.post(f"{c}/smart-memory-digest", ref))
    _check(doc, "post", f"{c}/search", api.post(f"{c}/search", {"type": "contact", "includeMemories": True}))
    _check(doc, "post", f"{c}/memory/filter-by-property", api.post(f"{c}/memory/filter-by-property", {
        "type": "contact", "conditions": [{"propertyName": "job_title", "operator": "equals", "value": "CEO"}]}))
    _check(doc, "post", f"{c}/memory/property-history", api.post(f"{c}/memory/property-history", ref))
    _check(doc, "post", f"{c}/memory/delete", api.post(f"{c}/memory/delete", {"memoryIds": mem["memoryIds"]}))
    _check(doc, "post", f"{c}/memory/cancel-deletion", api.post(f"{c}/memory/cancel-deletion", {
        "memoryIds": mem["memoryIds"]}))
    g = _check(doc, "post", f"{c}/guidelines", api.post(f"{c}/guidelines", {
        "name": "Tone", "content": "# Tone\nBe brief.\n\n## Email\nNo emojis.", "tags": ["email"]}))["data"]
    _check(doc, "post", f"{c}/ai/smart-guidelines", api.post(f"{c}/ai/smart-guidelines", {
        "message": "write an email", "mode": "fast"}))
    _check(doc, "get", "/api/v1.1/guidelines", api.get("/api/v1.1/guidelines"))
    _check(doc, "get", "/api/v1.1/guidelines/{guideline_id}/structure",
           api.get(f"/api/v1.1/guidelines/{g['id']}/structure"))
    _check(doc, "get", "/api/v1.1/memory/manage/{record_id}", api.get(f"/api/v1.1/memory/manage/{mem['recordId']}"))
    _check(doc, "get", f"{c}/test", api.get(f"{c}/test"))
    # errors use the one Error shape with a documented status
    _check(doc, "get", f"{c}/collections/{{collection_id}}", api.get(f"{c}/collections/col_missing"))
    _check(doc, "post", f"{c}/memorize", api.post(f"{c}/memorize", {"email": 5}))
    _check(doc, "post", f"{c}/collections", api.post(f"{c}/collections", {
        "collectionName": "Sales", "entityType": "contact"}))  # 409: the name is taken
