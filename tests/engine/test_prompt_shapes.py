"""``client.ai.prompt()`` request shapes as Personize documents them (004's multi-entity example, 001/002's
guardrails example, the SDK's PromptOptions): ``evaluationCriteria`` as one string, ``evaluate`` as an
object, string instructions and a single-shot ``prompt`` reach the LLM as memrelay's own shapes do."""

from __future__ import annotations

from typing import Any

import pytest

from memrelay.composition import Services
from memrelay.engine.core.errors import ValidationFailed
from memrelay.engine.guidance.generation import PromptRequest
from memrelay.gateway.api import parse_body
from tests.support.fake_llm import FakeLLMServer

CRITERION = "Message must reference company or support context, not just individual contact data."
JUDGED = {"score": 7, "summary": "Uses company context.",
          "criteria": [{"criterion": CRITERION, "score": 7, "notes": "Mentions the renewal."}]}


def generate(eng: Services, body: dict[str, Any]) -> dict[str, Any]:
    org = eng.tenancy.get_or_create_org("prompt-shapes").id
    return eng.generation.generate(org, PromptRequest.model_validate(body))


def judge_prompt(llm: FakeLLMServer) -> str:
    return str(llm.chat_requests[-1].messages[-1]["content"])


def test_evaluation_criteria_as_one_string(eng: Services, llm: FakeLLMServer) -> None:
    llm.reply("Risks: renewal in 11 days, two open tickets.")
    llm.reply("MESSAGE: Given the Q3 integration issues, shall we review your renewal together?")
    llm.reply_json(JUDGED)
    # 004's ai.prompt() call, verbatim apart from the context
    out = generate(eng, {
        "context": "Acme renews in 11 days and has two open support tickets.",
        "instructions": [
            {"prompt": "Analyze the situation: what does this person need right now?", "maxSteps": 3},
            {"prompt": "Draft a personalized message. Output MESSAGE: on a single line.", "maxSteps": 5}],
        "evaluate": True, "evaluationCriteria": CRITERION, "useGuidelines": False})
    assert out["evaluation"]["score"] == 7
    assert f"- {CRITERION}" in judge_prompt(llm)
    assert "- Relevance to the instructions" not in judge_prompt(llm)  # the caller's criterion replaced defaults


def test_evaluate_object_string_instructions_and_single_prompt(eng: Services, llm: FakeLLMServer) -> None:
    llm.reply("Hello Dana.")
    llm.reply_json(JUDGED)
    out = generate(eng, {"prompt": "Greet Dana in one sentence.", "useGuidelines": False,
                         "evaluate": {"criteria": CRITERION, "serverSide": True}})
    assert len(out["steps"]) == 1  # a single-shot prompt is one instruction
    assert llm.chat_requests[0].messages[-1]["content"].startswith("Greet Dana in one sentence.")
    assert f"- {CRITERION}" in judge_prompt(llm) and out["evaluation"]["score"] == 7
    llm.reply("Point one.")
    llm.reply("Point two.")
    two = generate(eng, {"instructions": ["List one point.", "List another."], "useGuidelines": False})
    assert len(two["steps"]) == 2 and len(llm.chat_requests) == 4


def test_list_criteria_still_work_and_bad_shapes_are_422(app: Any) -> None:
    listed = PromptRequest.model_validate({"instructions": [{"prompt": "x"}], "evaluationCriteria": ["a", "b"]})
    assert listed.evaluationCriteria == ["a", "b"]
    blank = PromptRequest.model_validate({"instructions": ["x"], "evaluationCriteria": "  "})
    assert blank.evaluationCriteria == []
    with app.test_request_context(json={"instructions": ["x"], "evaluationCriteria": 5}):
        with pytest.raises(ValidationFailed) as err:
            parse_body(PromptRequest)
    assert err.value.http_status == 422 and "evaluationCriteria" in err.value.message


def test_output_markers_of_free_text_steps_become_outputs_last_write_wins(eng: Services, llm: FakeLLMServer) -> None:
    # SDK reference "Structured Outputs": <output name> markers extracted, values JSON-parsed (raw string
    # otherwise), a later step's output of the same name overwrites, ``text`` is the response without markers
    llm.reply('Draft. <output name="subject">Old subject</output> <output name="days">2</output>')
    llm.reply('Final note for Dana.\n<output name="subject">Renewal in May</output>\n'
              '<output name="meta">{"tone": "warm"}</output>')
    out = generate(eng, {"context": "Dana renews in May.", "useGuidelines": False,
                         "instructions": ["Draft it.", "Revise it."]})
    assert out["outputs"] == {"subject": "Renewal in May", "days": 2, "meta": {"tone": "warm"},
                              "output": "Final note for Dana."}
    assert out["text"] == "Final note for Dana." and out["steps"][0]["output"] == "Draft."
