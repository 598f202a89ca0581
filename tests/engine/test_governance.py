"""Guidelines (CRUD, versions, diffs, staleness) and smart guidelines (fast routing quality, sections,
progressive delivery, cache invalidation, deep mode through the fake LLM)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from memrelay.composition import Services
from memrelay.engine.adapters.llm import LLMNotConfigured
from memrelay.engine.core.errors import NotFound
from memrelay.engine.core.settings import Settings
from memrelay.engine.core.util import utcnow
from memrelay.engine.guidance.governance import (
    Governance,
    GuidelineCreate,
    GuidelineFields,
    SmartGuidelinesRequest,
)
from memrelay.engine.guidance.guideline_routing import split_sections
from memrelay.engine.stores.db.models_llm import Guideline
from tests.support.fake_llm import FakeLLMServer
from tests.support.guidelines_corpus import GUIDELINES, ROUTING_CASES
from tests.support.llm_env import with_llm

LONG_POLICY = "\n\n".join(
    [f"Intro line for the travel policy. {'General travel rules apply. ' * 5}"]
    + [f"## {topic}\n" + f"Rules about {topic.lower()} for every trip. " * 25
       for topic in ("Flights", "Hotels", "Meals", "Car rental")])


@pytest.fixture
def org(engine: Services) -> str:
    return engine.tenancy.get_or_create_org(f"gov-{id(engine)}").id


@pytest.fixture
def gov(engine: Services) -> Governance:
    return Governance(engine.db, engine.embedder, engine.llm)


@pytest.fixture
def corpus(gov: Governance, org: str) -> dict[str, str]:
    return {g["name"]: gov.create(org, GuidelineCreate(**g))["id"] for g in GUIDELINES}


def ask(gov: Governance, org: str, message: str, **kw: object) -> dict:
    return gov.smart_guidelines(org, SmartGuidelinesRequest(message=message, **kw))


def test_crud_versions_and_diff_history(gov: Governance, org: str, other_org: str, backend: str) -> None:
    g = gov.create(org, GuidelineCreate(name="Tone", content="## Voice\nBe kind.", tags=["brand", "brand"],
                                        triggerKeywords=["tone"]))
    assert g["version"] == 1 and g["tags"] == ["brand"] and g["stale"] is False
    same = gov.update(org, g["id"], GuidelineFields(content="## Voice\nBe kind."))
    assert same["version"] == 1  # no change, no new version
    v2 = gov.update(org, g["id"], GuidelineFields(content="## Voice\nBe kind and brief."))
    assert v2["version"] == 2 and v2["name"] == "Tone"
    v3 = gov.update(org, g["id"], GuidelineCreate(name="Tone of voice"), replace=True)
    assert v3["version"] == 3 and v3["content"] == "" and v3["tags"] == []
    history = gov.history(org, g["id"], mode="diff")
    assert [h["version"] for h in history] == [1, 2, 3]
    assert "-Be kind." in history[1]["diff"] and "+Be kind and brief." in history[1]["diff"]
    assert "+name: Tone of voice" in history[2]["diff"]
    assert gov.history(org, g["id"])[0]["snapshot"]["content"] == "## Voice\nBe kind."
    with pytest.raises(NotFound):
        gov.get(other_org, g["id"])  # another org cannot see it
    gov.delete(org, g["id"])
    with pytest.raises(NotFound):
        gov.get(org, g["id"])
    assert gov.list(org) == []


@pytest.fixture
def other_org(engine: Services) -> str:
    return engine.tenancy.get_or_create_org(f"gov-other-{id(engine)}").id


def test_split_sections_on_headings() -> None:
    sections = split_sections("g1", "Intro text\n\n# Title\nA\n\n### Deep\nB\n## Next\nC")
    assert [s.heading for s in sections] == ["", "Title", "Deep", "Next"]
    assert sections[2].text == "### Deep\nB" and all(s.tokens > 0 for s in sections)
    assert len({s.hash for s in sections}) == 4


def test_fast_routing_precision_and_recall(gov: Governance, org: str, corpus: dict[str, str]) -> None:
    assert len(GUIDELINES) >= 20 and len(ROUTING_CASES) >= 20
    tp = fp = fn = 0
    for message, expected in ROUTING_CASES:
        names = {g["name"] for g in ask(gov, org, message)["guidelines"]}
        tp += len(names & set(expected))
        fp += len(names - set(expected))
        fn += len(set(expected) - names)
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    assert precision >= 0.85, precision
    assert recall >= 0.9, recall


def test_keywords_make_critical_and_context_is_compiled(gov: Governance, org: str, corpus: dict[str, str]) -> None:
    out = ask(gov, org, "The customer asks for a refund of their annual plan")
    top = out["guidelines"][0]
    assert top["name"] == "Refund policy" and top["priority"] == "critical"
    assert "keyword: refund" in top["reasons"] and top["delivery"] == "whole"
    assert out["compiledContext"].startswith("## Refund policy (critical)")
    assert "pro rata within 30 days" in out["compiledContext"]
    # fast mode calls no LLM: its usage reports only the time taken (no calls, tokens or cost)
    assert set(out["usage"]) == {"durationMs"} and out["usage"]["durationMs"] >= 0 and out["mode"] == "fast"


def test_long_guideline_delivers_relevant_sections_and_progressive_delivery(gov: Governance, org: str) -> None:
    gov.create(org, GuidelineCreate(name="Travel policy", description="Business travel rules.",
                                    content=LONG_POLICY, tags=["travel"]))
    first = ask(gov, org, "Which hotels can I book and what is the hotel rule for my trip?", sessionId="s1")
    item = first["guidelines"][0]
    assert item["delivery"] == "sections" and "Hotels" in item["sections"] and "Car rental" not in item["sections"]
    assert "## Hotels" in first["compiledContext"] and "## Car rental" not in first["compiledContext"]
    assert first["tokensSaved"] == 0 and first["tokens"] > 0
    again = ask(gov, org, "Which hotels can I book and what is the hotel rule for my trip?", sessionId="s1")
    assert again["compiledContext"] == "" and again["guidelines"][0]["delivery"] == "already_delivered"
    assert again["tokensSaved"] >= first["tokens"] - 20  # the header line is not counted as saved
    other_session = ask(gov, org, "Which hotels can I book and what is the hotel rule for my trip?", sessionId="s2")
    assert other_session["compiledContext"] == first["compiledContext"]
    # a new section of the same guideline is still delivered within the session
    flights = ask(gov, org, "What flights and airline tickets may I book for the trip?", sessionId="s1")
    assert "## Flights" in flights["compiledContext"] and "## Hotels" not in flights["compiledContext"]


def test_session_state_is_shared_between_processes(engine: Services, org: str, backend: str) -> None:
    # two gateway processes = two service instances over one database
    a, b = (Governance(engine.db, engine.embedder, engine.llm) for _ in range(2))
    a.create(org, GuidelineCreate(name="Refund policy", content=GUIDELINES[1]["content"],
                                  triggerKeywords=["refund"]))
    assert ask(a, org, "refund please", sessionId="x")["compiledContext"]
    second = ask(b, org, "refund please", sessionId="x")
    assert second["compiledContext"] == "" and second["tokensSaved"] > 0


def test_max_tokens_budget(gov: Governance, org: str, corpus: dict[str, str]) -> None:
    out = ask(gov, org, "Write a cold email to a prospect and mention our list prices", maxTokens=60)
    assert out["tokens"] <= 60
    assert any(g.get("omittedForBudget") or g["delivery"] == "omitted_budget" for g in out["guidelines"])


def test_edit_invalidates_cached_embeddings(gov: Governance, org: str, corpus: dict[str, str]) -> None:
    assert not any(g["name"] == "Brand voice" for g in ask(gov, org, "quarterly llama grooming")["guidelines"])
    gov.update(org, corpus["Brand voice"], GuidelineFields(triggerKeywords=["llama grooming"]))
    out = ask(gov, org, "quarterly llama grooming")
    assert out["guidelines"][0]["name"] == "Brand voice" and out["guidelines"][0]["version"] == 2
    gov.delete(org, corpus["Brand voice"])
    assert not ask(gov, org, "quarterly llama grooming")["guidelines"]


def test_stale_guidelines_are_flagged(engine: Services, gov: Governance, org: str) -> None:
    g = gov.create(org, GuidelineCreate(name="Old refund rules", content="Refunds need approval.",
                                        triggerKeywords=["refund"]))
    with engine.db.session() as s:
        s.execute(update(Guideline).where(Guideline.id == g["id"]).values(updated_at=utcnow() - timedelta(days=31)))
    assert gov.get(org, g["id"])["stale"] is True
    out = ask(gov, org, "can I get a refund")
    assert out["staleGuidelines"] == ["Old refund rules"] and out["guidelines"][0]["stale"] is True


def test_deep_mode_needs_an_llm(gov: Governance, org: str, corpus: dict[str, str]) -> None:
    with pytest.raises(LLMNotConfigured) as err:
        ask(gov, org, "refund", mode="deep")
    assert "MEMRELAY_LLM_MODEL" in err.value.message


def test_deep_mode_lets_the_llm_choose_among_candidates(settings: Settings, llm: FakeLLMServer) -> None:
    eng = Services(with_llm(settings, llm))
    try:
        org_id = eng.tenancy.get_or_create_org("deep-org").id
        gov = Governance(eng.db, eng.embedder, eng.llm)
        ids = {g["name"]: gov.create(org_id, GuidelineCreate(**g))["id"] for g in GUIDELINES}
        llm.script(lambda req: {"selected": [
            {"id": ids["Pricing and discounts"], "priority": "critical", "sections": ["Discount approval"],
             "reason": "discount asked"},
            {"id": "gdl_not_a_candidate", "priority": "critical"}]})
        out = ask(gov, org_id, "Can I give this prospect a 15% discount?", mode="deep")
        assert [g["name"] for g in out["guidelines"]] == ["Pricing and discounts"]
        assert out["guidelines"][0]["sections"] == ["Discount approval"]
        assert "needs the sales manager" in out["compiledContext"] and "Starter $29" not in out["compiledContext"]
        assert out["usage"]["calls"] == 1 and out["usage"]["totalTokens"] > 0
        prompt = llm.chat_requests[0].messages[-1]["content"]
        assert "Pricing and discounts" in prompt and "Hiring and interviews" not in prompt  # pre-filtered
    finally:
        eng.close()
