"""Structured memory as Personize documents it (reference 003 memory API, 004 multi-entity keys, the SDK's
response schemas and its published templates): documented requests sent verbatim, documented answers and
effects asserted. Every answer is ``{"success": true, "data": ...}``."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api, make_api

pytestmark = pytest.mark.usefixtures("backend")


def ok(resp: Any, status: int = 200) -> Any:
    assert resp.status_code == status, resp.json
    assert resp.json["success"] is True
    return resp.json["data"]


def upsert(api: Api, properties: dict[str, Any], **keys: Any) -> dict[str, Any]:
    return ok(api.post("/api/v1/upsert", json={**keys, "properties": properties}))


def search(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    return ok(api.post("/api/v1/search", json=body))


def value(props: dict[str, Any], name: str) -> Any:
    return (props.get(name) or {}).get("value")


# --- search -------------------------------------------------------------------------------------------
def test_filtered_export_email_is_set_matches_records_with_an_email_key(api: Api) -> None:
    big = upsert(api, {"plan_tier": "enterprise"}, type="Contact", email="Big@Acme.com")
    upsert(api, {"plan_tier": "starter"}, type="Contact", email="small@acme.com")
    keyless = upsert(api, {"plan_tier": "enterprise"}, type="Contact", customKeyName="crm_id",
                     customKeyValue="c-9")
    # 003 "Filtered export — find all enterprise contacts", verbatim
    data = search(api, {"type": "Contact", "returnRecords": True, "pageSize": 50, "groups": [{"conditions": [
        {"property": "plan_tier", "operator": "EQ", "value": "enterprise"},
        {"property": "email", "operator": "IS_SET"}]}]})
    assert data["totalMatched"] == 1 and data["recordIds"] == [big["recordId"]]
    props = data["records"][big["recordId"]]
    assert value(props, "plan_tier") == "enterprise" and value(props, "email") == "big@acme.com"
    unset = search(api, {"type": "Contact", "groups": [{"conditions": [
        {"property": "email", "operator": "IS_NOT_SET"}]}]})
    assert unset["recordIds"] == [keyless["recordId"]]


def test_search_answer_carries_the_documented_keys(api: Api) -> None:
    ids = [upsert(api, {"first_name": n, "company": "Acme"}, type="Contact", email=f"{n}@acme.com")["recordId"]
           for n in ("ann", "bob", "cy")]
    data = search(api, {"type": "Contact", "returnRecords": True, "pageSize": 2})
    assert data["totalMatched"] == 3 and data["totalPages"] == 2 and data["page"] == 1 and data["pageSize"] == 2
    assert data["recordIds"] == ids[:2] and list(data["records"]) == ids[:2]
    contacts = ok(api.get("/api/v1/collections?type=contact"))["collections"]
    contact_collection = next(c for c in contacts if c["collectionName"] == "Contact")
    cell = data["records"][ids[0]]["company"]
    assert cell == {"value": "Acme", "collectionId": contact_collection["collectionId"], "collectionName": "Contact"}
    assert data["crmKeys"][ids[0]] == {"type": "contact", "email": "ann@acme.com"}
    assert [r["recordId"] for r in data["results"]] == ids[:2]  # memrelay's rendered records
    page2 = search(api, {"type": "Contact", "page": 2, "pageSize": 2})
    assert page2["recordIds"] == ids[2:] and page2["totalPages"] == 2
    bare = search(api, {"type": "Contact", "returnRecords": False})
    assert bare["recordIds"] == ids and "records" not in bare


def test_conditions_accept_field_and_keys_are_searchable_as_properties(api: Api) -> None:
    acme = "https://acme.com"
    open_deal = upsert(api, {"stage": "qualified"}, type="Deal", customKeyName="dealId", customKeyValue="D-100",
                       email="sarah@acme.com", website_url=acme)
    upsert(api, {"stage": "closed_won"}, type="Deal", customKeyName="dealId", customKeyValue="D-101",
           email="sarah@acme.com", website_url=acme)
    upsert(api, {"stage": "qualified"}, type="Deal", customKeyName="dealId", customKeyValue="D-200",
           website_url="https://other.io")
    # 004 "Find all open deals for this company", verbatim (``field``, not ``property``)
    data = search(api, {"type": "Deal", "website_url": acme, "returnRecords": True, "groups": [{
        "id": "open", "logic": "AND", "conditions": [{"field": "stage", "operator": "NEQ", "value": "closed_won"}]}]})
    assert data["recordIds"] == [open_deal["recordId"]]
    # a custom key and website_url as conditions
    by_key = search(api, {"type": "Deal", "groups": [{"conditions": [
        {"field": "dealId", "operator": "EQ", "value": "D-100"}]}]})
    assert by_key["recordIds"] == [open_deal["recordId"]]
    assert value(by_key["records"][open_deal["recordId"]], "dealId") == "D-100"
    by_url = search(api, {"type": "Deal", "groups": [{"conditions": [
        {"property": "website_url", "operator": "EQ", "value": "WWW.Acme.com/"}]}]})
    assert by_url["totalMatched"] == 2
    # 004 names types as their collections: type 'SupportTicket' is the type of the SupportTicket collection
    ticket = upsert(api, {"severity": "High"}, type="SupportTicket", customKeyName="ticketId",
                    customKeyValue="T-1", website_url=acme)
    tickets = search(api, {"type": "SupportTicket", "website_url": acme, "returnRecords": True})
    assert tickets["recordIds"] == [ticket["recordId"]] and ticket["type"] == "ticket"
    unknown = api.post("/api/v1/search", json={"type": "Deal", "groups": [{"conditions": [
        {"field": "colour", "operator": "EQ", "value": "red"}]}]})
    assert unknown.status_code == 422 and unknown.json["success"] is False


def test_filter_by_property_answers_matched_properties_and_total_matched(api: Api) -> None:
    rec = upsert(api, {"lifecycle_stage": "customer", "first_name": "Ann"}, type="Contact", email="ann@acme.com")
    upsert(api, {"lifecycle_stage": "lead"}, type="Contact", email="bob@acme.com")
    data = ok(api.post("/api/v1/memory/filter-by-property", json={
        "conditions": [{"propertyName": "lifecycle_stage", "operator": "equals", "value": "customer"},
                       {"propertyName": "email", "operator": "exists"}], "logic": "AND", "limit": 100}))
    assert data["totalMatched"] == 1 and data["nextToken"] is None
    (row,) = data["records"]
    assert row["recordId"] == rec["recordId"] and row["type"] == "contact"
    assert row["matchedProperties"] == {"lifecycle_stage": "customer", "email": "ann@acme.com"}
    assert isinstance(row["lastUpdatedAt"], int) and row["lastUpdatedAt"] > 0


# --- update, bulk update, history ---------------------------------------------------------------------
def test_update_answers_previous_and_new_value(api: Api) -> None:
    rec = upsert(api, {"company_name": "Acme"}, type="contact", email="sarah@acme.com")
    # 003 "Update a single property", verbatim
    data = ok(api.post("/api/v1/memory/update", json={"recordId": rec["recordId"], "type": "contact",
                                                      "propertyName": "company_name", "propertyValue": "Acme Corp"}))
    assert data["previousValue"] == "Acme" and data["newValue"] == "Acme Corp"
    assert data["version"] == rec["version"] + 1 and data["stores"]["snapshot"] == "updated"
    again = ok(api.post("/api/v1/memory/update", json={"recordId": rec["recordId"], "propertyName": "company_name",
                                                       "propertyValue": "Acme Corp"}))
    assert again["previousValue"] == again["newValue"] == "Acme Corp" and again["stores"]["snapshot"] == "skipped"
    pushed = ok(api.post("/api/v1/memory/update", json={"recordId": rec["recordId"], "propertyName": "pain_points",
                                                        "arrayPush": {"items": ["slow audits"], "unique": True}}))
    assert pushed["previousValue"] is None and pushed["newValue"] == ["slow audits"]


def test_bulk_update_accepts_updates_and_answers_per_property_results(api: Api) -> None:
    rec = upsert(api, {"company_name": "Acme"}, type="contact", email="sarah@acme.com")
    # 003 "Bulk Update", verbatim (deal_stage is a property of Personize's sales-contact schema)
    data = ok(api.post("/api/v1/memory/bulk-update", json={
        "recordId": rec["recordId"], "type": "contact", "expectedVersion": rec["version"],
        "updates": [{"propertyName": "company_name", "propertyValue": "Acme Corp"},
                    {"propertyName": "deal_stage", "propertyValue": "Closed Won"}]}))
    assert data["results"] == [
        {"propertyName": "company_name", "previousValue": "Acme", "newValue": "Acme Corp", "status": "updated",
         "changed": True},
        {"propertyName": "deal_stage", "previousValue": None, "newValue": "Closed Won", "status": "updated",
         "changed": True}]
    assert data["version"] == rec["version"] + 1
    stale = api.post("/api/v1/memory/bulk-update", json={
        "recordId": rec["recordId"], "expectedVersion": rec["version"],
        "updates": [{"propertyName": "company_name", "propertyValue": "Other"}]})
    assert stale.status_code == 409 and stale.json["success"] is False
    older = ok(api.post("/api/v1/memory/bulk-update", json={
        "recordId": rec["recordId"], "sourceTimestamp": "2001-01-01T00:00:00Z",
        "updates": [{"propertyName": "company_name", "propertyValue": "Old Name"}]}))
    assert older["results"][0]["status"] == "failed" and older["results"][0]["newValue"] == "Acme Corp"
    props = search(api, {"email": "sarah@acme.com"})["records"][rec["recordId"]]
    assert value(props, "company_name") == "Acme Corp" and value(props, "deal_stage") == "Closed Won"
    neither = api.post("/api/v1/memory/bulk-update", json={"recordId": rec["recordId"], "updates": []})
    assert neither.status_code == 422


def test_property_history_answers_entries_and_honours_limit(api: Api) -> None:
    rec = upsert(api, {"deal_stage": "Discovery"}, type="contact", email="sarah@acme.com")
    for stage in ("Qualification", "Proposal"):
        ok(api.post("/api/v1/memory/update", json={"recordId": rec["recordId"], "propertyName": "deal_stage",
                                                   "propertyValue": stage}))
    upsert(api, {"job_title": "CTO"}, email="sarah@acme.com")
    # 003 "Property History", verbatim
    first = ok(api.post("/api/v1/memory/property-history", json={
        "recordId": rec["recordId"], "propertyName": "deal_stage", "limit": 2}))
    assert [e["propertyValue"] for e in first["entries"]] == ["Proposal", "Qualification"]
    entry = first["entries"][0]
    assert entry["propertyName"] == "deal_stage" and entry["entryId"] and entry["createdAt"]
    assert entry["collectionName"] == "Contact" and entry["updatedBy"] and entry["source"] == "api"
    assert first["nextToken"]
    rest = ok(api.post("/api/v1/memory/property-history", json={
        "recordId": rec["recordId"], "propertyName": "deal_stage", "limit": 2, "nextToken": first["nextToken"]}))
    assert [e["propertyValue"] for e in rest["entries"]] == ["Discovery"] and rest["nextToken"] is None
    every = ok(api.post("/api/v1/memory/property-history", json={"recordId": rec["recordId"]}))
    assert {e["propertyName"] for e in every["entries"]} == {"deal_stage", "job_title"} and len(every["items"]) == 4
    too_many = api.post("/api/v1/memory/property-history", json={"recordId": rec["recordId"], "limit": 501})
    assert too_many.status_code == 400


# --- entity types --------------------------------------------------------------------------------------
def test_entity_types_by_id_get_update_archive_restore(api: Api) -> None:
    types = ok(api.get("/api/v1/entities"))  # 003: types.data -> EntityTypeResponse[]
    contact = next(t for t in types if t["slug"] == "contact")
    assert contact["label"] == contact["name"] == "Contact" and contact["pluralLabel"] == "Contacts"
    assert contact["primaryKeyField"] == "email" and contact["isSystem"] is True and contact["status"] == "Active"
    made = ok(api.post("/api/v1/entities", json={"name": "Lead_Source", "primaryKeyField": "sourceId"}), 201)
    assert made["label"] == "Lead Source" and made["pluralLabel"] == "Lead Sources"
    assert ok(api.get(f"/api/v1/entities/{made['id']}")) == made
    assert ok(api.get("/api/v1/entities/LEAD_SOURCE"))["id"] == made["id"]  # by name, case-insensitively
    # 003 "Update label and icon", verbatim; slug and isSystem are silently ignored
    changed = ok(api.patch(f"/api/v1/entities/{made['id']}", json={
        "name": "Lead", "pluralLabel": "Leads", "icon": "user-plus", "color": "#4F46E5",
        "identifierColumn": "source_name", "slug": "hacked", "isSystem": True}))
    assert (changed["label"], changed["pluralLabel"], changed["icon"], changed["color"]) == \
        ("Lead", "Leads", "user-plus", "#4F46E5")
    assert changed["identifierColumn"] == "source_name" and changed["name"] == "Lead"  # 003: name = label
    assert changed["slug"] == "lead_source" and changed["isSystem"] is False
    assert ok(api.get(f"/api/v1/entities/{made['id']}"))["label"] == "Lead"
    assert ok(api.get("/api/v1/entities/LEAD"))["id"] == made["id"]  # by its display label too
    # archive (DELETE), then restore with status: 'Active'
    assert ok(api.delete(f"/api/v1/entities/{made['id']}"))["status"] == "Archived"
    listed = [t["slug"] for t in ok(api.get("/api/v1/entities"))]
    assert "contact" in listed and "lead_source" not in listed
    refused = api.post("/api/v1/upsert", json={"type": "lead_source", "customKeyName": "sourceId",
                                               "customKeyValue": "s1", "properties": {}})
    assert refused.status_code == 422
    assert ok(api.patch(f"/api/v1/entities/{made['id']}", json={"status": "Active"}))["status"] == "Active"
    assert ok(api.post("/api/v1/entities/lead_source/archive"))["archived"] is True
    assert ok(api.post(f"/api/v1/entities/{made['id']}/restore"))["archived"] is False


def test_entity_type_bad_input(api: Api, app: Any, engine: Any) -> None:
    contact_id = next(t["id"] for t in ok(api.get("/api/v1/entities")) if t["slug"] == "contact")
    system = api.delete(f"/api/v1/entities/{contact_id}")
    assert system.status_code == 403 and system.json["success"] is False
    assert api.patch("/api/v1/entities/contact", json={"status": "Archived"}).status_code == 403
    unknown = api.get("/api/v1/entities/et_nope")
    assert unknown.status_code == 422 and "contact" in unknown.json["error"]["details"]["known"]
    assert api.patch("/api/v1/entities/nope", json={"icon": "x"}).status_code == 422
    # the primary key field of a type that has records never changes under them
    upsert(api, {}, type="contact", email="a@b.io")
    moved = api.patch("/api/v1/entities/contact", json={"primaryKeyField": "phone"})
    assert moved.status_code == 409 and moved.json["error"]["details"]["primaryKeyField"] == "email"
    ok(api.post("/api/v1/entities", json={"name": "Student"}), 201)
    rekeyed = ok(api.patch("/api/v1/entities/student", json={"primaryKeyField": "studentNumber"}))
    assert rekeyed["primaryKeyField"] == "studentNumber"
    writer = make_api(app, engine, scopes=("read", "write"))  # 003: update and archive are admin only
    assert writer.patch("/api/v1/entities/contact", json={"icon": "x"}).status_code == 403
    assert writer.delete("/api/v1/entities/contact").status_code == 403
    assert writer.get("/api/v1/entities/student").status_code == 422  # another org's type is not visible


# --- me --------------------------------------------------------------------------------------------------
def test_me_answers_the_real_limits_of_this_deployment(app: Any, engine: Any, settings: Any) -> None:
    api = make_api(app, engine, rate_limit=5)
    me = ok(api.get("/api/v1/me"))
    limits = me["plan"]["limits"]
    assert limits["maxApiCallsPerMinute"] == 5 and limits["maxApiCallsPerMonth"] is None
    assert limits["maxRequestBytes"] == settings.max_request_bytes
    assert limits["llmConfigured"] is settings.llm_configured
    assert limits["llmMonthlyBudgetUsd"] == settings.llm_monthly_budget_usd
    assert limits["batchMemorizeMaxRows"] > 0 and limits["searchMaxPageSize"] == 500
    assert limits["softDeleteRecoveryDays"] == settings.soft_delete_days
    assert me["organization"]["id"] == api.org_id and me["key"]["scopes"] == ["read", "write", "admin"]
    # the limits are the ones enforced: the 6th request of the minute is refused, the page size too
    statuses = [api.get("/api/v1/me").status_code for _ in range(5)]
    assert statuses[:4] == [200] * 4 and statuses[4] == 429
    default = make_api(app, engine)
    assert ok(default.get("/api/v1/me"))["plan"]["limits"]["maxApiCallsPerMinute"] == settings.rate_limit_per_minute
    too_big = default.post("/api/v1/search", json={"pageSize": limits["searchMaxPageSize"] + 1})
    assert too_big.status_code == 400
    huge = default.post("/api/v1/search", data=b"{" + b" " * limits["maxRequestBytes"] + b"}",
                        headers={"Content-Type": "application/json"})
    assert huge.status_code == 413


# --- standard schemas -----------------------------------------------------------------------------------
HUBSPOT_ROWS = [  # what Personize's n8n HubSpot template builds from HubSpot contacts
    {"email": "ann@acme.com", "firstname": "Ann", "lastname": "Lee", "phone": "+1 555 0100",
     "company": "Acme", "jobtitle": "CTO", "mobilephone": "+1 555 0199"},
    {"email": "bob@globex.io", "firstname": "Bob", "lastname": "Ray", "phone": "", "company": "Globex",
     "jobtitle": "VP Sales", "mobilephone": ""},
]


def hubspot_mapping(collection_id: str) -> dict[str, Any]:
    """The mapping of Personize's ``hubspot-to-personize.json`` (collection ids filled in, as its TODO says)."""
    col = {"collectionId": collection_id, "collectionName": "Contacts Standard Schema"}
    return {"entityType": "contact", "email": "email", "runName": "n8n-hubspot-sync-1", "properties": {
        "email": {"sourceField": "email", **col}, "first_name": {"sourceField": "firstname", **col},
        "last_name": {"sourceField": "lastname", **col}, "phone": {"sourceField": "phone", **col},
        "mobile_phone": {"sourceField": "mobilephone", **col}, "company": {"sourceField": "company", **col},
        "job_title": {"sourceField": "jobtitle", **col}}}


