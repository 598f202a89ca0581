"""Personize's v1.1 surface (``/api/v1.1/...``, as its SDK reference lists it) over memrelay's own views.

Every route here translates the documented request to the body of the matching ``/api/v1`` view and calls
that view's function (same request model, same engine call), then adds the documented answer keys. Nothing
is computed twice: a change to a v1 view shows on its v1.1 twin. Also ``GET /api/v1/test`` (the SDK's
``test()`` on the legacy prefix).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, g, request
from pydantic import BaseModel, ConfigDict, Field

from memrelay.engine.core.errors import BadRequest, MemrelayError, NotFound, ValidationFailed
from memrelay.engine.guidance.guideline_routing import split_sections
from memrelay.engine.stores.tenancy import KeyInfo
from memrelay.gateway.api import ENDPOINTS, EndpointDoc, endpoint, parse_body, request_payload
from memrelay.gateway.blueprints import admin, generation, governance, memory, semantic
from memrelay.gateway.schemas import admin as admin_sch
from memrelay.gateway.schemas import generation as generation_sch
from memrelay.gateway.schemas import governance as governance_sch
from memrelay.gateway.schemas import personize as sch
from memrelay.gateway.state import state

V1 = "/api/v1"
bp = Blueprint("personize_v1_1", __name__, url_prefix="/api/v1.1")
legacy_bp = Blueprint("personize_v1_test", __name__, url_prefix=V1)

View = Callable[..., Any]
Translate = Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]
Reshape = Callable[[Any], Any]

REJECTED_SAVE_FLAGS = ("skipDualWrite", "skipStorage", "skipPropertySelection")
SAVE_BATCH_MAX = 100


# --- mirroring a v1 view ------------------------------------------------------------------------------
def v1_doc(path: str, method: str) -> EndpointDoc:
    """The registration (scope, body model) of ``method path`` on /api/v1."""
    for doc in ENDPOINTS:
        if doc.path == V1 + path and doc.method == method.lower():
            return doc
    raise LookupError(f"no /api/v1 endpoint {method} {path}")


def body_model(path: str, method: str = "POST") -> type[BaseModel]:
    """The request model of a v1 endpoint that takes a body."""
    model = v1_doc(path, method).body
    if model is None:
        raise LookupError(f"/api/v1 endpoint {method} {path} takes no body")
    return model


def _answer(result: Any, reshape: Reshape | None) -> Any:
    status = 200
    if isinstance(result, tuple):
        result, status = result
    if isinstance(result, BaseModel):
        result = result.model_dump(mode="json", by_alias=True)
    return (reshape(result) if reshape else result), status


def mirror(rule: str, view: View, v1_path: str, *, methods: tuple[str, ...] = ("POST",),
           translate: Translate | None = None, reshape: Reshape | None = None, name: str = "",
           v1_method: str | None = None, response: type[BaseModel] | None = None) -> None:
    """Serve ``rule`` with the v1 ``view`` (registered at ``v1_method v1_path``, default: the same method):
    the documented request is turned into the v1 body by ``translate(payload, url_args)`` (a GET's query
    arguments are its payload), the v1 answer completed by ``reshape``."""
    v1_method = v1_method or methods[0]
    doc = v1_doc(v1_path, v1_method)
    raw = inspect.unwrap(view)  # the view function under gateway.api.endpoint's wrapper (functools.wraps)
    takes = set(inspect.signature(raw).parameters)

    def handler(auth: KeyInfo, **url_args: Any) -> Any:
        args: list[Any] = [auth]
        if doc.body is not None:
            data = request_payload()
            if request.method == "GET":
                data = {**request.args.to_dict(), **data}
            if translate is not None:
                data = translate(data, url_args)
            args.append(parse_body(doc.body, data))
        # URL arguments the v1 view has no parameter for were moved into the body by ``translate``
        return _answer(raw(*args, **{k: v for k, v in url_args.items() if k in takes}), reshape)

    handler.__name__ = name or f"v1_1_{raw.__name__}"
    handler.__doc__ = f"Personize v1.1: {v1_method} {V1}{v1_path} with the documented request and answer."
    is_get = methods[0] == "GET"  # a GET's body model is documented as its query string
    endpoint(bp, rule, methods=methods, scope=doc.scope, summary=(view.__doc__ or "").strip().split("\n")[0]
             + f" (Personize v1.1 of {v1_method} {V1}{v1_path})", response=response or doc.response,
             status=doc.status, also=dict(doc.also), errors=doc.errors + ((400, 422) if translate else ()),
             query=doc.body if is_get and doc.body else doc.query, body_doc=None if is_get else doc.body,
             example=None if is_get else doc.body_example)(handler)


# --- root -------------------------------------------------------------------------------------------
def key_check(auth: KeyInfo) -> dict[str, Any]:
    """Verify the API key (no side effects): the org and key it resolves to, server time and caller."""
    return {"organizationId": auth.org_id, "userId": auth.key_id, "keyId": auth.key_id,
            "scopes": list(auth.scopes), "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "ip": request.remote_addr, "userAgent": request.headers.get("User-Agent")}


endpoint(bp, "/test", methods=("GET",), scope="read", summary="Verify the API key (Personize test()).",
         response=admin_sch.KeyCheck, operation_id="v1_1_key_check")(key_check)
endpoint(legacy_bp, "/test", methods=("GET",), scope="read",
         summary="Verify the API key (Personize test()).", response=admin_sch.KeyCheck)(key_check)
mirror("/me", admin.me, "/me", methods=("GET",))


# --- guidelines -------------------------------------------------------------------------------------
GUIDELINE_FIELDS = ("name", "description", "content", "value", "tags", "triggerKeywords", "governanceScope")


def guideline_body(data: dict[str, Any], _url: dict[str, Any]) -> dict[str, Any]:
    """Personize's guideline as the v1 body: the guideline model itself reads ``value`` and
    ``governanceScope.triggerKeywords``; fields memrelay has no use for (``constraintLevel``, ``slug`` ...)
    are dropped here."""
    return {k: v for k, v in data.items() if k in GUIDELINE_FIELDS}


def documented_guideline(g: dict[str, Any]) -> dict[str, Any]:
    """A guideline with Personize's ``value``, ``type`` and ``payload``/``governanceScope`` added."""
    scope = {"alwaysOn": False, "triggerKeywords": g.get("triggerKeywords", [])}
    payload = {"name": g.get("name"), "value": g.get("content"), "description": g.get("description"),
               "tags": g.get("tags", []), "governanceScope": scope}
    return {**g, "type": "guideline", "value": g.get("content"), "governanceScope": scope, "payload": payload}


