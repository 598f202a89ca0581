"""A department key's prompt: the memory context and guidelines sent to the LLM hold only its department's
records and guidelines (checked on the requests the local fake LLM server received)."""

from __future__ import annotations

from typing import Any

import pytest

from memrelay.engine.core.settings import Settings
from tests.gateway.test_department_sweep import CONTACT_EMAIL, OUT_MARKERS, _department_key, _seed
from tests.support.fake_llm import FakeLLMServer
from tests.support.llm_env import with_llm


@pytest.fixture
def settings(settings: Settings, llm: FakeLLMServer) -> Settings:
    return with_llm(settings, llm)


def _sent_text(llm: FakeLLMServer) -> str:
    return "\n".join(str(m.get("content")) for r in llm.chat_requests for m in r.messages)


def test_prompt_context_holds_only_the_department(api: Any, llm: FakeLLMServer) -> None:
    ids = _seed(api)
    support = _department_key(api, entityTypes=["contact", "ticket", "company"], guidelineTags=["support"])
    llm.reset()
    llm.reply("Dear Quinn, about your refund.", times=5)
    resp = support.post("/api/v1/prompt", json={
        "email": CONTACT_EMAIL, "instructions": [{"prompt": "Answer the refund request about pricing"}]})
    assert resp.status_code == 200, resp.get_data(as_text=True)[:400]
    sent = _sent_text(llm)
    assert "QuinnRefund" in sent and "SupportToneBody" in sent  # its own department's context is there
    for marker in OUT_MARKERS:
        assert marker not in sent, marker
        assert marker not in resp.get_data(as_text=True), marker

    # the org-wide key's prompt over the company still sees the deal and the sales playbook
    llm.reset()
    llm.reply("ok", times=5)
    full = api.post("/api/v1/prompt", json={"type": "company", "website_url": "acme-dept.io",
                                             "instructions": [{"prompt": "pricing for a refund request"}]})
    assert full.status_code == 200, full.get_data(as_text=True)[:400]
    sent = _sent_text(llm)
    assert "ZebraMegadeal" in sent and "SalesPlaybookBody" in sent
    assert ids["deal"] in sent


def test_a_department_key_cannot_queue_a_prompt(api: Any, llm: FakeLLMServer) -> None:
    support = _department_key(api, entityTypes=["contact"], guidelineTags=["support"])
    resp = support.post("/api/v1/prompt", json={"instructions": [{"prompt": "hi"}], "async": True})
    assert resp.status_code == 403 and resp.json["error"]["code"] == "forbidden"
    assert api.post("/api/v1/prompt", json={"instructions": [{"prompt": "hi"}], "async": True}).status_code == 202
