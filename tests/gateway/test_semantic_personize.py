"""Semantic memory as Personize's documents describe it (003 memory API, 004 multi-entity keys): each test
sends the documented request and checks the documented answer (inside the ``{success, data}`` envelope)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from memrelay.engine.core.settings import Settings
from memrelay.engine.core.util import utcnow
from memrelay.engine.stores.db.models import Memory
from memrelay.engine.stores.retention import purge_history
from tests.conftest import Api, make_api
from tests.support.fake_llm import FakeLLMServer
from tests.support.llm_env import with_llm

ACME = "https://acme.com"
SARAH = "sarah.chen@acme.com"


@pytest.fixture
def llm_overrides() -> dict[str, Any]:
    return {"no_llm": True}


@pytest.fixture
def settings(settings: Settings, llm: FakeLLMServer, llm_overrides: dict[str, Any]) -> Settings:
    """LLM-less unless a test parametrizes ``llm_overrides`` with ``{}`` (then the fake server is the model)."""
    if llm_overrides.get("no_llm"):
        return settings
    return with_llm(settings, llm, **llm_overrides)


def data(r: Any, status: int = 200) -> Any:
    assert r.status_code == status, r.json
    assert r.json["success"] is True, r.json
    return r.json["data"]


def error(r: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.json
    if code:
        assert r.json["error"]["code"] == code, r.json
    return r.json["error"]


def memorize(api: Any, content: str, **fields: Any) -> dict[str, Any]:
    return data(api.post("/api/v1/memorize", json={"content": content, **fields}))


def smart_recall(api: Any, query: str, **fields: Any) -> dict[str, Any]:
    return data(api.post("/api/v1/smart-recall", json={"query": query, **fields}))


def _acme_graph(api: Any) -> dict[str, str]:
    """004's four entity types, written with memorizeBatch({items}) and every relationship key."""
    out = data(api.post("/api/v1/batch-memorize", json={"items": [
        {"content": "Contact: Sarah Chen, VP Engineering at Acme. Notes: she is evaluating SOC2 compliance tools.",
         "email": SARAH, "website_url": ACME, "collectionName": "Contact", "extractMemories": True,
         "intelligence": "pro"},
        {"content": "Company: Acme. Industry: fintech. Stack: PostgreSQL on AWS. Health score: 72.",
         "website_url": ACME, "collectionName": "Company", "extractMemories": True},
        {"content": "Deal: Acme platform expansion. Stage: negotiation. Value: $120,000. Next step: security review.",
         "customKeyName": "dealId", "customKeyValue": "D-100", "email": SARAH, "website_url": ACME,
         "collectionName": "Deal", "extractMemories": True},
        {"content": "Ticket #T-7: webhook deliveries failing with timeouts. Severity: high. Status: open.",
         "customKeyName": "ticketId", "customKeyValue": "T-7", "website_url": ACME, "email": SARAH,
         "collectionName": "SupportTicket", "extractMemories": True},
    ]}))
    assert out["items"] == 4 and out["failed"] == 0, out
    types = [r["type"] for r in out["results"]]
    assert types == ["contact", "company", "deal", "ticket"]  # collectionName chose each entity type
    return {t: r["recordId"] for t, r in zip(types, out["results"], strict=True)}


# --- cross-entity recall (004) --------------------------------------------------------------------------
def test_recall_by_secondary_key_reaches_every_type_that_carries_it(api: Any) -> None:
    ids = _acme_graph(api)
    tickets = smart_recall(api, "open issues, integration problems, escalations", website_url=ACME,
                           collectionNames=["SupportTicket"], fast_mode=True)
    assert tickets["results"] and {r["recordId"] for r in tickets["results"]} == {ids["ticket"]}
    assert any("webhook" in r["text"] for r in tickets["results"])
    deals = smart_recall(api, "deal stage, value, objections, next steps", email=SARAH, collectionNames=["Deal"],
                         fast_mode=True)
    assert {r["recordId"] for r in deals["results"]} == {ids["deal"]}
    everything = smart_recall(api, "Acme", website_url=ACME, limit=50, minScore=-1)
    assert {r["type"] for r in everything["results"]} == {"contact", "company", "deal", "ticket"}
    assert {r["recordId"] for r in everything["scopeRecords"]} == set(ids.values())
    contacts = smart_recall(api, "Acme", website_url=ACME, type="Contact", limit=50, minScore=-1)
    assert {r["recordId"] for r in contacts["results"]} == {ids["contact"]}


