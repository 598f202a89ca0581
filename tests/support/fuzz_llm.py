"""An LLM stand-in for API fuzzing: answers every structured request with the smallest JSON value that
validates against the JSON Schema memrelay's client puts in its system instruction (plain text otherwise), so
the LLM-backed operations run their real code paths against the local :class:`FakeLLMServer`."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.support.fake_llm import FakeLLMServer, message_text

_SCHEMA = re.compile(r"validate against this JSON Schema:\n(\{.*\})\s*$", re.S)


def minimal_instance(schema: dict[str, Any], defs: dict[str, Any] | None = None) -> Any:
    """The smallest value valid under ``schema`` (required properties only, minimum lengths and bounds)."""
    defs = defs if defs is not None else schema.get("$defs", {})
    if "$ref" in schema:
        return minimal_instance(defs[schema["$ref"].rsplit("/", 1)[1]], defs)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return minimal_instance(options[0], defs)
    if "allOf" in schema:
        return minimal_instance(schema["allOf"][0], defs)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: minimal_instance(props.get(name, {}), defs) for name in schema.get("required", [])}
    if kind == "array":
        return [minimal_instance(schema.get("items", {}), defs) for _ in range(schema.get("minItems", 0))]
    if kind == "string":
        return "x" * max(int(schema.get("minLength", 1)), 1)
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        return low + (1 if "exclusiveMinimum" in schema else 0)
    if kind == "boolean":
        return False
    return None


def schema_responder(messages: list[dict[str, Any]]) -> str:
    for message in messages:
        if message.get("role") == "system":
            found = _SCHEMA.search(message_text(message))
            if found:
                return json.dumps(minimal_instance(json.loads(found.group(1))))
    return "A short answer."


def fuzz_llm_server() -> FakeLLMServer:
    """A started :class:`FakeLLMServer` answering with :func:`schema_responder` (stop it when done)."""
    return FakeLLMServer(responder=schema_responder).start()
