"""The v1.1 surface as ``personize-sdk-reference.md`` lists it (``/api/v1.1/...``)."""

from __future__ import annotations

from collections.abc import Callable

from tests.contract.conftest import Personize, contacts_collection, prop, texts


def test_test_endpoint_resolves_the_key(pz11: Personize) -> None:
    data = pz11.get("/test")  # check.data.organizationId / userId / timestamp
    assert data["organizationId"] == pz11.org_id and data["userId"] and data["timestamp"], data


def test_me(pz11: Personize) -> None:
    data = pz11.get("/me")
    assert data["organization"]["id"] == pz11.org_id and "limits" in data["plan"], data


def test_memory_save_shortform_then_retrieve_and_digest(pz11: Personize) -> None:
    pz11.post("/memory/save", {"email": "lead@company.com", "speaker": "sales-call", "tags": ["meeting", "pricing"],
                               "content": "Meeting notes: discussed pricing; they need SSO in the Pro plan."})
    found = pz11.post("/memory/retrieve", {"email": "lead@company.com", "query": "what pricing concerns did they "
                                           "raise", "mode": "fast"})
    assert any("SSO" in t for t in texts(found["results"])), found
    digest = pz11.post("/memory/digest", {"email": "lead@company.com", "include_properties": True,
                                          "include_memories": True, "token_budget": 3000})
    assert "SSO" in digest["compiledContext"], digest


def test_memory_save_rejects_v1_skip_flags(pz11: Personize) -> None:
    # "Do not pass skipDualWrite / skipStorage / skipPropertySelection — v1.1 rejects them with 400"
    pz11.fails("POST", "/memory/save", {"email": "x@acme.com", "content": "x", "skipStorage": True}, 400)


def test_memory_save_custom_key_then_retrieve_by_it(pz11: Personize, student_type: None) -> None:
    pz11.post("/memory/save", {"type": "Student", "customKeyName": "studentNumber", "customKeyValue": "S-2024-1234",
                               "content": "Enrolled in Advanced AI course. GPA 3.8."})
    found = pz11.post("/memory/retrieve", {"type": "Student", "customKeyName": "studentNumber",
                                           "customKeyValue": "S-2024-1234", "query": "enrolled courses",
                                           "mode": "fast"})
    assert any("Advanced AI" in t for t in texts(found["results"])), found


def test_memory_digest_by_record_id_camel_case(pz11: Personize) -> None:
    pz11.post("/memory/save", {"website_url": "https://company.com", "tags": ["account"],
                               "content": "[ACCOUNT] First outreach to this company."})
    rid = pz11.at("/api/v1").record_id(website_url="https://company.com")
    digest = pz11.post("/memory/digest", {"recordId": rid, "type": "Company", "tokenBudget": 2000, "maxMemories": 10})
    assert "First outreach" in digest["compiledContext"], digest


def test_memory_import_with_extract_flag(pz11: Personize, settle: Callable[[], None]) -> None:
    col_id, col_name = contacts_collection(pz11.at("/api/v1"))  # "Step 0 — Get your real collectionId"
    pz11.post("/memory/import", {
        "source": "HubSpot",
        "mapping": {"entityType": "contact", "email": "email", "runName": "hubspot-sync-1",
                    "properties": {
                        "email": {"sourceField": "email", "collectionId": col_id, "collectionName": col_name},
                        "company": {"sourceField": "company", "collectionId": col_id, "collectionName": col_name},
                        "notes": {"sourceField": "notes", "collectionId": col_id, "collectionName": col_name,
                                  "extract": True}}},
        "rows": [{"email": "ann@acme.com", "company": "Acme", "notes": "Ann asked for a SOC2 report."}],
        "dryRun": False, "chunkSize": 1})
    settle()
    (props,) = pz11.at("/api/v1").search_records(email="ann@acme.com").values()
    assert prop(props, "company") == "Acme", props
    found = pz11.post("/memory/retrieve", {"email": "ann@acme.com", "query": "what did Ann ask for?", "mode": "fast"})
    assert any("SOC2" in t for t in texts(found["results"])), found


def test_memory_import_custom_entity_type(pz11: Personize, settle: Callable[[], None], student_type: None) -> None:
    cols = pz11.get("/collections")
    items = cols.get("actions") or cols.get("collections") or []
    col = next(i.get("payload", i) for i in items if i.get("payload", i).get("collectionName") == "Student")
    c = col["collectionId"]
    pz11.post("/memory/import", {
        "source": "University DB",
        "mapping": {"entityType": "Student", "customKeyName": "studentNumber", "customKey": "student_id",
                    "properties": {"full_name": {"sourceField": "name", "collectionId": c, "collectionName": "Student"},
                                   "gpa": {"sourceField": "gpa", "collectionId": c, "collectionName": "Student"}}},
        "rows": [{"student_id": "S-2024-1234", "name": "Alice Chen", "gpa": "3.8"},
                 {"student_id": "S-2024-5678", "name": "Bob Park", "gpa": "3.5"}]})
    settle()
    data = pz11.post("/memory/search", {"type": "Student", "returnRecords": True})
    assert data["totalMatched"] == 2, data
    alice = pz11.at("/api/v1").search_records(type="Student", customKeyName="studentNumber", customKeyValue="S-2024-1234")
    assert [prop(p, "full_name") for p in alice.values()] == ["Alice Chen"], alice


def test_memory_filter_by_property_v1_1_form(pz11: Personize) -> None:
    pz11.at("/api/v1").upsert({"lifecycle_stage": "opportunity", "job_title": "CTO"}, type="Contact",
                              email="lead@company.com")
    data = pz11.post("/memory/filter-by-property", {"email": "lead@company.com", "type": "Contact",
                                                    "propertyNames": ["lifecycle_stage", "job_title"]})
    # props.data.properties — array of { name, value, description, updatedAt }; props.data.recordId
    got = {p["name"]: p for p in data["properties"]}
    assert got["job_title"]["value"] == "CTO" and got["lifecycle_stage"]["value"] == "opportunity", data
    assert all({"description", "updatedAt"} <= set(p) for p in data["properties"]), data
    assert data["recordId"] == pz11.at("/api/v1").record_id(email="lead@company.com")


def test_memory_manage_get_by_record_id(pz11: Personize) -> None:
    pz11.post("/memory/save", {"email": "lead@company.com", "content": "Likes concise emails.", "tags": ["pref"]})
    rid = pz11.at("/api/v1").record_id(email="lead@company.com")
    data = pz11.get(f"/memory/manage/{rid}")
    # manage.get: results.data.memories / freeformMemories / systemIntro
    assert "concise emails" in str(data["freeformMemories"]), data


def test_guidelines_smart_guidelines_and_collections_on_v1_1(pz11: Personize) -> None:
    pz11.post("/guidelines", {"name": "Outbound Rules", "value": "Never mention competitors by name.",
                              "tags": ["outbound"]})
    ctx = pz11.post("/ai/smart-guidelines", {"message": "cold outbound email", "tags": ["outbound"],
                                             "mode": "fast"})
    assert "competitors" in ctx["compiledContext"], ctx
    cols = pz11.get("/collections")
    assert cols["actions"], cols
