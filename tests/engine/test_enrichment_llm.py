"""Proactive enrichment, LLM path: structured-output inference over litellm's real HTTP path (a local fake
OpenAI-compatible server), batched records, cost recorded per org, the org budget enforced before a run,
a null answer kept as unknown, and a contradicting memory flipping the value with both evidence sets."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import update

from memrelay.composition import Services
from memrelay.engine.adapters.llm import BudgetExhausted
from memrelay.engine.core.errors import LLMNotConfigured
from memrelay.engine.core.settings import Settings
from memrelay.engine.enrichment.runs import EnrichmentRunRequest
from memrelay.engine.stores.db.models import Org
from memrelay.engine.stores.identity import Identifiers
from memrelay.engine.stores.usage_store import UsageStore
from tests.engine.test_enrichment import COMPANY_TYPE, company, declare, fresh_org, memorize, value_of
from tests.support.fake_llm import FakeLLMServer, message_text
from tests.support.llm_env import MODEL, with_llm

_RECORD = re.compile(r"^### Record (\d+)$", re.MULTILINE)
_LINE = re.compile(r"^\[(\w+)\] (.*)$", re.MULTILINE)
CUES = {"B2C": ("consumer", "shopper", "household"), "B2B": ("business", "saas", "procurement", "enterprise")}


def classify(messages: list[dict[str, Any]]) -> str:
    """The fake model: per record, the newest memory with a cue decides (memories are listed newest first),
    else a property with one; no cue → null. Cites the line it used."""
    text = message_text(messages[-1])
    parts = _RECORD.split(text)[1:]
    results = []
    for number, body in zip(parts[::2], parts[1::2], strict=True):
        lines = _LINE.findall(body)
        ordered = [ln for ln in lines if ln[0].startswith("m")] + [ln for ln in lines if ln[0].startswith("p")]
        answer: dict[str, Any] = {"record": int(number), "value": None, "confidence": 0.2, "evidence": [],
                                  "reasoning": "nothing says who they sell to"}
        for ref, line in ordered:
            hit = next((label for label, words in CUES.items() if any(w in line.lower() for w in words)), None)
            if hit:
                answer = {"record": int(number), "value": hit, "confidence": 0.9, "evidence": [ref],
                          "reasoning": f"{ref} says so"}
                break
        results.append(answer)
    return json.dumps({"results": results})


@pytest.fixture
def llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(responder=classify) as server:
        yield server


@pytest.fixture
def settings(settings: Settings, llm: FakeLLMServer) -> Settings:
    return with_llm(settings, llm)


@pytest.fixture
def org(engine: Services) -> str:
    org_id = fresh_org(engine, "enrichment-llm")
    declare(engine, org_id)
    return org_id


def run(engine: Services, org_id: str, **extra: Any) -> dict[str, Any]:
    started = engine.enrichment.start_run(org_id, EnrichmentRunRequest.model_validate(
        {"collection": "Company Insights", "property": "company_type", **extra}))
    for index in engine.enrichment.pending_chunks(org_id, started["runId"]):
        engine.enrichment.process_chunk(started["runId"], org_id, index)
    return engine.enrichment.status(org_id, started["runId"])


def test_llm_run_writes_values_with_evidence_and_records_cost(engine: Services, org: str,
                                                              llm: FakeLLMServer) -> None:
    company(engine, org, "payroll.example", "Payroll SaaS for businesses.")
    company(engine, org, "boxes.example", "Subscription boxes for households.")
    company(engine, org, "quiet.example", "Founded in 2011 in Lyon.")
    company(engine, org, "blank.example")

    status = run(engine, org, chunkSize=2)  # auto mode picks the configured model

    assert status["mode"] == "llm" and status["status"] == "completed" and status["chunks"]["total"] == 2
    assert status["counts"] == {"changed": 2, "unchanged": 0, "unknown": 2, "cleared": 0, "kept_human": 0}
    assert status["estimateUsd"] > 0 and status["costUsd"] > 0
    spent = UsageStore(engine.db).summary(org)["enrichment"]
    assert spent["calls"] == len(llm.chat_requests) == 2  # blank.example has no evidence and is not sent
    assert spent["costUsd"] == pytest.approx(status["costUsd"])
    assert (llm.chat_requests[0].json or {})["response_format"] == {"type": "json_object"}  # structured output
    assert "never guess" in llm.chat_requests[0].messages[0]["content"]
    b2b = value_of(engine, org, "payroll.example")
    assert (b2b["value"], b2b["actor"], b2b["confidence"]) == ("B2B", f"llm:{MODEL}", 0.9)
    assert value_of(engine, org, "quiet.example") is None  # the model answered null: unknown, not stored
    item = engine.records.history(org, Identifiers(type="company", website_url="payroll.example"),
                                  property_name="company_type")["items"][0]
    assert item["evidence"]["properties"] == [{"recordId": b2b_record(engine, org), "name": "description",
                                               "version": 1}]
    assert item["evidence"]["reasoning"] == "p1 says so" and item["evidence"]["runId"] == status["runId"]


def b2b_record(engine: Services, org: str) -> str:
    return engine.records.get(org, Identifiers(type="company", website_url="payroll.example"))["recordId"]


def test_contradicting_memory_flips_with_both_evidence_sets(engine: Services, org: str) -> None:
    company(engine, org, "pivot.example", "Enterprise procurement software.")
    run(engine, org)
    memorize(engine, org, "pivot.example", "Since March they only sell their app to consumers.")
    engine.enrichment.debounce_s = 0.0
    assert engine.enrichment.sweep(org)["marked"] == 1
    refreshed = engine.enrichment.refresh_due(org)
    assert refreshed["counts"]["changed"] == 1
    flipped = value_of(engine, org, "pivot.example")
    assert flipped["value"] == "B2C"
    item = engine.records.history(org, Identifiers(type="company", website_url="pivot.example"),
                                  property_name="company_type")["items"][0]
    assert item["previous"] == "B2B" and len(item["evidence"]["memoryIds"]) == 1
    assert item["evidence"]["supersedes"]["evidence"]["properties"][0]["name"] == "description"


def test_llm_run_is_refused_beyond_the_org_budget(engine: Services, org: str, llm: FakeLLMServer) -> None:
    for i in range(3):
        company(engine, org, f"c{i}.example", "SaaS for businesses.")
    dry = engine.enrichment.start_run(org, EnrichmentRunRequest(collection="company", property="company_type",
                                                                dryRun=True))
    assert dry["total"] == 3 and dry["estimateUsd"] > 0 and dry["budget"]["limitUsd"] is None
    with engine.db.session() as s:
        s.execute(update(Org).where(Org.id == org).values(settings={"monthly_budget_usd": dry["estimateUsd"] / 10}))
    with pytest.raises(BudgetExhausted):
        engine.enrichment.start_run(org, EnrichmentRunRequest(collection="company", property="company_type"))
    assert llm.chat_requests == []
    offline = run(engine, org, mode="offline")  # the offline path needs no budget
    assert offline["counts"]["changed"] == 3 and offline["costUsd"] == 0


def test_llm_mode_without_a_model_is_refused(engine: Services, settings: Settings) -> None:
    bare = Services(settings.model_copy(update={"llm_model": None}), db=engine.db)
    org_id = fresh_org(bare, "enrichment-nollm")
    declare(bare, org_id)
    with pytest.raises(LLMNotConfigured):
        bare.enrichment.start_run(org_id, EnrichmentRunRequest(collection="company", property="company_type",
                                                               mode="llm"))
    assert bare.enrichment.resolve_mode("auto") == "offline"
    assert COMPANY_TYPE["inferred"]  # the same declaration serves both paths


def test_declared_offline_path_is_honoured_with_a_model_configured(engine: Services, llm: FakeLLMServer) -> None:
    org_id = fresh_org(engine, "enrichment-path-offline")
    engine.collections.create(org_id, name="Company Insights", entity_type="company", properties=[
        {**COMPANY_TYPE, "inferred": {**COMPANY_TYPE["inferred"], "path": "offline"}},
        {**COMPANY_TYPE, "propertyName": "company_type_llm"}])  # path auto: the configured model
    company(engine, org_id, "pivot.example", "Enterprise procurement software.")
    engine.enrichment.debounce_s = 0.0
    engine.enrichment.sweep(org_id)  # both never inferred: both stale and due
    assert sorted(engine.enrichment.stale(org_id)) == ["company_type", "company_type_llm"]

    refreshed = engine.enrichment.refresh_due(org_id)

    assert refreshed["counts"]["changed"] == 2
    assert value_of(engine, org_id, "pivot.example")["actor"] == "rule:offline-keywords-v1"
    assert value_of(engine, org_id, "pivot.example", "company_type_llm")["actor"] == f"llm:{MODEL}"
    assert len(llm.chat_requests) == 1  # only the auto property asked the model
    assert run(engine, org_id)["mode"] == "offline"  # an auto-mode run takes the declared path too
    assert run(engine, org_id, mode="llm")["mode"] == "llm"  # an explicit mode overrides it