def test_group_by_record_answers_record_groups(api: Any) -> None:
    ids = _acme_graph(api)
    out = smart_recall(api, "Acme security and webhooks", website_url=ACME, groupByRecord=True, limit=10)
    groups = out["recordGroups"]
    assert {g["recordId"] for g in groups} <= set(ids.values()) and len(groups) >= 2
    assert [g["topScore"] for g in groups] == sorted((g["topScore"] for g in groups), reverse=True)
    for g in groups:
        assert g["record_id"] == g["recordId"] and 1 <= len(g["matches"]) <= 3 and g["matchCount"] >= len(g["matches"])
        assert all(m["recordId"] == g["recordId"] for m in g["matches"])


def test_type_filter_and_collection_names_are_validated(api: Any) -> None:
    _acme_graph(api)
    err = error(api.post("/api/v1/smart-recall", json={"query": "x", "collectionNames": ["Nope"]}), 422)
    assert err["details"]["unknown"] == ["Nope"]
    err = error(api.post("/api/v1/smart-recall", json={"query": "x", "type": "Spaceship"}), 422)
    assert "contact" in err["details"]["known"]
    nobody = api.post("/api/v1/smart-recall", json={"query": "x", "email": "nobody@acme.com"})
    assert error(nobody, 404)["details"]["tried"] == [{"key": "email", "value": "nobody@acme.com"}]


def test_documented_type_spelling_works_on_every_read(api: Any) -> None:
    memorize(api, "Sarah prefers async updates over calls.", email=SARAH, type="Contact", tags=["prefs"])
    assert smart_recall(api, "communication preferences", email=SARAH, type="Contact")["results"]
    direct = data(api.post("/api/v1/recall", json={"query": "everything", "email": SARAH, "type": "Contact"}))
    assert direct["type"] == "contact"
    digest = data(api.post("/api/v1/smart-memory-digest", json={"email": SARAH, "type": "Contact",
                                                               "token_budget": 500}))
    assert "async updates" in digest["compiledContext"]


