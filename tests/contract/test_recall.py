"""003 RECALL and 004 "The recall side": ``smartRecall`` (``POST /api/v1/smart-recall``) and ``recall``
(``POST /api/v1/recall``), scoped, org-wide, cross-entity by secondary key, by collection, grouped by record."""

from __future__ import annotations

import pytest

from tests.contract.conftest import Personize, schema_following, texts
from tests.support.fake_llm import FakeLLMServer

ACME = "https://acme.com"


@pytest.fixture
def acme(pz: Personize) -> dict[str, str]:
    """004's multi-entity write: contacts, a company, a deal and a ticket, each with its secondary keys."""
    pz.memorize("Contact: Sarah Chen, VP Eng at Acme. Mentioned SOC2 compliance and audit prep pain.",
                email="sarah@acme.com", website_url=ACME, collectionName="Contact")
    pz.memorize("Contact: Tom Reed, Head of Data at Acme. Wants a Snowflake export.",
                email="tom@acme.com", website_url=ACME, collectionName="Contact")
    pz.memorize("Company: Acme. Industry: Fintech. Health score: 72. Renewal in 11 days.",
                website_url=ACME, collectionName="Company")
    pz.memorize("Deal: Acme Expansion. Stage: negotiation. Value: $120000. Next step: legal review.",
                customKeyName="dealId", customKeyValue="D-1", email="sarah@acme.com", website_url=ACME,
                collectionName="Deal")
    pz.memorize("Ticket #T-9: Webhook retries failing, integration escalated. Status: open.",
                customKeyName="ticketId", customKeyValue="T-9", website_url=ACME, email="tom@acme.com",
                collectionName="SupportTicket")
    return {"sarah": pz.record_id(type="Contact", email="sarah@acme.com"),
            "tom": pz.record_id(type="Contact", email="tom@acme.com"),
            "company": pz.record_id(type="Company", website_url=ACME),
            "deal": pz.record_id(type="Deal", customKeyName="dealId", customKeyValue="D-1"),
            # cross-type key lookup here; the type name 'SupportTicket' is asserted by the search tests
            "ticket": pz.record_id(customKeyName="ticketId", customKeyValue="T-9")}


def record_ids(results: list[dict[str, object]]) -> set[str]:
    """004: "Each result includes record_id" (snake_case, as ``r.record_id`` reads it)."""
    return {str(r["record_id"]) for r in results}


def test_smart_recall_scoped_with_documented_type_spelling(pz: Personize) -> None:
    pz.memorize("Sarah said manual audit prep takes 2 weeks per quarter.", email="sarah.chen@initech.com")
    # 003 Quick Example (type: 'Contact', capitalised; memrelay stores types lower-case)
    found = pz.post("/smart-recall", {"query": "what pain points did this contact mention?",
                                      "email": "sarah.chen@initech.com", "type": "Contact", "limit": 10,
                                      "minScore": 0.0, "include_property_values": True})
    assert any("audit prep" in t for t in texts(found["results"])), found


def test_smart_recall_fast_mode_and_fast_mode_flag(pz: Personize) -> None:
    pz.memorize("Tom moved the warehouse to Snowflake.", email="tom@acme.com")
    for flag in ({"mode": "fast"}, {"fast_mode": True}):  # 003 spelling and 004 spelling
        found = pz.post("/smart-recall", {"query": "which warehouse do they use?", "email": "tom@acme.com",
                                          "type": "Contact", **flag})
        assert any("Snowflake" in t for t in texts(found["results"])), (flag, found)


def test_smart_recall_results_carry_scores_at_or_above_min_score(pz: Personize) -> None:
    for note in ("Prefers Slack over email.", "Runs a 40-person data team.", "Budget approved for Q2."):
        pz.memorize(note, email="ana@acme.com")
    loose = pz.post("/smart-recall", {"query": "budget", "email": "ana@acme.com", "min_score": 0.0, "limit": 10})
    assert len(loose["results"]) == 3, loose
    top = max(r["score"] for r in loose["results"])
    strict = pz.post("/smart-recall", {"query": "budget", "email": "ana@acme.com", "min_score": top - 1e-6,
                                       "limit": 10})
    # min_score is a server-side filter (003/004): nothing below it comes back
    assert strict["results"] and all(r["score"] >= top - 1e-6 for r in strict["results"]), strict
    assert len(strict["results"]) < len(loose["results"]), strict
    camel = pz.post("/smart-recall", {"query": "budget", "email": "ana@acme.com", "minScore": top - 1e-6})
    assert len(camel["results"]) == len(strict["results"]), camel


def test_smart_recall_include_property_values(pz: Personize) -> None:
    pz.upsert({"job_title": "CTO"}, type="Contact", email="ada@acme.com")
    pz.memorize("Ada wants SSO before rollout.", email="ada@acme.com")
    found = pz.post("/smart-recall", {"query": "what does she want?", "email": "ada@acme.com",
                                      "include_property_values": True})
    # SDK reference: results.data.property_values — structured properties (if include_property_values: true)
    assert "CTO" in str(found["property_values"]), found


def test_org_wide_smart_recall_by_type_returns_record_id(pz: Personize, acme: dict[str, str]) -> None:
    # 004 "Org-wide recall for cross-entity discovery", verbatim
    found = pz.post("/smart-recall", {"query": "SOC2 compliance, security audit, enterprise security requirements",
                                      "type": "Contact", "limit": 20, "minScore": 0.0})
    ids = record_ids(found["results"])
    assert acme["sarah"] in ids, found
    assert ids <= {acme["sarah"], acme["tom"]}, found  # type: 'Contact' keeps deals/tickets out


