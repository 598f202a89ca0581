"""003 "CRUD Operations": update, bulk-update, property-history, filter-by-property, query-properties, delete,
delete-record and cancel-deletion (``/api/v1/memory/*``)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.contract.conftest import Personize, prop, texts
from tests.support.fake_llm import FakeLLMServer


def contact(pz: Personize, email: str = "rec@acme.com", **props: Any) -> str:
    pz.upsert(props or {"company_name": "Initech"}, type="Contact", email=email)
    return pz.record_id(email=email)


def test_update_answers_previous_and_new_value(pz: Personize) -> None:
    rid = contact(pz, company_name="Initech")
    # 003 "Update Example", verbatim
    data = pz.post("/memory/update", {"recordId": rid, "type": "contact", "propertyName": "company_name",
                                      "propertyValue": "Acme Corp"})
    assert data["previousValue"] == "Initech" and data["newValue"] == "Acme Corp", data
    assert isinstance(data["version"], int) and "stores" in data, data
    (props,) = pz.search_records(email="rec@acme.com").values()
    assert prop(props, "company_name") == "Acme Corp"


# renewal_stage (a free-text property) stands in for the examples' deal_stage, whose allowed values depend on the
# org's schema (memrelay's starter Contact makes it an options property: 'Negotiation', 'Closed Won', ...).


def test_update_with_stale_expected_version_is_409(pz: Personize, contact_fields: None) -> None:
    rid = contact(pz)
    first = pz.post("/memory/update", {"recordId": rid, "propertyName": "renewal_stage", "propertyValue": "demo"})
    pz.post("/memory/update", {"recordId": rid, "propertyName": "renewal_stage", "propertyValue": "proposal",
                               "expectedVersion": first["version"]})
    pz.fails("POST", "/memory/update", {"recordId": rid, "propertyName": "renewal_stage",
                                        "propertyValue": "negotiation", "expectedVersion": first["version"]}, 409)


def test_update_array_operations(pz: Personize, contact_fields: None) -> None:
    rid = contact(pz)
    pz.post("/memory/update", {"recordId": rid, "propertyName": "tags", "propertyValue": ["trial"]})
    pz.post("/memory/update", {"recordId": rid, "propertyName": "tags",
                               "arrayPush": {"items": ["vip", "trial"], "unique": True}})
    pz.post("/memory/update", {"recordId": rid, "propertyName": "tags", "arrayRemove": {"items": ["trial"]}})
    pz.post("/memory/update", {"recordId": rid, "propertyName": "tasks",
                               "propertyValue": [{"taskId": "abc", "status": "open"}]})
    pz.post("/memory/update", {"recordId": rid, "propertyName": "tasks",
                               "arrayPatch": {"match": {"taskId": "abc"}, "set": {"status": "done"}}})
    (props,) = pz.search_records(email="rec@acme.com").values()
    assert prop(props, "tags") == ["vip"], props
    assert prop(props, "tasks") == [{"taskId": "abc", "status": "done"}], props


def memory_id_of(result: dict[str, Any]) -> str:
    # The documents name no key for a memory's id in smartRecall results; ``memoryId`` is the spelling the
    # update call itself uses (003: "update with memoryId + text"), ``id`` accepted as well.
    return str(result.get("memoryId") or result.get("id"))


def test_update_freeform_memory_text(pz: Personize) -> None:
    pz.memorize("Budget approved for Q2.", email="rec@acme.com")
    rid = pz.record_id(email="rec@acme.com")
    (hit,) = pz.post("/smart-recall", {"query": "budget", "email": "rec@acme.com"})["results"]
    pz.post("/memory/update", {"recordId": rid, "memoryId": memory_id_of(hit), "text": "Budget moved to Q3."})
    found = texts(pz.post("/smart-recall", {"query": "budget", "email": "rec@acme.com"})["results"])
    assert "Budget moved to Q3." in found and "Budget approved for Q2." not in found, found


def test_bulk_update_updates_list(pz: Personize, contact_fields: None) -> None:
    rid = contact(pz, company_name="Initech")
    # 003 "Bulk Update", verbatim (expectedVersion is optional and covered by the update test)
    data = pz.post("/memory/bulk-update", {"recordId": rid, "type": "contact", "updates": [
        {"propertyName": "company_name", "propertyValue": "Acme Corp"},
        {"propertyName": "renewal_stage", "propertyValue": "closed_won"}]})
    by_name = {r["propertyName"]: r for r in data["results"]}
    assert by_name["company_name"]["previousValue"] == "Initech"
    assert by_name["company_name"]["newValue"] == "Acme Corp" and by_name["renewal_stage"]["newValue"] == "closed_won"
    assert all("status" in r for r in data["results"]), data


def test_property_history_entries_and_limit(pz: Personize, contact_fields: None) -> None:
    rid = contact(pz)
    for stage in ("lead", "demo", "proposal", "negotiation"):
        pz.post("/memory/update", {"recordId": rid, "propertyName": "renewal_stage", "propertyValue": stage})
    # 003 "Property History": history.data.entries → [{entryId, propertyName, propertyValue, updatedBy,
    # createdAt, source}]
    data = pz.post("/memory/property-history", {"recordId": rid, "propertyName": "renewal_stage", "limit": 20})
    entries = data["entries"]
    assert {e["propertyValue"] for e in entries} == {"lead", "demo", "proposal", "negotiation"}, entries
    for e in entries:
        assert {"entryId", "propertyName", "propertyValue", "updatedBy", "createdAt", "source"} <= set(e), e
    limited = pz.post("/memory/property-history", {"recordId": rid, "propertyName": "renewal_stage", "limit": 2})
    assert len(limited["entries"]) == 2, limited
    everything = pz.post("/memory/property-history", {"recordId": rid})  # propertyName optional
    assert {e["propertyName"] for e in everything["entries"]} >= {"renewal_stage", "company_name"}, everything


def test_filter_by_property_conditions(pz: Personize, contact_fields: None) -> None:
    active = contact(pz, "a@acme.com", status="active", score=80)
    contact(pz, "b@acme.com", status="active", score=20)
    contact(pz, "c@acme.com", status="churned", score=90)
    # 003 "Filter By Property (No LLM)", verbatim
    data = pz.post("/memory/filter-by-property", {"conditions": [
        {"propertyName": "status", "operator": "equals", "value": "active"},
        {"propertyName": "score", "operator": "gt", "value": 50}], "logic": "AND", "limit": 100})
    assert [r["recordId"] for r in data["records"]] == [active], data
    assert data["totalMatched"] == 1 and "nextToken" in data
    assert {"recordId", "type", "matchedProperties", "lastUpdatedAt"} <= set(data["records"][0])


def test_delete_memories_is_soft_and_cancel_deletion_restores_them(pz: Personize) -> None:
    pz.memorize("Prefers a 9am call.", email="soft@acme.com")
    pz.memorize("Allergic to peanuts.", email="soft@acme.com")
    rid = pz.record_id(email="soft@acme.com")
    hits = pz.post("/smart-recall", {"query": "peanuts allergy", "email": "soft@acme.com", "min_score": 0.0})
    peanut = next(h for h in hits["results"] if "peanuts" in str(h.get("text")))
    # crud-operations.md: client.memory.delete({ ids: [...] }) — soft delete, 30-day recovery
    pz.post("/memory/delete", {"ids": [memory_id_of(peanut)]})
    after = texts(pz.post("/smart-recall", {"query": "peanuts allergy", "email": "soft@acme.com",
                                            "min_score": 0.0})["results"])
    assert not any("peanuts" in t for t in after) and any("9am" in t for t in after), after
    pz.post("/memory/cancel-deletion", {"recordId": rid, "type": "contact"})
    restored = texts(pz.post("/smart-recall", {"query": "peanuts allergy", "email": "soft@acme.com",
                                               "min_score": 0.0})["results"])
    assert any("peanuts" in t for t in restored), restored


def test_delete_record_is_soft_and_cancel_deletion_restores_it(pz: Personize) -> None:
    rid = contact(pz, "gone@acme.com", job_title="CTO")
    pz.memorize("Gone but not forgotten.", email="gone@acme.com")
    # 003 "Delete with Recovery", verbatim
    pz.post("/memory/delete-record", {"recordId": rid, "type": "contact"})
    assert pz.post("/search", {"email": "gone@acme.com", "returnRecords": True})["totalMatched"] == 0
    pz.post("/memory/cancel-deletion", {"recordId": rid, "type": "contact"})
    (props,) = pz.search_records(email="gone@acme.com").values()
    assert prop(props, "job_title") == "CTO"
    found = pz.post("/smart-recall", {"query": "forgotten", "email": "gone@acme.com"})
    assert any("not forgotten" in t for t in texts(found["results"])), found


def test_query_properties_without_a_model_is_503(pz: Personize) -> None:
    rid = contact(pz, pain_points="SOC2 audit prep is manual")
    assert rid
    body = pz.fails("POST", "/memory/query-properties", {"propertyName": "pain_points",
                                                         "query": "concerns about compliance or security",
                                                         "type": "Contact", "limit": 50}, 503)
    assert body["success"] is False


def pick_compliance_values(candidates: dict[str, str]) -> Callable[[list[dict[str, Any]]], str]:
    """A fake model that answers the JSON Schema it is given, choosing the listed values about compliance or
    security: each match carries the number the prompt gave the value (``[n] value`` / ``n. value``) and its
    recordId when the prompt shows one — whichever the server's schema asks for."""
    def respond(messages: list[dict[str, Any]]) -> str:
        prompt = "\n".join(str(m.get("content")) for m in messages)
        matches = []
        for rid, value in candidates.items():
            if not re.search(r"SOC2|security", value, re.I) or value not in prompt:
                continue
            label = re.search(r"\[?(\d+)[\].):]?\s*" + re.escape(value), prompt)
            matches.append({"index": int(label.group(1)) if label else 0, "recordId": rid,
                            "matchReason": "mentions compliance or security"})
        return json.dumps({"matches": matches})

    return respond


@pytest.mark.llm
def test_query_properties_with_a_model_answers_matches(pz: Personize, fake_llm: FakeLLMServer) -> None:
    values = {"a@acme.com": "SOC2 audit prep is manual", "b@acme.com": "Wants a cheaper plan",
              "c@acme.com": "Security review blocks every vendor"}
    ids = {contact(pz, email, pain_points=v): v for email, v in values.items()}
    fake_llm.responder = pick_compliance_values(ids)
    # 003 "Query Properties (LLM-powered)", verbatim
    data = pz.post("/memory/query-properties", {"propertyName": "pain_points",
                                                "query": "concerns about compliance or security",
                                                "type": "Contact", "limit": 50})
    got = {m["recordId"]: m for m in data["matches"]}
    expected = {rid for rid, v in ids.items() if "Wants" not in v}
    assert set(got) == expected, data
    for rid, m in got.items():
        assert m["propertyValue"] == ids[rid] and m["matchReason"], m