def guideline_list(out: dict[str, Any]) -> dict[str, Any]:
    actions = [documented_guideline(g) for g in out["guidelines"]]
    return {**out, "actions": actions, "count": len(actions), "nextToken": None}


def guideline_one(out: dict[str, Any]) -> dict[str, Any]:
    return documented_guideline(out) if "content" in out else out


mirror("/guidelines", governance.list_guidelines, "/guidelines", methods=("GET",), reshape=guideline_list,
       response=governance_sch.DocumentedGuidelineList)
mirror("/guidelines", governance.create_guideline, "/guidelines", translate=guideline_body, reshape=guideline_one,
       response=governance_sch.DocumentedGuideline)
mirror("/guidelines/<guideline_id>", governance.get_guideline, "/guidelines/<guideline_id>", methods=("GET",),
       reshape=guideline_one, response=governance_sch.DocumentedGuideline)
mirror("/guidelines/<guideline_id>", governance.patch_guideline, "/guidelines/<guideline_id>", methods=("PATCH",),
       translate=guideline_body, reshape=guideline_one, response=governance_sch.DocumentedGuideline)
mirror("/guidelines/<guideline_id>", governance.replace_guideline, "/guidelines/<guideline_id>", methods=("PUT",),
       translate=guideline_body, reshape=guideline_one, response=governance_sch.DocumentedGuideline)
mirror("/guidelines/<guideline_id>", governance.delete_guideline, "/guidelines/<guideline_id>", methods=("DELETE",))
mirror("/guidelines/<guideline_id>/history", governance.guideline_history, "/guidelines/<guideline_id>/history",
       methods=("GET",))
mirror("/actions/<guideline_id>/history", governance.guideline_history, "/guidelines/<guideline_id>/history",
       methods=("GET",), name="v1_1_action_history")


