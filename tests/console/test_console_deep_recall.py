"""The recall playground's deep mode (issue 18 item 3) with a model configured against the local fake
OpenAI-compatible server: reflection rounds, follow-up searches and the cited answer are shown; deep mode never
runs from a link (GET), only from the CSRF-checked form."""

from __future__ import annotations

import re
from typing import Any

import pytest

from memrelay.engine.core.settings import Settings
from tests.console.test_console import console
from tests.support.fake_llm import FakeLLMServer
from tests.support.llm_env import with_llm

MEMORIES = ("Ada's team runs on PostgreSQL.", "Ada plans to move analytics to Snowflake in Q3.",
            "Ada likes sailing on weekends.")


@pytest.fixture
def settings(settings: Settings, llm: FakeLLMServer) -> Settings:
    return with_llm(settings, llm)


def _seed(c: Any) -> None:
    for content in MEMORIES:
        r = c.api.post("/api/v1/memorize", json={"content": content, "email": "ada@example.org"})
        assert r.status_code == 200, r.json


def _cite(word: str) -> Any:
    """An answer step citing the listed memory whose text holds ``word`` (ids as the prompt lists them)."""
    def answer(req: dict[str, Any]) -> dict[str, Any]:
        prompt = req["messages"][-1]["content"]
        ids = [m.group(1) for m in re.finditer(r"^\[([^\]]+)\] \([^)]*\) (.*)$", prompt, re.M) if word in m.group(2)]
        return {"answer": "PostgreSQL today; Snowflake for analytics from Q3.", "citedMemoryIds": ids[:1]}
    return answer


def test_deep_mode_shows_reflection_follow_ups_and_the_cited_answer(app, engine, llm):
    c = console(app, engine)
    _seed(c)
    llm.reset()
    llm.reply_json({"sufficient": False, "followUpQueries": ["snowflake migration plans"]})
    llm.reply_json({"sufficient": True, "followUpQueries": []})
    llm.script(_cite("PostgreSQL"))
    resp = c.post("/console/recall", {"q": "which database does Ada use", "kind": "email",
                                      "value": "ada@example.org", "mode": "deep", "answer": "1", "limit": "10"})
    assert resp.status_code == 200
    page = resp.get_data(as_text=True)
    assert "Deep recall" in page and "PostgreSQL today; Snowflake for analytics from Q3." in page
    assert "snowflake migration plans" in page and "mode <strong>deep</strong>" in page
    assert "cited by the answer" in page and "3 call(s)" in page
    assert len(llm.chat_requests) == 3  # two reflection rounds, one answer
    cited_row = next(row for row in page.split("<tr") if "cited by the answer" in row)
    assert "PostgreSQL" in cited_row


def test_deep_mode_without_an_answer_and_never_from_a_link(app, engine, llm):
    c = console(app, engine)
    _seed(c)
    llm.reset()
    link = c.text("/console/recall?q=which+database&mode=deep")
    assert "run it from the form" in link and not llm.chat_requests  # a link never spends LLM calls
    llm.reply_json({"sufficient": True, "followUpQueries": []})
    page = c.post("/console/recall", {"q": "which database", "mode": "deep"}).get_data(as_text=True)
    assert "No answer asked for" in page and "Deep recall" in page and len(llm.chat_requests) == 1
    assert "no model configured" not in page


def test_a_deep_llm_failure_is_shown_not_a_500(app, engine, llm):
    c = console(app, engine)
    _seed(c)
    llm.reset()
    llm.fail(401, times=5, message="bad key")
    resp = c.post("/console/recall", {"q": "which database", "mode": "deep", "answer": "1"})
    assert resp.status_code == 200
    assert 'class="flash error" role="alert"' in resp.get_data(as_text=True)
