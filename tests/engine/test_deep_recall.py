"""Deep recall: bounded reflection rounds with follow-up searches and a cited answer (fake LLM)."""

from __future__ import annotations

from typing import Any

from memrelay.composition import Services
from memrelay.engine.memory.deep_recall import deep_recall
from memrelay.engine.memory.memories import MemorizeRequest
from memrelay.engine.memory.recall import RecallRequest
from tests.support.fake_llm import FakeLLMServer

MEMORY = {"a": "Acme uses PostgreSQL.", "b": "Acme plans to migrate to Snowflake in Q3.", "c": "Acme's CTO is Ravi."}


def search(q: str) -> list[dict[str, Any]]:
    hits = [k for k, t in MEMORY.items() if any(w in t.lower() for w in q.lower().split())]
    return [{"memoryId": k, "text": MEMORY[k], "score": 0.5 + 0.1 * i} for i, k in enumerate(hits)]


def test_reflection_is_bounded_to_two_rounds_and_answer_cites_known_ids(eng: Services, llm: FakeLLMServer) -> None:
    org_id = eng.tenancy.get_or_create_org("deep").id
    llm.reply_json({"sufficient": False, "followUpQueries": ["snowflake migration"]})
    llm.reply_json({"sufficient": False, "followUpQueries": ["cto", "snowflake migration"]})
    llm.reply_json({"answer": "PostgreSQL now, Snowflake from Q3.", "citedMemoryIds": ["a", "b", "zzz"]})
    out = deep_recall(eng.llm, org_id, "acme database", search, generate_answer=True)
    assert out["reflection"] == {"rounds": 2, "queries": ["snowflake migration", "cto"]}
    assert {r["memoryId"] for r in out["results"]} == {"a", "b", "c"}
    assert out["answer"] == {"text": "PostgreSQL now, Snowflake from Q3.", "citedMemoryIds": ["a", "b"]}
    assert len(llm.chat_requests) == 3 and out["usage"]["calls"] == 3


def test_sufficient_memories_stop_reflection(eng: Services, llm: FakeLLMServer) -> None:
    org_id = eng.tenancy.get_or_create_org("deep2").id
    llm.reply_json({"sufficient": True, "followUpQueries": ["ignored"]})
    out = deep_recall(eng.llm, org_id, "acme database", search)
    assert out["reflection"] == {"rounds": 1, "queries": []} and "answer" not in out


def test_hook_for_smart_recall_deep_mode(eng: Services, llm: FakeLLMServer) -> None:
    org_id = eng.tenancy.get_or_create_org("deep3").id
    eng.memories.memorize(org_id, MemorizeRequest(content="Acme runs its analytics on PostgreSQL.",
                                                  website_url="acme.com", tags=["crm"]))
    llm.reply_json({"sufficient": True})
    out = eng.recall.smart_recall(org_id, RecallRequest.model_validate(
        {"query": "what database", "website_url": "acme.com", "mode": "deep"}))
    assert out["mode"] == "deep" and out["reflection"]["rounds"] == 1 and out["usage"]["calls"] == 1
    assert "PostgreSQL" in out["results"][0]["text"]
