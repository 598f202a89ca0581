"""The SDK's request bodies checked against the gateway's own request models (the source of the OpenAPI spec):
each body the SDK builds validates, and no key it sends is one the gateway would silently ignore."""

from __future__ import annotations

from typing import Any

import pytest
from memrelay_client import (
    BatchMapping,
    Instruction,
    OutputSpec,
    PropertyDefinition,
    PropertyMapping,
    SearchCondition,
    SearchGroup,
)
from memrelay_client._protocol import Call
from memrelay_client.resources.collections import Collections
from memrelay_client.resources.generation import Generation
from memrelay_client.resources.guidelines import Guidelines
from memrelay_client.resources.memory import Memory
from memrelay_client.resources.records import Records
from memrelay_client.resources.webhooks import Webhooks
from pydantic import BaseModel, RootModel

import memrelay.gateway.blueprints.generation
import memrelay.gateway.blueprints.governance
import memrelay.gateway.blueprints.memory
import memrelay.gateway.blueprints.outbound
import memrelay.gateway.blueprints.semantic  # noqa: F401 - importing a blueprint registers its endpoints
from memrelay.engine.memory.memories import IDENTIFIER_FIELDS
from memrelay.gateway.api import ENDPOINTS

REF = {"email": "ada@acme.example", "type": "contact"}
GROUP = SearchGroup(conditions=[SearchCondition(property="job_title", operator="EQ", value="CTO")])

CALLS: list[Call[Any]] = [
    Memory.memorize.build(None, "Ada likes tea.", tags=["n"], speaker="call", max_properties=3, source="sdk", **REF),
    Memory.memorize_batch.build(None, [{"m": "a@b.example"}], BatchMapping(
        email="m", properties={"job_title": PropertyMapping(source_field="t", extract_memories=True)}), dry_run=True),
    Memory.smart_recall.build(None, "tea?", limit=3, min_score=0.1, mode="fast", include_property_values=True,
                              include_superseded=True, group_by_record=True, tags=["n"], **REF),
    Memory.recall.build(None, type="contact", include_superseded=True, email="ada@acme.example"),
    Memory.smart_digest.build(None, token_budget=500, include_properties=True, include_memories=True,
                              include_linked=False, max_memories=5, **REF),
    Memory.similar.build(None, top_k=5, dimensions="memories", min_score=0.2, **REF),
    Memory.segment.build(None, text="tea", page=1, page_size=10, dimensions="hybrid", type="contact"),
    Memory.delete.build(None, ["mem_1"]),
    Records.upsert.build(None, {"job_title": "CTO"}, expected_version=1, source="crm", source_event_id="e1",
                         confidence=0.9, **REF),
    Records.update.build(None, "job_title", "CFO", expected_version=2, **REF),
    Records.update.build(None, "tags", array_push={"value": "x"}, **REF),
    Records.bulk_update.build(None, {"job_title": "CEO"}, **REF),
    Records.property_history.build(None, "job_title", page=2, page_size=10, **REF),
    Records.search.build(None, [GROUP], logic="OR", return_records=False, page=2, page_size=10, type="contact"),
    Records.filter_by_property.build(None, [{"propertyName": "job_title", "operator": "equals", "value": "CTO"}],
                                     limit=5, next_token=None, type="contact"),
    Records.delete.build(None, **REF),
    Collections.create.build(None, "Sales", entity_type="contact", description="d", tags=["t"],
                             properties=[PropertyDefinition(property_name="deal_size", type="number")]),
    Collections.create_entity_type.build(None, "student", primary_key_field="student_number",
                                         secondary_keys=["email"]),
    Guidelines.create.build(None, "Tone", content="# Tone", tags=["t"], trigger_keywords=["k"]),
    Guidelines.smart_guidelines.build(None, "cold email", mode="fast", session_id="s", max_tokens=500,
                                      max_guidelines=3),
    Generation.prompt.build(None, instructions=[Instruction(prompt="Hi", max_steps=2)],
                            outputs=[OutputSpec(name="subject")], channel="email", evaluate=True,
                            evaluation_criteria=["short"], memorize={"email": "ada@acme.example",
                                                                     "capture_outputs": True},
                            session_id="s", use_guidelines=False, context_tokens=500, tier="basic", **REF),
    Generation.submit_prompt.build(None, "Hi"),
    Generation.create_agent.build(None, "a", {"instructions": [{"prompt": "Hi {{ input }}"}]}, description="d"),
    Webhooks.create.build(None, "https://hooks.example/x", ["*"], description="d", active=False),
]


def _server_model(call: Call[Any]) -> type[BaseModel]:
    for doc in ENDPOINTS:
        if doc.path == "/api/v1" + call.path and doc.method == call.method.lower() and doc.body is not None:
            return doc.body
    raise AssertionError(f"the gateway has no request model for {call.method} {call.path}")


def _accepted(model: type[BaseModel]) -> set[str]:
    names = set(IDENTIFIER_FIELDS) | {"async"}
    for name, info in model.model_fields.items():
        names |= {name, *(a for a in (info.alias, info.validation_alias) if isinstance(a, str))}
    return names


@pytest.mark.parametrize("call", CALLS, ids=lambda c: f"{c.method} {c.path}")
def test_sdk_bodies_validate_against_the_gateway_models(call: Call[Any]) -> None:
    body = dict(call.json or {})
    parsed = _server_model(call).model_validate(body)
    chosen = parsed.root if isinstance(parsed, RootModel) else parsed  # a union body: the form it parsed as
    ignored = set(body) - _accepted(type(chosen))
    assert not ignored, f"keys the gateway ignores: {ignored}"
