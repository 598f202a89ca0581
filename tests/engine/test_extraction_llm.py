"""AI extraction through the real litellm HTTP path against the fake OpenAI-compatible server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from memrelay.composition import Services
from memrelay.engine.core.properties_types import PropertySpec
from memrelay.engine.core.settings import Settings
from memrelay.engine.core.tokens import count_tokens
from memrelay.engine.domain.extraction.chunking import chunk_content, detect_content_type, units
from memrelay.engine.memory.llm_extractor import LLMExtractor, select_properties
from memrelay.engine.stores.db.models_llm import LLMUsageRow
from memrelay.engine.stores.identity import Identifiers
from tests.support.fake_llm import FakeLLMServer
from tests.support.llm_env import with_llm

TS = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
SPECS = [
    PropertySpec(propertyName="deal_value", type="number", description="Total contract value in USD", autoSystem=True),
    PropertySpec(propertyName="stage", type="options", options=["discovery", "negotiation", "closed_won"],
                 description="Pipeline stage", autoSystem=True),
    PropertySpec(propertyName="close_date", type="date", description="Expected close date", autoSystem=True),
    PropertySpec(propertyName="competitors", type="array", description="Competing vendors evaluated",
                 autoSystem=True),
    PropertySpec(propertyName="is_champion", type="boolean", description="Contact champions us internally",
                 autoSystem=True),
    PropertySpec(propertyName="internal_note", type="text", description="Never extracted", autoSystem=False),
]


@pytest.fixture
def llm_engine(settings: Settings, llm: FakeLLMServer) -> Iterator[Services]:
    eng = Services(with_llm(settings, llm))
    yield eng
    eng.close()


def answer(**kw: Any) -> dict[str, Any]:
    return {"facts": [], "properties": [], "quality": {"coreference": 1, "selfContainment": 1,
                                                       "temporalAnchoring": 1}, **kw}


def test_typed_properties_and_self_contained_facts(llm_engine: Services, llm: FakeLLMServer) -> None:
    org_id = llm_engine.tenancy.get_or_create_org("ext").id
    llm.reply_json(answer(
        facts=["Dana Lee said Acme will sign the $250,000 contract by 2026-03-31.",
               "Dana Lee met Globex yesterday."],
        properties=[{"name": "deal_value", "value": "$250,000", "confidence": 0.95},
                    {"name": "stage", "value": "Negotiation", "confidence": 0.8},
                    {"name": "stage", "value": "verbal yes", "confidence": 0.99},  # not an allowed option
                    {"name": "close_date", "value": "2026-03-31", "confidence": 0.7},
                    {"name": "competitors", "value": "Globex, Initech", "confidence": 0.6},
                    {"name": "is_champion", "value": "yes", "confidence": 0.2},  # too unsure
                    {"name": "internal_note", "value": "x", "confidence": 1},  # not autoSystem
                    {"name": "made_up", "value": 1, "confidence": 1}],
        quality={"coreference": 0.9, "selfContainment": 0.8, "temporalAnchoring": 0.7}))
    result = LLMExtractor(llm_engine.llm).extract(
        content="Dana: we'll sign the 250k contract by end of month. I met Globex yesterday, Initech too.",
        properties=SPECS, ts=TS, subject="Dana Lee", org_id=org_id)
    assert result.properties == [("deal_value", 250000, 0.95), ("stage", "negotiation", 0.8),
                                 ("close_date", "2026-03-31", 0.7), ("competitors", ["Globex", "Initech"], 0.6)]
    assert result.facts[0] == "Dana Lee said Acme will sign the $250,000 contract by 2026-03-31."
    assert "yesterday" not in result.facts[1] and "2026" in result.facts[1]  # anchored even if the model forgot
    assert result.quality == {"coreference": 0.9, "selfContainment": 0.8, "temporalAnchoring": 0.7}
    assert result.method == "llm" and result.usage.calls == 1
    sent = llm.chat_requests[0]
    prompt = json.dumps(sent.messages)
    assert "2026-03-10T15:00:00+00:00" in prompt and "Dana Lee" in prompt and "internal_note" not in prompt
    assert sent.json["response_format"] == {"type": "json_object"}
    with llm_engine.db.read() as s:
        row = s.scalar(select(LLMUsageRow).where(LLMUsageRow.org_id == org_id))
    assert row.feature == "extraction" and row.total_tokens == result.usage.total_tokens and row.cost_usd > 0


def test_long_transcripts_are_chunked_on_speaker_turns(llm_engine: Services, llm: FakeLLMServer) -> None:
    turns = [f"{'Alice' if i % 2 else 'Bob'}: point number {i} about the rollout plan and its budget." for i in
             range(120)]
    transcript = "\n".join(turns)
    assert detect_content_type(transcript) == "transcript" and len(units(transcript, "transcript")) == 120
    chunks = chunk_content(transcript, 300)
    assert len(chunks) > 3 and all(count_tokens(c) <= 300 for c in chunks)
    assert all(c.split("\n")[0].startswith(("Alice:", "Bob:")) for c in chunks)  # never split inside a turn
    assert "\n".join(chunks) == transcript

    llm.script(lambda req: answer(facts=[f"Fact from {req['messages'][-1]['content'][:40]}"],
                                  properties=[{"name": "competitors", "value": ["Globex"], "confidence": 0.5}]),
               times=20)
    llm.reply_json(answer())
    result = LLMExtractor(llm_engine.llm, chunk_tokens=300).extract(content=transcript, properties=SPECS, ts=TS)
    assert result.chunks == len(chunks) == len(llm.chat_requests)
    assert "part 1 of" in llm.chat_requests[0].messages[-1]["content"]
    assert result.properties == [("competitors", ["Globex"], 0.5)]  # arrays merged across chunks


def test_email_and_document_units() -> None:
    email = ("From: ann@acme.com\nTo: bo@globex.com\nSubject: Renewal\n\nHi Bo,\n\nWe renew in May.\n\n"
             "On Mon, Mar 2, 2026 Bo wrote:\n> Are you renewing?")
    assert detect_content_type(email) == "email"
    assert units(email, "email")[-1].startswith("On Mon, Mar 2, 2026 Bo wrote:")
    assert units("One para.\n\nTwo para.", "document") == ["One para.", "Two para."]
    huge = "word " * 5000
    assert all(count_tokens(c) <= 500 for c in chunk_content(huge, 500))


def test_tags_boost_property_selection() -> None:
    specs = [PropertySpec(propertyName=f"prop_{i}", description="unrelated", autoSystem=True) for i in range(5)]
    specs.append(PropertySpec(propertyName="renewal_risk", description="risk", tags=["renewals"], autoSystem=True))
    chosen = select_properties("We talked about lunch.", specs, ["renewals"], limit=2)
    assert chosen[0].propertyName == "renewal_risk"
    assert select_properties("We talked about lunch.", specs, None, limit=2)[0].propertyName == "prop_0"


def test_enhanced_memorize_uses_the_extractor(settings: Settings, llm: FakeLLMServer) -> None:
    """Memorize with ``enhanced: true`` goes through the composed LLM extractor."""
    from memrelay.gateway.app import create_app
    from tests.conftest import make_api

    eng = Services(with_llm(settings, llm))
    try:
        api = make_api(create_app(eng.settings, services=eng), eng)
        llm.reply_json(answer(facts=["Dana Lee is the Head of Growth at Acme."],
                              properties=[{"name": "job_title", "value": "Head of Growth", "confidence": 0.9},
                                          {"name": "lifecycle_stage", "value": "Opportunity", "confidence": 0.8}]))
        r = api.post("/api/v1/memorize", json={"content": "Spoke with Dana, she now heads growth.",
                                               "email": "dana@acme.com", "tags": ["call"], "enhanced": True})
        assert r.status_code == 200, r.json
        assert r.json["data"]["extraction"] == "llm" and r.json["data"]["memoriesCreated"] == 1
        props = eng.records.get(api.org_id, Identifiers(email="dana@acme.com"))["properties"]
        assert props["job_title"]["value"] == "Head of Growth" and props["lifecycle_stage"]["value"] == "opportunity"
    finally:
        eng.close()
