"""Generation end to end at the engine level, through litellm's real HTTP path to the fake server:
multi-step prompts, named outputs, channel enforcement with regeneration, guardrails, evaluation,
automatic context assembly with progressive guideline delivery, memorize-back and agents."""

from __future__ import annotations

import json
from typing import Any

import pytest

from memrelay.composition import Services
from memrelay.engine.adapters.llm import LLMNotConfigured
from memrelay.engine.core.errors import ValidationFailed
from memrelay.engine.core.settings import Settings
from memrelay.engine.domain import channels, guardrails
from memrelay.engine.guidance.agents import AgentCreate, AgentRun
from memrelay.engine.guidance.generation import PromptRequest
from memrelay.engine.guidance.governance import GuidelineCreate
from memrelay.engine.memory.memories import MemorizeRequest
from memrelay.engine.stores.identity import Identifiers
from memrelay.engine.stores.outbox import recent
from tests.support.fake_llm import FakeLLMServer
from tests.support.guidelines_corpus import GUIDELINES

GOOD_EMAIL = {"subject": "Your Growth plan renewal", "body_html": "<p>Hi Dana, thanks for a great year.</p>",
              "body_text": "Hi Dana, thanks for a great year."}


@pytest.fixture
def org(eng: Services) -> str:
    return eng.tenancy.get_or_create_org("gen-org").id


def generate(eng: Services, org: str, **body: Any) -> dict[str, Any]:
    return eng.generation.generate(org, PromptRequest.model_validate(body))


def test_multi_step_with_named_outputs_and_channel_regeneration(eng: Services, org: str, llm: FakeLLMServer) -> None:
    llm.reply("Key points: thank Dana for the renewal; mention the new dashboards.")
    llm.reply_json({**GOOD_EMAIL, "subject": "A" * 95})  # violates the 80-character subject limit
    llm.reply_json(GOOD_EMAIL)
    out = generate(eng, org, context="Dana Lee renewed the Growth plan. New dashboards launched.",
                   instructions=[{"prompt": "List the key points for a renewal thank-you."},
                                 {"prompt": "Write the email.", "maxSteps": 3}],
                   channel="email", useGuidelines=False)
    assert out["outputs"] == GOOD_EMAIL and out["subject"] == GOOD_EMAIL["subject"]  # separate named fields
    assert out["channel"] == {"name": "email", "compliant": True, "violations": [], "attempts": 2}
    assert [s["attempts"] for s in out["steps"]] == [1, 2]
    second = llm.chat_requests[1].messages
    assert second[-2] == {"role": "assistant", "content": out["steps"][0]["output"]}  # step 2 saw step 1
    assert "subject: the email subject line (at most 80 characters" in second[-1]["content"]
    feedback = llm.chat_requests[2].messages[-1]["content"]
    assert "subject has 95 characters; the limit is 80" in feedback
    assert out["usage"]["calls"] == 3 and out["usage"]["totalTokens"] > 0
    assert out["review_required"] is False and out["guardrails"]["passed"] is True
    with eng.db.read() as s:
        event = recent(s, org, event_type="generation.completed")[0]
    assert event["data"]["runId"] == out["runId"] and event["data"]["outputs"] == sorted(GOOD_EMAIL)


def test_channel_rules() -> None:
    assert channels.violations("sms", {"text": "x" * 161}) == ["text has 161 characters; the limit is 160"]
    assert channels.violations("sms", {"text": "<b>hi</b>"}) == ["text must be plain text without HTML tags"]
    push = channels.violations("push", {"title": "t" * 51, "body": "b" * 101})
    assert push == ["title has 51 characters; the limit is 50", "body has 101 characters; the limit is 100"]
    assert channels.violations("slack", {"text": "word " * 151}) == ["text has 151 words; the limit is 150"]
    assert channels.violations("email", {"subject": "**Hi**", "body_html": "plain", "body_text": "ok"}) == [
        "subject must be plain text without markdown", "body_html must be HTML markup"]
    assert channels.violations("in_app", {"title": "Hi"}) == ["body is missing"]
    assert channels.violations(None, {"anything": "x" * 10_000}) == []


def test_guardrails_flag_unsupported_facts_and_sensitive_topics() -> None:
    report = guardrails.check(
        {"text": "Hi Dana, Globex pays $450/month; see http://acme.com. Ask your doctor about it."},
        context="Dana Lee at Acme is on the $99/month plan. https://acme.com/pricing")
    kinds = {f.kind for f in report.flags}
    assert kinds == {"unsupported_name", "unsupported_number", "insecure_url", "sensitive_topic"}
    assert [f.kind for f in report.blocking] == ["insecure_url"]
    assert any("'$450'" in r for r in report.reasons) and any("Globex" in r for r in report.reasons)
    assert {r for r in report.reasons if r.startswith("mentions")} == {
        "mentions pricing ('/month'); needs human review", "mentions medical ('doctor'); needs human review"}
    clean = guardrails.check({"text": "Hi Dana, thanks for renewing with Acme. 3 quick tips inside."},
                             context="Dana Lee renewed with Acme.")
    assert clean.flags == []
    assert [f.kind for f in guardrails.check({"t": "Hi {{first_name}}, lorem ipsum [Company Name]"},
                                             context="").blocking] == ["placeholder"] * 3


