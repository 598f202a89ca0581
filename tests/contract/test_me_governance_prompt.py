"""001/002 and the SDK reference: ``me()`` with plan limits, governance (guidelines + smartGuidelines) and
``ai.prompt()`` with instructions, outputs and evaluationCriteria."""

from __future__ import annotations

import pytest

from tests.contract.conftest import Personize, schema_following
from tests.support.fake_llm import FakeLLMServer


def test_me_answers_org_user_and_plan_limits(rate_limited: Personize) -> None:
    # SDK reference: me.data.organization.id, me.data.user.id, me.data.plan.name,
    # me.data.plan.limits.maxApiCallsPerMonth / maxApiCallsPerMinute (001: "read plan limits before batch")
    data = rate_limited.get("/me")
    assert data["organization"]["id"] == rate_limited.org_id, data
    assert data["user"]["id"] and data["plan"]["name"], data
    limits = data["plan"]["limits"]
    assert limits["maxApiCallsPerMinute"] == 120, limits  # the real limit of this key
    assert "maxApiCallsPerMonth" in limits, limits


def test_guidelines_crud_and_smart_guidelines_compiled_context(pz: Personize) -> None:
    # governance skill: guidelines.create(name, value, tags, description); 001: POST /api/v1/guidelines
    created = pz.post("/guidelines", {"name": "Email Tone Guide", "value": "Never promise discounts in email. "
                                      "Keep subject lines under 50 characters.", "tags": ["email", "outbound"],
                                      "description": "How outbound email sounds.",
                                      "triggerKeywords": ["email", "subject line", "discount"]})
    gid = created.get("id") or created.get("guidelineId")
    assert gid, created
    listed = pz.get("/guidelines")
    assert "Email Tone Guide" in str(listed), listed
    # 001 / 003: smartGuidelines({message, mode: 'fast'}) → data.compiledContext
    ctx = pz.post("/ai/smart-guidelines", {"message": "welcome email guidelines and tone", "mode": "fast"})
    assert "Never promise discounts" in ctx["compiledContext"], ctx
    assert ctx["mode"] == "fast" and isinstance(ctx["selection"], list), ctx
    pz.ok("DELETE", f"/guidelines/{gid}")


def test_smart_guidelines_by_names(pz: Personize) -> None:
    pz.post("/guidelines", {"name": "Sales Playbook", "value": "Always lead with the customer's outcome.",
                            "tags": ["sales"]})
    ctx = pz.post("/ai/smart-guidelines", {"message": "pricing email", "guidelineNames": ["sales playbook"],
                                           "mode": "fast"})
    assert "customer's outcome" in ctx["compiledContext"], ctx


PROMPT = {
    "context": "Dana renews the Growth plan in May.",
    "instructions": [
        {"prompt": "Analyze the recipient and the goal of this message.", "maxSteps": 3},
        {"prompt": "Generate the message. Output SUBJECT: and BODY_HTML: as separate fields.", "maxSteps": 5},
    ],
}


@pytest.mark.llm
@pytest.mark.parametrize("criteria", [
    # 001/002 "The Generation Prompt Pattern": evaluationCriteria is a string
    "Content must: (1) match the channel format, (2) contain no invented facts.",
    ["match the channel format", "contain no invented facts"],
], ids=["string", "list"])
def test_prompt_with_instructions_evaluate_and_criteria(pz: Personize, fake_llm: FakeLLMServer,
                                                         criteria: object) -> None:
    fake_llm.responder = schema_following("SUBJECT: Your renewal\nBODY_HTML: <p>Hi Dana</p>")
    data = pz.post("/prompt", {**PROMPT, "evaluate": True, "evaluationCriteria": criteria})
    # SDK reference: result.data.text (001's String(result.data) predates it; the SDK reference is the literal one)
    assert "SUBJECT: Your renewal" in data["text"], data


@pytest.mark.llm
def test_prompt_structured_outputs(pz: Personize, fake_llm: FakeLLMServer) -> None:
    # the model answers with <output> markers (the SDK reference's protocol) or, asked for JSON, with the values
    fake_llm.responder = schema_following('Here you go. <output name="email_subject">Renewal in May</output>'
                                          '<output name="follow_up_days">3</output>',
                                          {"email_subject": "Renewal in May", "follow_up_days": "3"})
    data = pz.post("/prompt", {"prompt": "Write a renewal email for Dana.",
                               "outputs": [{"name": "email_subject"}, {"name": "follow_up_days"}]})
    # SDK reference: markers stripped from text; each value JSON-parsed, raw string otherwise
    assert data["outputs"]["email_subject"] == "Renewal in May" and data["outputs"]["follow_up_days"] == 3, data
    assert "<output" not in data["text"], data


@pytest.mark.llm
def test_prompt_memorize_saves_the_output_to_the_record(pz: Personize, fake_llm: FakeLLMServer) -> None:
    fake_llm.responder = schema_following('<output name="email_subject">Kickoff next Tuesday</output>',
                                          {"email_subject": "Kickoff next Tuesday"})
    pz.post("/prompt", {"prompt": "Write a kickoff email.", "outputs": [{"name": "email_subject"}],
                        "memorize": {"email": "lead@company.com", "captureToolResults": True}})
    digest = pz.post("/smart-memory-digest", {"email": "lead@company.com", "token_budget": 1000})
    assert "Kickoff next Tuesday" in digest["compiledContext"], digest


def test_prompt_without_a_model_is_503(pz: Personize) -> None:
    pz.fails("POST", "/prompt", PROMPT, 503)
