"""Personize's v1.1 surface: requests built as its SDK reference (personize-sdk-reference.md) documents them,
answers read the way its examples read them (``result.data.…``), effects checked through other endpoints."""

from __future__ import annotations

from typing import Any

import pytest

V11 = "/api/v1.1"

# The body Personize's published n8n template (webhook-to-personize.json, "Build Memorize Payload") sends to
# POST /api/v1.1/memory/save for a form submission {name, email, company, title, notes, source: "typeform"}.
WEBHOOK_TEMPLATE_BODY = {
    "shape": "shortform",
    "content": "Name: Ann Lee\nEmail: ann@acme.com\nCompany: Acme\nTitle: CTO\nNotes: Evaluating SSO for 400 seats.",
    "speaker": "typeform",
    "tags": ["webhook", "real-time", "typeform"],
    "email": "ann@acme.com",
}


def ok(resp: Any, status: int = 200) -> Any:
    """The ``data`` of a successful enveloped answer."""
    assert resp.status_code == status and resp.json["success"] is True, resp.json
    return resp.json["data"]


def failed(resp: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status and resp.json["success"] is False, resp.json
    if code:
        assert resp.json["error"]["code"] == code, resp.json
    return resp.json["error"]


def save(api: Any, **body: Any) -> dict[str, Any]:
    return ok(api.post(f"{V11}/memory/save", json={"tags": ["test"], **body}))


# --- root ---------------------------------------------------------------------------------------
def test_test_verifies_the_key_on_both_prefixes(api: Any) -> None:
    for prefix in (V11, "/api/v1"):
        check = ok(api.get(f"{prefix}/test", headers={"User-Agent": "personize-sdk/test"}))
        assert check["organizationId"] == api.org_id and check["userId"]
        assert check["timestamp"].endswith("Z") and check["userAgent"] == "personize-sdk/test"
        failed(api.client.get(f"{prefix}/test"), 401, "unauthorized")


def test_me_answers_org_user_and_plan_limits(api: Any) -> None:
    me = ok(api.get(f"{V11}/me"))
    assert me["organization"]["id"] == api.org_id and me["user"]["id"]
    assert me["plan"]["limits"]["maxApiCallsPerMinute"] > 0


# --- memory/save -----------------------------------------------------------------------------------
def test_published_webhook_template_body_saves_unchanged(api: Any) -> None:
    result = api.post(f"{V11}/memory/save", json=WEBHOOK_TEMPLATE_BODY).json
    # the template's "Build Response" node: success: result.success, data: result.data
    assert result["success"] is True and result["data"]["recordId"]
    found = ok(api.post(f"{V11}/memory/retrieve", json={"email": "ann@acme.com", "query": "SSO seats"}))
    assert any("SSO" in (r.get("text") or r.get("content") or "") for r in found["results"])
    company = {**WEBHOOK_TEMPLATE_BODY, "email": None, "website_url": "https://acme.com",
               "content": "Acme's procurement asked for a security review."}
    company.pop("email")
    assert ok(api.post(f"{V11}/memory/save", json=company))["type"] == "company"


def test_save_refuses_v1_flags_and_unknown_shapes(api: Any) -> None:
    err = failed(api.post(f"{V11}/memory/save", json={**WEBHOOK_TEMPLATE_BODY, "skipDualWrite": True}), 400)
    assert err["details"]["rejected"] == ["skipDualWrite"]
    failed(api.post(f"{V11}/memory/save", json={**WEBHOOK_TEMPLATE_BODY, "shape": "document"}), 422)
    failed(api.post(f"{V11}/memory/save", json={**WEBHOOK_TEMPLATE_BODY, "shape": "longform"}), 422)
    assert api.post(f"{V11}/memory/retrieve", json={"email": "ann@acme.com", "query": "SSO"}).status_code == 404


def test_shortform_extracts_properties_and_freeform_only_stores_memories(api: Any) -> None:
    text = "Jane Doe works at Acme. Her title is Head of Growth."
    short = save(api, email="jane@acme.com", content=text)
    free = save(api, email="joe@acme.com", content=text.replace("Jane", "Joe"), shape="freeform")
    jane = ok(api.get(f"{V11}/memory/manage/{short['recordId']}"))
    joe = ok(api.get(f"{V11}/memory/manage/{free['recordId']}"))
    # manage.get: memories = the structured properties, [{propertyName, propertyValue, ...}]
    assert {m["propertyName"]: m["propertyValue"] for m in jane["memories"]}["job_title"] == "Head of Growth"
    assert "job_title" not in {m["propertyName"] for m in joe["memories"]}
    texts = " ".join(m["text"] for m in joe["freeformMemories"])
    assert "Joe Doe works at Acme" in texts and "Head of Growth" in texts  # stored as memories only
    assert joe["systemIntro"].startswith("contact ")


# --- retrieve, digest, search, filter ---------------------------------------------------------------
def test_retrieve_and_digest_answer_the_documented_keys(api: Any) -> None:
    save(api, email="lead@company.com", content="Meeting notes: discussed pricing for the enterprise tier.")
    results = ok(api.post(f"{V11}/memory/retrieve", json={"email": "lead@company.com",
                                                           "query": "what pricing concerns did they raise",
                                                           "mode": "fast", "limit": 5}))
    assert "pricing" in (results["results"][0].get("text") or "")
    digest = ok(api.post(f"{V11}/memory/digest", json={"email": "lead@company.com", "include_properties": True,
                                                        "include_memories": True, "token_budget": 3000}))
    assert "enterprise tier" in digest["compiledContext"]


def test_search_and_filter_by_property(api: Any) -> None:
    for email, stage, title in (("a@x.io", "opportunity", "CTO"), ("b@x.io", "lead", "CFO")):
        ok(api.post("/api/v1/upsert", json={"email": email, "properties": {"lifecycle_stage": stage,
                                                                           "job_title": title}}))
    page = ok(api.post(f"{V11}/memory/search", json={
        "groups": [{"conditions": [{"property": "lifecycle_stage", "operator": "EQ", "value": "opportunity"}]}],
        "type": "Contact", "returnRecords": True, "pageSize": 100, "page": 1}))
    assert page["totalMatched"] == 1 and page["totalPages"] == 1 and len(page["recordIds"]) == 1
    props = ok(api.post(f"{V11}/memory/filter-by-property", json={
        "email": "a@x.io", "type": "Contact", "propertyNames": ["job_title", "lifecycle_stage"]}))
    assert props["recordId"] == page["recordIds"][0]
    by_name = {p["name"]: p for p in props["properties"]}
    assert by_name["job_title"]["value"] == "CTO" and by_name["job_title"]["description"]
    assert by_name["lifecycle_stage"]["value"] == "opportunity" and by_name["lifecycle_stage"]["collectionName"]
    filtered = ok(api.post(f"{V11}/memory/filter-by-property", json={
        "conditions": [{"propertyName": "job_title", "operator": "equals", "value": "CFO"}], "type": "Contact"}))
    assert [r["matchedProperties"] for r in filtered["records"]] == [{"job_title": "CFO"}]
    assert filtered["totalMatched"] == 1
    failed(api.post(f"{V11}/memory/filter-by-property", json={"email": "nobody@x.io"}), 404)


# --- save/batch and import -------------------------------------------------------------------------
def test_save_batch_upserts_and_saves_each_record(api: Any) -> None:
    out = ok(api.post(f"{V11}/memory/save/batch", json={"source": "crm-sync", "records": [
        {"email": "c1@x.io", "content": "Asked for a renewal quote in March.", "tags": ["crm"]},
        {"email": "c2@x.io", "properties": {"job_title": "VP Sales"}},
    ]}))
    assert out["saved"] == 2 and [r["index"] for r in out["results"]] == [0, 1]
    c2 = ok(api.get(f"{V11}/memory/manage/{out['results'][1]['recordId']}"))
    assert c2["properties"]["job_title"]["value"] == "VP Sales"
    found = ok(api.post(f"{V11}/memory/retrieve", json={"email": "c1@x.io", "query": "renewal quote"}))
    assert "renewal" in found["results"][0]["text"]
    err = failed(api.post(f"{V11}/memory/save/batch", json={"records": [
        {"email": "c3@x.io", "content": "Fine."}, {"email": "c4@x.io"}]}), 422)
    assert err["details"]["index"] == 1
    assert ok(api.post("/api/v1/search", json={"email": "c3@x.io"}))["totalMatched"] == 0  # nothing written


def test_import_maps_extract_to_memories(api: Any, run_jobs: Any) -> None:
    resp = api.post(f"{V11}/memory/import", json={
        "source": "HubSpot",
        "mapping": {"entityType": "contact", "email": "email", "properties": {
            "job_title": {"sourceField": "title"},
            "notes": {"sourceField": "notes", "extract": True}}},
        "rows": [{"email": "imp@x.io", "title": "COO", "notes": "Wants the audit log export before renewal."}]})
    run = ok(resp, 202)
    run_jobs()
    status = ok(api.get(f"{V11}/memory/import/{run['runId']}"))
    assert status["status"] == "completed", status
    rec = ok(api.post(f"{V11}/memory/filter-by-property", json={"email": "imp@x.io", "propertyNames": ["job_title"]}))
    assert rec["properties"][0]["value"] == "COO"
    found = ok(api.post(f"{V11}/memory/retrieve", json={"email": "imp@x.io", "query": "audit log export"}))
    assert "audit log" in found["results"][0]["text"]


# --- manage -----------------------------------------------------------------------------------------
def test_manage_update_bulk_history_delete_and_cancel(api: Any) -> None:
    rid = ok(api.post("/api/v1/upsert", json={"email": "m@x.io", "properties": {"job_title": "Engineer"}}))["recordId"]
    upd = ok(api.patch(f"{V11}/memory/manage/{rid}", json={"recordId": rid, "propertyName": "job_title",
                                                           "propertyValue": "Lead"}))
    assert upd["previousValue"] == "Engineer" and upd["newValue"] == "Lead"
    bulk = ok(api.patch(f"{V11}/memory/manage", json={"recordId": rid, "updates": [
        {"propertyName": "job_title", "propertyValue": "CTO"},
        {"propertyName": "lifecycle_stage", "propertyValue": "customer"}]}))
    assert {r["propertyName"]: r["newValue"] for r in bulk["results"]} == {"job_title": "CTO",
                                                                            "lifecycle_stage": "customer"}
    hist = ok(api.get(f"{V11}/memory/manage/{rid}/history?propertyName=job_title&limit=2"))
    assert [e["propertyValue"] for e in hist["entries"]] == ["CTO", "Lead"] and hist["nextToken"]
    failed(api.patch(f"{V11}/memory/manage/{rid}", json={"propertyName": "job_title", "propertyValue": "X",
                                                         "expectedVersion": 1}), 409)

    mem = save(api, recordId=rid, content="Prefers calls on Fridays.", shape="freeform")
    mem_id = mem["memoryIds"][0]
    ok(api.delete(f"{V11}/memory/manage/{mem_id}"))
    assert mem_id not in {m["id"] for m in ok(api.get(f"{V11}/memory/manage/{rid}"))["freeformMemories"]}

    ok(api.delete(f"{V11}/memory/manage", json={"recordId": rid, "type": "contact"}))
    failed(api.get(f"{V11}/memory/manage/{rid}"), 404)
    ok(api.post(f"{V11}/memory/manage/cancel-deletion", json={"recordId": rid, "type": "contact"}))
    assert ok(api.get(f"{V11}/memory/manage/{rid}"))["properties"]["job_title"]["value"] == "CTO"


def test_manage_never_reaches_another_org(api: Any, other_api: Any) -> None:
    rid = ok(api.post("/api/v1/upsert", json={"email": "iso@x.io", "properties": {"job_title": "CEO"}}))["recordId"]
    failed(other_api.get(f"{V11}/memory/manage/{rid}"), 404)
    failed(other_api.patch(f"{V11}/memory/manage/{rid}", json={"propertyName": "job_title",
                                                                "propertyValue": "X"}), 404)
    failed(other_api.delete(f"{V11}/memory/manage", json={"recordId": rid}), 404)
    assert ok(api.get(f"{V11}/memory/manage/{rid}"))["properties"]["job_title"]["value"] == "CEO"


# --- guidelines, collections, smart guidelines -----------------------------------------------------
GUIDE = "Intro line.\n\n# Tone\nBe brief and direct.\n\n## Pricing\nNever discount more than 10%.\n"


def test_guidelines_crud_structure_section_and_history(api: Any) -> None:
    created = ok(api.post(f"{V11}/guidelines", json={"name": "Sales Playbook", "value": GUIDE, "tags": ["sales"],
                                                     "constraintLevel": "hard"}), 201)
    gid = created["id"]
    listed = ok(api.get(f"{V11}/guidelines"))
    assert listed["count"] == 1 and listed["actions"][0]["payload"] == {
        "name": "Sales Playbook", "value": GUIDE, "description": "", "tags": ["sales"],
        "governanceScope": {"alwaysOn": False, "triggerKeywords": []}}
    structure = ok(api.get(f"{V11}/guidelines/{gid}/structure"))
    assert structure["headers"] == ["Tone", "Pricing"]
    assert [(s["header"], s["level"]) for s in structure["sections"]] == [("", 0), ("Tone", 1), ("Pricing", 2)]
    section = ok(api.get(f"{V11}/guidelines/{gid}/section?header=pricing"))
    assert section["content"] == "## Pricing\nNever discount more than 10%."
    err = failed(api.get(f"{V11}/guidelines/{gid}/section?header=Legal"), 404)
    assert err["details"]["headers"] == ["Tone", "Pricing"]
    failed(api.get(f"{V11}/guidelines/{gid}/section"), 400)
    patched = ok(api.patch(f"{V11}/guidelines/{gid}", json={"value": GUIDE + "\n## Legal\nNo promises.\n"}))
    assert patched["version"] == 2 and patched["value"].endswith("No promises.\n")
    assert len(ok(api.get(f"{V11}/actions/{gid}/history"))["versions"]) == 2
    assert ok(api.get(f"{V11}/guidelines/{gid}"))["payload"]["name"] == "Sales Playbook"
    ok(api.delete(f"{V11}/guidelines/{gid}"))
    failed(api.get(f"{V11}/guidelines/{gid}"), 404)


def test_smart_guidelines_compiles_the_matching_guideline(api: Any) -> None:
    ok(api.post(f"{V11}/guidelines", json={"name": "Pricing policy", "value": "## Discounts\nNever discount "
                                                                              "more than 10% on annual plans."}), 201)
    ctx = ok(api.post(f"{V11}/ai/smart-guidelines", json={"message": "can I offer a discount on the annual plan?",
                                                           "mode": "fast"}))
    assert "Never discount" in ctx["compiledContext"] and ctx["mode"] == "fast"


def test_collections_list_create_update_history_delete(api: Any) -> None:
    listed = ok(api.get(f"{V11}/collections"))
    contact = next(c for c in listed["actions"] if c["payload"]["collectionName"] == "Contact")
    assert contact["id"] == contact["payload"]["collectionId"] and listed["count"] == len(listed["actions"])
    col = ok(api.post(f"{V11}/collections", json={"collectionName": "Deal Info", "entityType": "contact",
                                                  "properties": [{"propertyName": "budget", "type": "number",
                                                                  "description": "Approved budget"}]}), 201)
    cid = col["collectionId"]
    assert ok(api.patch(f"{V11}/collections/{cid}", json={"description": "Deal facts"}))["version"] == 2
    assert [v["version"] for v in ok(api.get(f"{V11}/collections/{cid}/history"))["versions"]] == [1, 2]
    assert ok(api.delete(f"{V11}/collections/{cid}"))["archived"] is True


# --- agents and prompt ------------------------------------------------------------------------------
def test_agents_list_get_and_run_without_a_model(api: Any) -> None:
    created = ok(api.post("/api/v1/agents", json={"name": "Cold Outreach Agent", "spec": {
        "instructions": [{"prompt": "Write to {{ recipientEmail }} at {{ company }}."}]}}), 201)
    agents = ok(api.get(f"{V11}/agents"))
    assert agents["count"] == 1 and agents["actions"][0]["id"] == created["id"] and agents["nextToken"] is None
    agent = ok(api.get(f"{V11}/agents/{created['id']}"))
    assert agent["payload"]["name"] == "Cold Outreach Agent"
    assert agent["payload"]["instructions"] == [{"prompt": "Write to {{ recipientEmail }} at {{ company }}."}]
    assert sorted(agent["expectedInputs"]) == ["company", "recipientEmail"]
    run = api.post(f"{V11}/agents/{created['id']}/run", json={"inputs": {"recipientEmail": "lead@company.com",
                                                                         "company": "Acme Corp"}})
    failed(run, 503, "llm_not_configured")
    failed(api.post(f"{V11}/prompt", json={"prompt": "Write a haiku."}), 503, "llm_not_configured")
    failed(api.get(f"{V11}/agents/agt_missing"), 404)


@pytest.mark.parametrize("path", ["/memory/save", "/memory/retrieve", "/memory/digest", "/guidelines"])
def test_v1_1_needs_a_key(api: Any, path: str) -> None:
    resp = api.client.post(V11 + path, json={}) if path != "/guidelines" else api.client.get(V11 + path)
    failed(resp, 401)