def _sections(auth: KeyInfo, guideline_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    g = state().services.governance.get(auth.org_id, guideline_id)
    out = []
    for s in split_sections(g["id"], g["content"]):
        level = len(s.text) - len(s.text.lstrip("#")) if s.heading else 0
        out.append({"header": s.heading, "level": level, "content": s.text, "tokens": s.tokens})
    return g, out


@endpoint(bp, "/guidelines/<guideline_id>/structure", methods=("GET",), scope="read",
          response=governance_sch.GuidelineStructure)
def guideline_structure(auth: KeyInfo, guideline_id: str) -> dict[str, Any]:
    """The guideline's headings (``getStructure()``): one entry per markdown section, in order."""
    g, sections = _sections(auth, guideline_id)
    return {"guidelineId": g["id"], "name": g["name"], "headers": [s["header"] for s in sections if s["header"]],
            "sections": [{k: s[k] for k in ("header", "level", "tokens")} for s in sections]}


@endpoint(bp, "/guidelines/<guideline_id>/section", methods=("GET",), scope="read",
          response=governance_sch.GuidelineSection, query=governance_sch.SectionQuery)
def guideline_section(auth: KeyInfo, guideline_id: str) -> dict[str, Any]:
    """One section of a guideline by its heading (``?header=``, case-insensitive; ``getSection()``)."""
    wanted = (request.args.get("header") or request.args.get("section") or "").strip().lstrip("#").strip()
    if not wanted:
        raise BadRequest("give the section's heading as ?header=")
    g, sections = _sections(auth, guideline_id)
    for s in sections:
        if s["header"].casefold() == wanted.casefold():
            return {"guidelineId": g["id"], "name": g["name"], "header": s["header"], "content": s["content"]}
    raise NotFound(f"guideline {guideline_id} has no section {wanted!r}",
                   details={"headers": [s["header"] for s in sections if s["header"]]})


# --- collections ------------------------------------------------------------------------------------
def collection_list(out: dict[str, Any]) -> dict[str, Any]:
    actions = [{"id": c["collectionId"], "type": "collection", "payload": c} for c in out["collections"]]
    return {**out, "actions": actions, "count": len(actions), "nextToken": None}


mirror("/collections", memory.list_collections, "/collections", methods=("GET",), reshape=collection_list)
mirror("/collections", memory.create_collection, "/collections")
mirror("/collections/<collection_id>", memory.get_collection, "/collections/<collection_id>", methods=("GET",))
mirror("/collections/<collection_id>", memory.update_collection, "/collections/<collection_id>",
       methods=("PATCH", "PUT"))
mirror("/collections/<collection_id>", memory.archive_collection, "/collections/<collection_id>",
       methods=("DELETE",))
mirror("/collections/<collection_id>/history", memory.collection_history, "/collections/<collection_id>/history",
       methods=("GET",))


# --- AI and agents ----------------------------------------------------------------------------------
mirror("/ai/smart-guidelines", governance.smart_guidelines, "/ai/smart-guidelines")
mirror("/prompt", generation.prompt, "/prompt")


def documented_agent(a: dict[str, Any]) -> dict[str, Any]:
    """An agent with Personize's ``payload`` (name, instructions, aiConfig) and ``expectedInputs``."""
    spec = a.get("spec") or {}
    instructions = spec.get("instructions") or ([{"prompt": spec["prompt"]}] if spec.get("prompt") else [])
    ai_config = {k: spec[k] for k in ("model", "provider", "temperature") if k in spec}
    payload = {"name": a.get("name"), "description": a.get("description"), "instructions": instructions,
               "actions": spec.get("tools", []), "aiConfig": ai_config}
    return {**a, "type": "agent", "payload": payload, "expectedInputs": a.get("variables", [])}


def agent_list(out: dict[str, Any]) -> dict[str, Any]:
    actions = [documented_agent(a) for a in out["agents"]]
    return {**out, "actions": actions, "count": len(actions), "nextToken": None}


def agent_run_body(data: dict[str, Any], _url: dict[str, Any]) -> dict[str, Any]:
    """Personize's ``inputs`` (and top-level ``email``/``websiteUrl``/``recordId``, which win) become the
    agent's variables."""
    if not all(isinstance(data.get(k) or {}, dict) for k in ("variables", "inputs")):
        raise BadRequest("'inputs' and 'variables' must be objects")
    variables = {**(data.get("variables") or {}), **(data.get("inputs") or {})}
    for key in ("email", "websiteUrl", "website_url", "recordId", "record_id"):
        if data.get(key) is not None:
            variables[key] = data[key]
    out = {k: v for k, v in data.items() if k not in ("inputs", "variables")}
    if "input" in variables and "input" not in out:
        out["input"] = variables.pop("input")
    return {**out, "variables": variables}


mirror("/agents", generation.list_agents, "/agents", methods=("GET",), reshape=agent_list,
       response=generation_sch.DocumentedAgentList)
mirror("/agents/<agent_id>", generation.get_agent, "/agents/<agent_id>", methods=("GET",), reshape=documented_agent,
       response=generation_sch.DocumentedAgent)


@endpoint(bp, "/agents/<agent_id>/run", scope="write", body_doc=generation_sch.AgentRunInputs,
          operation_id="v1_1_run_agent",
          response=generation_sch.AgentRunResult, also={202: generation_sch.Queued}, errors=(400, 402, 422, 502))
def run_agent(auth: KeyInfo, agent_id: str) -> Any:
    """Run an agent with Personize's ``inputs`` (Personize v1.1 of /api/v1/agents/<agent_id>/run)."""
    body = parse_body(body_model("/agents/<agent_id>/run"), agent_run_body(request_payload(), {}))
    return _answer(inspect.unwrap(generation.run_agent)(auth, body, agent_id=agent_id), None)


# --- memory: save and import ------------------------------------------------------------------------
def save_body(data: dict[str, Any], _url: dict[str, Any]) -> dict[str, Any]:
    """``shape`` picks the pipeline: ``shortform`` (default) = memorize with property extraction
    (``enhanced``), ``freeform`` = memories only (no property selection); v1's skip flags are refused."""
    given = [f for f in REJECTED_SAVE_FLAGS if f in data]
    if given:
        raise BadRequest(f"v1.1 memory/save does not take {', '.join(given)}; use shape "
                         "('shortform' | 'freeform') instead", details={"rejected": given})
    shape = data.get("shape", "shortform")
    if shape == "document":
        raise ValidationFailed("shape 'document' (typed context documents) is not supported; save guidelines "
                               "with POST /api/v1.1/guidelines", details={"shape": shape})
    if shape not in ("shortform", "freeform"):
        raise ValidationFailed(f"unknown shape {shape!r}", details={"allowed": ["shortform", "freeform"]})
    out = {k: v for k, v in data.items() if k != "shape"}
    if shape == "freeform":
        out["maxProperties"] = 0
    else:
        out.setdefault("enhanced", True)
    return out


mirror("/memory/save", semantic.memorize, "/memorize", translate=save_body)


class SaveBatchRequest(BaseModel):
    """``saveBatch()``: up to 100 records, each a ``save()`` body (``content``) and/or ``properties``."""

    model_config = ConfigDict(extra="ignore")

    records: list[dict[str, Any]] = Field(min_length=1, max_length=SAVE_BATCH_MAX)
    source: str | None = None
    tags: list[str] | None = None
    shape: str | None = None


def _batch_steps(body: SaveBatchRequest) -> list[list[tuple[View, BaseModel]]]:
    """Per record, the v1 calls it makes (an upsert of its ``properties``, a memorize of its ``content``),
    every body validated before anything is written; 422 names the record."""
    upsert_model, save_model = body_model("/upsert"), body_model("/memorize")
    plan: list[list[tuple[View, BaseModel]]] = []
    for i, rec in enumerate(body.records):
        rec = {**({"source": body.source} if body.source else {}), **({"tags": body.tags} if body.tags else {}),
               **({"shape": body.shape} if body.shape else {}), **rec}
        steps: list[tuple[View, BaseModel]] = []
        try:
            if rec.get("properties"):
                upsert = {k: v for k, v in rec.items() if k not in ("content", "shape", "tags", "speaker")}
                steps.append((inspect.unwrap(memory.upsert), parse_body(upsert_model, upsert)))
            if rec.get("content"):
                saved = save_body({k: v for k, v in rec.items() if k != "properties"}, {})
                steps.append((inspect.unwrap(semantic.memorize), parse_body(save_model, saved)))
        except MemrelayError as exc:
            exc.message = f"records[{i}]: {exc.message}"
            exc.details = {**(exc.details or {}), "index": i}
            raise
        if not steps:
            raise ValidationFailed(f"records[{i}] has neither 'content' nor 'properties'", details={"index": i})
        plan.append(steps)
    return plan


@endpoint(bp, "/memory/save/batch", scope="write", body=SaveBatchRequest, response=sch.SaveBatchResult,
          errors=(402, 404))
def save_batch(auth: KeyInfo, body: SaveBatchRequest) -> dict[str, Any]:
    """Small synchronous batch (≤100 records): each record's properties are upserted and its content saved,
    in order, through the same calls as /upsert and /memorize."""
    results = []
    for i, steps in enumerate(_batch_steps(body)):
        out: dict[str, Any] = {"index": i}
        for view, req in steps:
            answer = view(auth, req)
            out.update(recordId=answer.get("recordId"), type=answer.get("type"))
            out["memorized" if view is inspect.unwrap(semantic.memorize) else "upserted"] = answer
        results.append(out)
    return {"results": results, "saved": len(results), "failed": 0}


def import_body(data: dict[str, Any], _url: dict[str, Any]) -> dict[str, Any]:
    """``import()``: each mapped property's ``extract`` flag is v1's ``extractMemories``."""
    mapping = data.get("mapping")
    if isinstance(mapping, dict) and isinstance(mapping.get("properties"), dict):
        props = {}
        for name, spec in mapping["properties"].items():
            if isinstance(spec, dict) and "extract" in spec and "extractMemories" not in spec:
                spec = {**{k: v for k, v in spec.items() if k != "extract"}, "extractMemories": spec["extract"]}
            props[name] = spec
        data = {**data, "mapping": {**mapping, "properties": props}}
    return data


mirror("/memory/import", semantic.batch_memorize, "/batch-memorize", translate=import_body)
mirror("/memory/import/<run_id>", semantic.batch_status, "/batch-memorize/<run_id>", methods=("GET",))


# --- memory: read -----------------------------------------------------------------------------------
mirror("/memory/retrieve", semantic.smart_recall, "/smart-recall")
mirror("/memory/digest", semantic.smart_memory_digest, "/smart-memory-digest")
mirror("/memory/search", memory.search, "/search")
mirror("/memory/similar", semantic.similar, "/similar")
mirror("/memory/segment", semantic.segment, "/segment")
mirror("/memory/query-properties", semantic.query_properties, "/memory/query-properties")


class RecordProperties(memory.IdentifiedRequest):
    """``filterByProperty()`` on one record: its property values with their schema descriptions."""

    propertyNames: list[str] | None = None
    includeDescriptions: bool = True
    nonEmpty: bool = False


def record_properties(auth: KeyInfo, body: RecordProperties) -> dict[str, Any]:
    services = state().services
    ids = body.ids()
    ids.require_any()
    rec = services.records.get(auth.org_id, ids, ids.type)
    specs: dict[str, dict[str, Any]] = {}
    if body.includeDescriptions:
        for col in services.collections.list(auth.org_id, entity_type=rec["type"]):
            for p in col.get("properties", []):
                specs.setdefault(p["propertyName"], {**p, "collectionName": col["collectionName"],
                                                     "collectionId": col["collectionId"]})
    wanted = body.propertyNames or sorted(set(rec["properties"]) | set(specs))
    props = []
    for name in wanted:
        value = (rec["properties"].get(name) or {}).get("value")
        if body.nonEmpty and value in (None, "", [], {}):
            continue
        spec = specs.get(name, {})
        props.append({"name": name, "value": value, "description": spec.get("description"),
                      "type": spec.get("type"), "update": spec.get("update", True),
                      "collectionName": spec.get("collectionName"), "collectionId": spec.get("collectionId"),
                      "updatedAt": (rec["properties"].get(name) or {}).get("updatedAt")})
    return {"recordId": rec["recordId"], "type": rec["type"], "properties": props}


class FilterOrRecordPropertiesBody(memory.FilterRequest):
    """With ``conditions``: the deterministic property filter (as /api/v1/memory/filter-by-property). Without:
    one record's property values (identifiers plus ``propertyNames``, ``includeDescriptions``, ``nonEmpty``).
    Documentation only: the view picks the model by the presence of ``conditions``."""

    propertyNames: list[str] | None = None
    includeDescriptions: bool = True
    nonEmpty: bool = False


@endpoint(bp, "/memory/filter-by-property", scope="read", body_doc=FilterOrRecordPropertiesBody,
          operation_id="v1_1_filter_by_property",
          response=sch.FilterOrRecordProperties, errors=(400, 404, 422))
def filter_by_property(auth: KeyInfo) -> Any:
    """Deterministic property filter (``conditions``, as /api/v1/memory/filter-by-property), or one record's
    property values with their schema descriptions (identifiers + ``propertyNames``). No LLM."""
    data = request_payload()
    if "conditions" in data:
        body = parse_body(body_model("/memory/filter-by-property"), data)
        return _answer(inspect.unwrap(memory.filter_by_property)(auth, body), None)
    return record_properties(auth, parse_body(RecordProperties, data))


# --- memory: manage ---------------------------------------------------------------------------------
_IDENTIFIER_KEYS = ("email", "website_url", "websiteUrl", "website", "record_id", "recordId", "customKeyName",
                    "customKeyValue", "customKeys")


def with_record_id(data: dict[str, Any], url: dict[str, Any]) -> dict[str, Any]:
    """The ``:id`` of /memory/manage/:id names the record unless the body already identifies one."""
    data = dict(data)
    if not any(data.get(k) for k in _IDENTIFIER_KEYS):
        data["recordId"] = url["record_id"]
    return data


def documented_lookup(rec: dict[str, Any]) -> dict[str, Any]:
    """``manage.get()``: /api/v1/recall already answers the documented keys (``memories`` = structured
    properties, ``freeformMemories``, counts, ``systemIntro``)."""
    return rec


def lookup_body(data: dict[str, Any], url: dict[str, Any]) -> dict[str, Any]:
    data = with_record_id(data, url)
    if not data.get("type"):  # the record id alone names the record; its type is whatever it is
        ids = memory.IdentifiedRequest.model_validate(data).ids()
        auth: KeyInfo = g.auth
        data["type"] = state().services.records.get(auth.org_id, ids, None)["type"]
    return data


def memory_id_body(data: dict[str, Any], url: dict[str, Any]) -> dict[str, Any]:
    return {**data, "memoryIds": [url["memory_id"]]}


def history_body(data: dict[str, Any], url: dict[str, Any]) -> dict[str, Any]:
    data = with_record_id(data, url)
    if "limit" in data:
        data["limit"] = _int(data["limit"], "limit")
    return data


def _int(value: Any, name: str) -> int:
    if isinstance(value, int) or (isinstance(value, str) and re.fullmatch(r"\d+", value)):
        return int(value)
    raise BadRequest(f"'{name}' must be an integer")


mirror("/memory/manage/<record_id>", memory.recall, "/recall", methods=("GET",), v1_method="POST",
       translate=lookup_body, reshape=documented_lookup, name="v1_1_manage_get")
mirror("/memory/manage/<record_id>", memory.update, "/memory/update", methods=("PATCH",), v1_method="POST",
       translate=with_record_id, name="v1_1_manage_update")
mirror("/memory/manage/<memory_id>", memory.delete_memories, "/memory/delete", methods=("DELETE",),
       v1_method="POST",
       translate=memory_id_body, name="v1_1_manage_delete")
mirror("/memory/manage/<record_id>/history", memory.property_history, "/memory/property-history",
       methods=("GET",), v1_method="POST", translate=history_body, name="v1_1_manage_history")
mirror("/memory/manage", memory.bulk_update, "/memory/bulk-update", methods=("PATCH",), v1_method="POST",
       name="v1_1_bulk_update")
mirror("/memory/manage/bulk-update", memory.bulk_update, "/memory/bulk-update", name="v1_1_bulk_update_post")
mirror("/memory/manage", memory.delete_record, "/memory/delete-record", methods=("DELETE",),
       v1_method="POST", name="v1_1_delete_record")
mirror("/memory/manage/delete-record", memory.delete_record, "/memory/delete-record",
       name="v1_1_delete_record_post")
mirror("/memory/manage/cancel-deletion", memory.cancel_deletion, "/memory/cancel-deletion")