def test_placeholders_are_regenerated_then_flagged_for_review(eng: Services, org: str, llm: FakeLLMServer) -> None:
    llm.reply_json({"text": "Hi [First Name], your plan renews soon."}, times=2)
    out = generate(eng, org, context="Dana renews in May.", channel="sms", useGuidelines=False,
                   instructions=[{"prompt": "Write an SMS reminder.", "maxSteps": 2}])
    assert len(llm.chat_requests) == 2  # bounded: maxSteps attempts, then returned for review
    assert "placeholder '[First Name]'" in llm.chat_requests[1].messages[-1]["content"]
    assert out["review_required"] is True and out["guardrails"]["flags"][0]["kind"] == "placeholder"
    assert out["channel"]["compliant"] is True


def test_evaluation_with_criteria(eng: Services, org: str, llm: FakeLLMServer) -> None:
    llm.reply_json({"text": "Dana, your Growth plan renews in May."})
    llm.reply_json({"score": 8.5, "summary": "Clear.", "criteria": [
        {"criterion": "Brevity", "score": 9, "notes": "One sentence."},
        {"criterion": "Accuracy", "score": 8, "notes": "Matches the context."}]})
    out = generate(eng, org, context="Dana's Growth plan renews in May.", channel="sms", useGuidelines=False,
                   instructions=[{"prompt": "Write an SMS."}], evaluate=True, evaluationCriteria=["Brevity", "Accuracy"])
    assert out["evaluation"]["score"] == 8.5
    assert [c["notes"] for c in out["evaluation"]["criteria"]] == ["One sentence.", "Matches the context."]
    judge_prompt = llm.chat_requests[1].messages[-1]["content"]
    assert "- Brevity" in judge_prompt and "text: Dana, your Growth plan renews in May." in judge_prompt
    assert out["usage"]["calls"] == 2


def test_auto_context_progressive_guidelines_and_memorize_back(eng: Services, org: str, llm: FakeLLMServer) -> None:
    eng.memories.memorize(org, MemorizeRequest(content="Dana Lee is the VP of Operations at Acme. "
                                                       "Dana prefers short emails.",
                                               email="dana@acme.com", tags=["crm"]))
    gov = eng.governance
    for g in GUIDELINES:
        gov.create(org, GuidelineCreate(**g))
    llm.reply("Outline: greet Dana, offer a kickoff call.")
    llm.reply_json(GOOD_EMAIL)
    out = generate(eng, org, email="dana@acme.com", channel="email", sessionId="sess-1",
                   instructions=[{"prompt": "Plan a refund answer for Dana's refund request."},
                                 {"prompt": "Write the refund email to Dana."}],
                   memorize={"email": "dana@acme.com", "captureOutputs": True})
    system = llm.chat_requests[0].messages[0]["content"]
    assert "Dana prefers short emails" in system and "VP of Operations" in system  # digest + recall
    assert "## Refund policy (critical)" in system
    step2 = json.dumps(llm.chat_requests[1].messages)
    assert step2.count("pro rata within 30 days") == 1  # delivered once across steps, not again
    assert out["context"]["guidelineTokensSaved"] > 0 and out["context"]["sessionId"] == "sess-1"
    assert set(out["context"]["sources"]) == {"smart_digest", "smart_recall", "smart_guidelines"}
    assert out["memorized"]["memoryIds"]
    with eng.db.read() as s:
        rec = eng.records.get(org, Identifiers(email="dana@acme.com"))
        mems = eng.memories.list_for_record(s, rec["recordId"])
    generated = [m for m in mems if "generated" in m["tags"]]
    assert generated and any("Your Growth plan renewal" in m["text"] for m in generated)


def test_without_a_model_generation_refuses(settings: Settings, engine: Services) -> None:
    org_id = engine.tenancy.get_or_create_org("no-llm").id
    with pytest.raises(LLMNotConfigured) as err:
        engine.generation.generate(org_id, PromptRequest.model_validate({"instructions": [{"prompt": "hi"}]}))
    assert err.value.http_status == 503 and "MEMRELAY_LLM_MODEL" in err.value.message


def test_agents_fill_variables_and_run(eng: Services, org: str, llm: FakeLLMServer) -> None:
    agents = eng.agents
    agent = agents.create(org, AgentCreate(name="sms-nudge", spec={
        "instructions": [{"prompt": "Write an SMS about {{input}} for {{ name }}."}],
        "channel": "sms", "context": "{{name}} asked about {{input}}.", "useGuidelines": False}))
    assert agent["variables"] == ["input", "name"]
    with pytest.raises(ValidationFailed) as err:
        agents.run(org, agent["id"], AgentRun(input="renewal"))
    assert err.value.details["missing"] == ["name"]
    llm.reply_json({"text": "Dana, your renewal is coming up."})
    out = agents.run(org, agent["id"], AgentRun(input="renewal", variables={"name": "Dana"}))
    assert out["agentId"] == agent["id"] and out["text"] == "Dana, your renewal is coming up."
    sent = json.dumps(llm.chat_requests[0].messages)
    assert "Write an SMS about renewal for Dana." in sent and "Dana asked about renewal." in sent
    with pytest.raises(ValidationFailed):
        agents.create(org, AgentCreate(name="bad", spec={"instructions": []}))