def test_starter_collections_carry_personize_standard_property_names(api: Api, run_jobs: Any) -> None:
    collections = ok(api.get("/api/v1/collections"))["collections"]
    by_name = {c["collectionName"]: {p["propertyName"]: p for p in c["properties"]} for c in collections}
    contact, company, ticket = by_name["Contact"], by_name["Company"], by_name["SupportTicket"]
    for name in ("company", "mobile_phone", "full_name", "first_name", "last_name", "phone", "job_title", "email",
                 "linkedin_url", "pain_points", "lead_status", "company_name"):  # company_name: memrelay's too
        assert name in contact, name
    assert contact["pain_points"]["type"] == "array" and contact["pain_points"]["updateMode"] == "append"
    assert contact["lead_status"]["options"] == ["New", "Contacted", "Qualified", "Nurturing", "Customer", "Churned"]
    assert contact["linkedin_url"]["description"].startswith("The contact's LinkedIn profile URL.")
    for name in ("company_name", "website", "technology_stack", "account_health", "name", "domain"):
        assert name in company, name
    assert {"severity", "issue_category", "resolution_status", "subject"} <= set(ticket)
    contact_id = next(c["collectionId"] for c in collections if c["collectionName"] == "Contact")
    body = {"source": "Hubspot", "mapping": hubspot_mapping(contact_id), "rows": HUBSPOT_ROWS, "chunkSize": 1}
    dry = ok(api.post("/api/v1/batch-memorize", json={**body, "dryRun": True}))
    assert dry, dry
    queued = api.post("/api/v1/batch-memorize", json=body)
    assert queued.status_code in (200, 202), queued.json
    run_jobs()
    ann = search(api, {"email": "ann@acme.com"})
    props = ann["records"][ann["recordIds"][0]]
    assert (value(props, "company"), value(props, "mobile_phone"), value(props, "job_title")) == \
        ("Acme", "+1 555 0199", "CTO")
    # the Slack template's reading of search: p.email?.value, p.company?.value, p.first_name?.value
    exported = search(api, {"type": "Contact", "returnRecords": True, "pageSize": 50, "includeMemories": False})
    lines = sorted(f"{value(p, 'first_name')} ({value(p, 'email')}) — {value(p, 'company')}"
                   for p in exported["records"].values())
    assert exported["totalMatched"] == 2 and lines == ["Ann (ann@acme.com) — Acme", "Bob (bob@globex.io) — Globex"]