def test_cross_entity_smart_recall_by_website_url_reaches_contacts_deals_and_tickets(
        pz: Personize, acme: dict[str, str]) -> None:
    # 004: secondary keys stored at write time make website_url a lookup path for every entity that carries it
    found = pz.post("/smart-recall", {"query": "open issues, deals, contacts and account health",
                                      "website_url": ACME, "limit": 50, "min_score": 0.0})
    assert set(acme.values()) <= record_ids(found["results"]), found


def test_smart_recall_collection_names_scope_by_secondary_email(pz: Personize, acme: dict[str, str]) -> None:
    # 004 "Fast with collection scope — only search Deal memories"
    found = pz.post("/smart-recall", {"query": "deal stage, value, next steps", "email": "sarah@acme.com",
                                      "collectionNames": ["Deal"], "fast_mode": True, "min_score": 0.0})
    assert record_ids(found["results"]) == {acme["deal"]}, found
    assert any("legal review" in t for t in texts(found["results"])), found


def test_smart_recall_collection_names_scope_by_company_url(pz: Personize, acme: dict[str, str]) -> None:
    # 004 context assembly: tickets scoped by website_url (not email) — account-level support history
    found = pz.post("/smart-recall", {"query": "open issues, integration problems, escalations",
                                      "website_url": ACME, "collectionNames": ["SupportTicket"],
                                      "fast_mode": True, "min_score": 0.0})
    assert record_ids(found["results"]) == {acme["ticket"]}, found


def test_smart_recall_group_by_record(pz: Personize, acme: dict[str, str]) -> None:
    for i in range(4):
        pz.memorize(f"Sarah follow-up #{i}: SOC2 audit evidence requested.", email="sarah@acme.com")
    found = pz.post("/smart-recall", {"query": "SOC2 audit", "groupByRecord": True, "limit": 50,
                                      "min_score": 0.0})
    # 003: "Returns recordGroups array with topScore, matchCount, and top 3 matches per record".
    # The key of the per-group matches is not spelled out; the literal reading is "matches".
    groups = found["recordGroups"]
    sarah = [g for g in groups if acme["sarah"] in str(g)]
    assert len(sarah) == 1, groups
    assert sarah[0]["matchCount"] >= 5 and isinstance(sarah[0]["topScore"], (int, float)), sarah
    assert 1 <= len(sarah[0]["matches"]) <= 3, sarah


@pytest.mark.llm
def test_smart_recall_generate_answer(pz: Personize, fake_llm: FakeLLMServer) -> None:
    answer = "They are evaluating SOC2 compliance tools."
    fake_llm.responder = schema_following(answer, {"answer": answer, "text": answer})
    pz.memorize("Sarah mentioned they are evaluating SOC2 compliance tools.", email="sarah@initech.com")
    found = pz.post("/smart-recall", {"query": "what are they evaluating?", "email": "sarah@initech.com",
                                      "generate_answer": True, "mode": "deep"})
    # SDK reference: results.data.answer.text — synthesized answer (if generate_answer: true)
    assert "SOC2" in found["answer"]["text"], found


def test_recall_direct_lookup_answers_properties_and_freeform_memories(pz: Personize) -> None:
    pz.upsert({"job_title": "VP Eng"}, type="Contact", email="sarah@acme.com")
    pz.memorize("Sarah prefers async updates over meetings.", email="sarah@acme.com")
    data = pz.post("/recall", {"query": "what do we know about this contact", "type": "Contact",
                               "email": "sarah@acme.com"})
    # recall.md response shape: memories (properties), freeformMemories, counts, recordId, type, systemIntro
    assert "VP Eng" in str(data["memories"]), data
    assert "async updates" in str(data["freeformMemories"]), data
    assert data["freeformMemoryCount"] == len(data["freeformMemories"]) >= 1
    assert data["recordId"] == pz.record_id(email="sarah@acme.com")
    assert isinstance(data["systemIntro"], str)


def test_recall_requires_type(pz: Personize) -> None:
    pz.memorize("Anything.", email="x@acme.com")
    # SDK reference Common Mistakes: missing type → 400 "type is required"
    pz.fails("POST", "/recall", {"query": "anything", "email": "x@acme.com"}, 400)


def test_recall_by_website_url_camel_case(pz: Personize) -> None:
    pz.memorize("Acme signed a 3-year MSA.", website_url=ACME)
    data = pz.post("/recall", {"query": "company overview", "websiteUrl": ACME, "type": "Company"})
    assert "3-year MSA" in str(data["freeformMemories"]), data


def test_type_is_case_insensitive_on_every_read(pz: Personize) -> None:
    pz.post("/memorize", {"content": "Lowercase-typed write about Lee.", "email": "lee@acme.com",
                          "type": "contact", "tags": ["t"]})
    for spelling in ("Contact", "contact", "CONTACT"):
        pz.post("/recall", {"query": "anything", "type": spelling, "email": "lee@acme.com"})
        found = pz.post("/smart-recall", {"query": "Lee", "type": spelling, "email": "lee@acme.com"})
        assert found["results"], (spelling, found)
        pz.post("/smart-memory-digest", {"email": "lee@acme.com", "type": spelling, "token_budget": 500})
