"""A department key on the MCP server (stdio, the SDK's own client): every tool, pointed at the other
department's record and words, answers nothing of it; its own department's data is there; writes outside it are
refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from memrelay.engine.core.settings import Settings
from tests.gateway.test_department_sweep import CONTACT_EMAIL, OUT_MARKERS, _department_key, _seed
from tests.mcp_server.test_mcp_server import _run, _server_env, call, stdio_session


def _text(result: Any) -> str:
    return json.dumps(result.structured_content) + " ".join(getattr(c, "text", "") for c in result.content)


def test_mcp_tools_hold_a_department_key_to_its_department(settings: Settings, tmp_path: Path, api: Any) -> None:
    ids = _seed(api)
    support = _department_key(api, entityTypes=["contact", "ticket", "company"], guidelineTags=["support"])
    deal = {"record_id": ids["deal"], "type": "deal"}

    async def scenario() -> None:
        async with stdio_session(_server_env(settings, tmp_path, support.key)) as session:
            answers = {
                "retrieve_deal": await call(session, "memory_retrieve", query="ZebraMegadeal pricing approved", **deal),
                "retrieve_org": await call(session, "memory_recall_pro", query="pricing approved for the refund"),
                "digest_deal": await call(session, "memory_digest", **deal),
                "digest_company": await call(session, "memory_digest", website_url="acme-dept.io", type="company"),
                "guidelines": await call(session, "ai_smart_guidelines", message="pricing for a refund request"),
                "similar_deal": await call(session, "memory_find_similar", **deal),
                "similar_contact": await call(session, "memory_find_similar", email=CONTACT_EMAIL),
                "segment": await call(session, "memory_segment", text="pricing approved refund"),
                "search_all": await call(session, "memory_search"),
                "search_deal": await call(session, "memory_search", type="deal", conditions=[
                    {"propertyName": "amount", "operator": "gt", "value": 1}]),
                "update_deal": await call(session, "memory_update_property", property_name="amount",
                                          property_value=1, **deal),
                "save_deal": await call(session, "memory_save", content="support wrote on the deal", **deal),
                "prompt_deal": await call(session, "prompt", instructions=["summarise"], **deal),
            }
            for name, result in answers.items():
                text = _text(result)
                for marker in OUT_MARKERS:
                    assert marker not in text, (name, marker, text[:500])
            for name in ("digest_deal", "update_deal", "save_deal", "retrieve_deal"):
                assert answers[name].is_error, (name, _text(answers[name])[:300])
            assert "QuinnRefund" in _text(answers["retrieve_org"])
            assert answers["guidelines"].structured_content["candidatesConsidered"] == 1  # support's only
            found = {r["recordId"] for r in answers["search_all"].structured_content["records"]}
            assert found == {ids["contact"], ids["ticket"], ids["company"]}
            assert answers["search_deal"].structured_content["total"] == 0

    _run(scenario)
    after = api.post("/api/v1/recall", json={"type": "deal", "record_id": ids["deal"]}).json["data"]
    assert after["properties"]["amount"]["value"] == 987654
    assert [m["memoryId"] for m in after["freeformMemories"]] == [ids["deal_memory"]]