# --- org-wide recall ------------------------------------------------------------------------------------
def test_org_wide_hits_carry_record_id_and_honour_min_score(api: Any) -> None:
    ids = _acme_graph(api)
    memorize(api, "Bob breeds horses and sells organic apples at the market.", email="bob@farm.io")
    hits = smart_recall(api, "SOC2 compliance, security audit", type="Contact", limit=20)["results"]
    assert hits and all(h["record_id"] == h["recordId"] and h["type"] == "contact" for h in hits)
    assert hits[0]["record_id"] == ids["contact"]
    loose = smart_recall(api, "SOC2 compliance, security audit", limit=20)["results"]
    # min_score filters on the score each hit reports (similarity plus the recency boost); 0 filters nothing
    unfiltered = smart_recall(api, "SOC2 compliance, security audit", limit=20, min_score=0)["results"]
    assert [h["memoryId"] for h in unfiltered] == [h["memoryId"] for h in loose]
    floor = sorted(h["score"] for h in loose)[len(loose) // 2]
    assert floor > 0, loose
    strict = smart_recall(api, "SOC2 compliance, security audit", limit=20, min_score=floor)["results"]
    assert strict and len(strict) < len(loose) and all(h["score"] >= floor for h in strict)
    camel = smart_recall(api, "SOC2 compliance, security audit", limit=20, minScore=floor)["results"]
    assert [h["memoryId"] for h in camel] == [h["memoryId"] for h in strict]


# --- digest ---------------------------------------------------------------------------------------------
def test_digest_answers_compiled_context_and_can_include_the_company(api: Any) -> None:
    _acme_graph(api)
    plain = data(api.post("/api/v1/smart-memory-digest", json={"email": SARAH, "type": "Contact",
                                                              "token_budget": 1500}))
    assert plain["compiledContext"] == plain["markdown"] and "SOC2" in plain["compiledContext"]
    assert plain["tokenBudget"] == 1500 and plain["tokenEstimate"] <= 1500
    assert "## Company:" not in plain["compiledContext"]
    cross = data(api.post("/api/v1/smart-memory-digest", json={"email": SARAH, "type": "Contact", "token_budget": 1500,
                                                              "includeRelated": True}))
    company_part = cross["compiledContext"].split("## Company:")[1]
    assert "PostgreSQL on AWS" in company_part and "SOC2" not in company_part
    deal = data(api.post("/api/v1/smart-memory-digest", json={"customKeyName": "dealId", "customKeyValue": "D-100",
                                                             "token_budget": 1500, "includeRelated": True}))
    assert deal["type"] == "deal" and "## Contact:" in deal["compiledContext"] and "## Company:" in deal["compiledContext"]


# --- memorize -------------------------------------------------------------------------------------------
def test_collection_name_chooses_the_entity_type_and_tags_are_optional(api: Any) -> None:
    col = data(api.post("/api/v1/collections", json={"collectionName": "Student", "entityType": "student",
                                                     "properties": []}), 201)
    out = memorize(api, "Student: Alice Chen, enrolled in Computer Science. GPA: 3.8.", customKeyName="studentNumber",
                   customKeyValue="S-2024-1234", email="alice@university.edu", collectionName="Student",
                   extractMemories=True)
    assert out["type"] == "student"
    by_number = data(api.post("/api/v1/recall", json={"query": "Academic record", "type": "Student",
                                                      "customKeyName": "studentNumber",
                                                      "customKeyValue": "S-2024-1234"}))
    assert by_number["recordId"] == out["recordId"]
    by_id = memorize(api, "Alice joined the robotics club.", customKeyName="studentNumber",
                     customKeyValue="S-2024-1234", collectionId=col["collectionId"])
    assert by_id["recordId"] == out["recordId"]
    assert error(api.post("/api/v1/memorize", json={"content": "x", "email": "a@b.io", "collectionName": "Nope"}),
                 404)["details"]["known"]
    clash = api.post("/api/v1/memorize", json={"content": "x", "email": "a@b.io", "type": "Company",
                                               "collectionName": "Student"})
    error(clash, 422)


def test_about_self_is_the_calling_keys_own_record(app: Any, engine: Any, api: Any) -> None:
    out = memorize(api, "I prefer formal communication. My timezone is PST.", about="self")
    assert out["type"] == "self"
    mine = smart_recall(api, "What are my preferences and working style?", about="self")
    assert mine["results"] and {r["recordId"] for r in mine["results"]} == {out["recordId"]}
    key, _ = engine.tenancy.create_key(api.org_id, scopes=["read", "write"])
    colleague = Api(api.client, key, api.org_id)  # same org, another key: another self
    assert smart_recall(colleague, "preferences", about="self")["results"] == []
    other_org = make_api(app, engine)
    assert smart_recall(other_org, "preferences", about="self")["results"] == []
    again = memorize(api, "I work mornings only.", about="self")
    assert again["recordId"] == out["recordId"]


def test_memorize_batch_items_report_each_item(api: Any) -> None:
    out = data(api.post("/api/v1/batch-memorize", json={"items": [
        {"content": "Kim likes sailing.", "email": "kim@delta.com", "collectionName": "Contact"},
        {"email": "nocontent@delta.com"},
        {"content": "Unknown collection.", "email": "x@delta.com", "collectionName": "Spaceships"},
    ], "tags": ["import"]}))
    assert (out["items"], out["memorized"], out["failed"]) == (3, 1, 2)
    ok, bad, unknown = out["results"]
    assert ok["success"] and ok["type"] == "contact" and ok["memoriesCreated"] == 1
    assert bad["error"]["code"] == "validation_failed" and "content" in bad["error"]["message"]
    assert unknown["error"]["code"] == "not_found"
    assert error(api.post("/api/v1/batch-memorize", json={"items": []}), 422)


# --- soft delete ----------------------------------------------------------------------------------------
def test_memory_delete_is_soft_and_cancel_deletion_restores(api: Any, engine: Any, backend: str) -> None:
    out = memorize(api, "Kim loves sailing in Croatia. Kim runs marathons every spring.", email="kim@delta.com")
    sailing, running = out["memoryIds"]
    deleted = data(api.post("/api/v1/memory/delete", json={"memoryIds": [sailing]}))
    assert deleted["deleted"] == 1 and deleted["recoverable"] is True and deleted["purgeAfter"]
    assert engine.index.check_org(api.org_id)["ok"]  # its vector left the index; the check does not miss it
    scoped = smart_recall(api, "sailing holidays", email="kim@delta.com")["results"]
    assert [r["memoryId"] for r in scoped] == [running]
    assert sailing not in [r["memoryId"] for r in smart_recall(api, "sailing holidays", limit=20)["results"]]
    digest = data(api.post("/api/v1/smart-memory-digest", json={"email": "kim@delta.com", "token_budget": 800}))
    assert "sailing" not in digest["compiledContext"] and "marathons" in digest["compiledContext"]
    direct = data(api.post("/api/v1/recall", json={"query": "all", "email": "kim@delta.com", "type": "Contact"}))
    assert [m["memoryId"] for m in direct["freeformMemories"]] == [running]
    restored = data(api.post("/api/v1/memory/cancel-deletion", json={"memoryIds": [sailing]}))
    assert restored["memoryIds"] == [sailing]
    assert smart_recall(api, "sailing holidays", email="kim@delta.com")["results"][0]["memoryId"] == sailing
    assert smart_recall(api, "sailing holidays", limit=5)["results"][0]["memoryId"] == sailing  # re-indexed
    error(api.post("/api/v1/memory/cancel-deletion", json={"memoryIds": [sailing]}), 404)  # nothing pending
    assert engine.index.check_org(api.org_id)["ok"]

    everything = data(api.post("/api/v1/memory/delete", json={"email": "kim@delta.com"}))
    assert sorted(everything["memoryIds"]) == sorted([sailing, running])
    assert smart_recall(api, "sailing", email="kim@delta.com")["results"] == []
    back = data(api.post("/api/v1/memory/cancel-deletion", json={"email": "kim@delta.com"}))
    assert sorted(back["memoryIds"]) == sorted([sailing, running])


def test_soft_deleted_memories_are_purged_after_the_window(api: Any, engine: Any) -> None:
    out = memorize(api, "Lee signed the MSA in Berlin.", email="lee@pi.com")
    mid = out["memoryIds"][0]
    data(api.post("/api/v1/memory/delete", json={"memoryIds": [mid]}))
    assert purge_history(engine.db)["deletedMemories"] == 0  # still within the recovery window
    with engine.db.session() as s:
        s.execute(update(Memory).where(Memory.id == mid).values(purge_after=utcnow() - timedelta(minutes=1)))
    assert purge_history(engine.db)["deletedMemories"] == 1
    with engine.db.read() as s:
        assert s.scalar(select(Memory.id).where(Memory.id == mid)) is None
    error(api.post("/api/v1/memory/cancel-deletion", json={"memoryIds": [mid]}), 404)


# --- similar and segment --------------------------------------------------------------------------------
def _customers(api: Any) -> list[str]:
    texts = ["Runs PostgreSQL on AWS and evaluates our analytics dashboards for the finance team.",
             "Runs PostgreSQL on AWS and evaluates our analytics dashboards for the sales team.",
             "Runs PostgreSQL on Azure and evaluates analytics dashboards for marketing.",
             "Breeds horses on a farm and sells organic apples at weekend markets."]
    return [memorize(api, t, email=f"user{i}@org{i}.com")["recordId"] for i, t in enumerate(texts)]


def test_similar_takes_a_seed_and_lists_record_ids_per_tier(api: Any) -> None:
    ids = _customers(api)
    out = data(api.post("/api/v1/similar", json={"seed": {"email": "user0@org0.com"}, "topK": 10,
                                                 "dimensions": "memories"}))
    first = out["results"][0]
    assert first["recordId"] == ids[1] and first["tier"] == "very_similar" and "memories" in first["matchBreakdown"]
    assert set(out["tiers"]) == {"very_similar", "similar", "somewhat_similar", "not_similar"}
    assert ids[1] in out["tiers"]["very_similar"]
    listed = [rid for tier in out["tiers"].values() for rid in tier]
    assert sorted(listed) == sorted(r["recordId"] for r in out["results"]) and ids[0] not in listed
    by_record = data(api.post("/api/v1/similar", json={"seed": {"recordId": ids[0]}, "dimensions": "memories",
                                                       "returnAllIds": True}))
    assert by_record["recordIds"] == [r["recordId"] for r in by_record["results"]]
    assert error(api.post("/api/v1/similar", json={"seed": "user0@org0.com"}), 422)


def test_segment_by_text_seed_answers_tiers_with_record_ids_and_not_similar(api: Any) -> None:
    ids = _customers(api)
    out = data(api.post("/api/v1/segment", json={"seed": {"text": "PostgreSQL on AWS analytics dashboards"},
                                                 "dimensions": "memories", "maxPerTier": 1}))
    tiers = out["tiers"]
    assert set(tiers) == {"very_similar", "similar", "somewhat_similar", "not_similar"}
    assert tiers["not_similar"]["approximate"] is True
    for tier in tiers.values():
        assert isinstance(tier["recordIds"], list) and len(tier["recordIds"]) <= 1 and isinstance(tier["count"], int)
    assert sum(tiers[t]["count"] for t in ("very_similar", "similar", "somewhat_similar")) == out["total"] >= 3
    assert ids[3] not in [rid for name in ("very_similar", "similar") for rid in tiers[name]["recordIds"]]
    one = data(api.post("/api/v1/segment", json={"seed": {"text": "PostgreSQL on AWS analytics dashboards"},
                                                 "dimensions": "memories", "returnTier": "very_similar",
                                                 "maxPerTier": 5, "tierOffset": 1}))
    assert set(one["tiers"]) == {"very_similar"}
    assert one["tiers"]["very_similar"]["recordIds"] == [
        r for r in data(api.post("/api/v1/segment", json={"seed": {"text": "PostgreSQL on AWS analytics dashboards"},
                                                          "dimensions": "memories", "maxPerTier": 6})
                        )["tiers"]["very_similar"]["recordIds"][1:]]


# --- query properties (LLM) -----------------------------------------------------------------------------
def _pain_points(api: Any) -> dict[str, str]:
    out = {}
    for email, pain in (("ann@a.io", "Worried about SOC2 audit prep and data security."),
                        ("ben@b.io", "Wants cheaper seats for the sales team."),
                        ("cat@c.io", "Needs HIPAA compliance before rollout.")):
        out[email] = data(api.post("/api/v1/upsert", json={"email": email, "type": "Contact",
                                                           "properties": {"pain_points": pain}}))["recordId"]
    return out


def test_query_properties_without_a_model_is_503(api: Any, llm: FakeLLMServer) -> None:
    r = api.post("/api/v1/memory/query-properties", json={"propertyName": "pain_points", "query": "compliance"})
    assert error(r, 503, "llm_not_configured")["details"]["setting"] == "MEMRELAY_LLM_MODEL"
    assert llm.chat_requests == []


@pytest.mark.parametrize("llm_overrides", [{}])
def test_query_properties_matches_values_with_reasons(api: Any, llm: FakeLLMServer) -> None:
    ids = _pain_points(api)
    llm.reply_json({"matches": [{"index": 1, "matchReason": "SOC2 and security concerns"},
                                {"index": 3, "matchReason": "HIPAA compliance"},
                                {"index": 9, "matchReason": "not a shown value"}]})
    out = data(api.post("/api/v1/memory/query-properties", json={
        "propertyName": "pain_points", "query": "concerns about compliance or security", "type": "Contact",
        "limit": 50}))
    assert [(m["recordId"], m["matchReason"]) for m in out["matches"]] == [
        (ids["ann@a.io"], "SOC2 and security concerns"), (ids["cat@c.io"], "HIPAA compliance")]
    assert "Worried about SOC2" in str(out["matches"][0]["propertyValue"])
    prompt = llm.chat_requests[0].json["messages"][-1]["content"]
    assert "[2] Wants cheaper seats" in prompt and "concerns about compliance or security" in prompt
    assert out["usage"]["calls"] == 1
