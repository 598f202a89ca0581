"""003 ``memorizeBatch`` (``POST /api/v1/batch-memorize``, mapping + rows) and 004's ``memorizeBatch({items})``.

Batch memorize is asynchronous ("records land in ~1-2 minutes"); ``settle()`` drains the queue.
"""

from __future__ import annotations

from collections.abc import Callable

from tests.contract.conftest import Personize, contacts_collection, prop, texts


def test_collections_list_answers_actions_with_payload(pz: Personize) -> None:
    # SDK reference: collections.data?.actions ?? [] ; c.payload.collectionName / c.payload.collectionId
    data = pz.get("/collections")
    names = {a["payload"]["collectionName"] for a in data["actions"]}
    assert {"Contact", "Company"} <= names or {"Contacts", "Companies"} <= names, names
    assert all(a["payload"]["collectionId"] for a in data["actions"])


def test_memorize_batch_mapping_rows_writes_properties_and_extracts_only_flagged_fields(
        pz: Personize, settle: Callable[[], None], contact_fields: None) -> None:
    col_id, col_name = contacts_collection(pz)
    rows = [{"email": "ada@acme.com", "firstname": "Ada", "jobtitle": "CTO",
             "notes": "Ada wants SSO before the Q3 rollout.", "bio": "Ada collects vintage typewriters."},
            {"email": "bo@acme.com", "firstname": "Bo", "jobtitle": "CFO",
             "notes": "Bo asked for an annual invoice.", "bio": "Bo runs marathons."}]
    # 003 "Batch sync — per-property control", with real collection ids (003: "Collections are org-specific")
    pz.post("/batch-memorize", {
        "source": "Hubspot",
        "mapping": {"entityType": "contact", "email": "email", "runName": "hubspot-contact-sync",
                    "properties": {
                        "full_name": {"sourceField": "firstname", "collectionId": col_id,
                                      "collectionName": col_name, "extractMemories": False},
                        "job_title": {"sourceField": "jobtitle", "collectionId": col_id,
                                      "collectionName": col_name, "extractMemories": False},
                        "last_notes": {"sourceField": "notes", "collectionId": col_id,
                                       "collectionName": col_name, "extractMemories": True},
                        "bio": {"sourceField": "bio", "collectionId": col_id, "collectionName": col_name}}},
        "rows": rows})
    settle()
    ada = pz.search_records(type="Contact", email="ada@acme.com")
    (props,) = ada.values()
    assert prop(props, "job_title") == "CTO"
    recalled = texts(pz.post("/smart-recall", {"query": "what does Ada need before rollout?",
                                               "email": "ada@acme.com", "limit": 20})["results"])
    assert any("SSO" in t for t in recalled), recalled
    # extractMemories defaults to false: "stored as structured properties only — no memories"
    assert not any("typewriters" in t for t in recalled), recalled


def test_memorize_batch_dry_run_writes_nothing(pz: Personize, settle: Callable[[], None]) -> None:
    col_id, col_name = contacts_collection(pz)
    pz.post("/batch-memorize", {
        "source": "Hubspot", "dryRun": True,
        "mapping": {"entityType": "contact", "email": "email",
                    "properties": {"job_title": {"sourceField": "jobtitle", "collectionId": col_id,
                                                 "collectionName": col_name}}},
        "rows": [{"email": "dry@acme.com", "jobtitle": "CEO"}]})
    settle()
    assert pz.post("/search", {"email": "dry@acme.com", "returnRecords": True})["totalMatched"] == 0


def test_memorize_batch_tier_is_accepted(pz: Personize, settle: Callable[[], None]) -> None:
    col_id, col_name = contacts_collection(pz)
    pz.post("/batch-memorize", {
        "source": "HubSpot", "tier": "pro_fast",
        "mapping": {"entityType": "contact", "email": "email",
                    "properties": {"job_title": {"sourceField": "jobtitle", "collectionId": col_id,
                                                 "collectionName": col_name}}},
        "rows": [{"email": "tier@acme.com", "jobtitle": "VP Sales"}]})
    settle()
    (props,) = pz.search_records(email="tier@acme.com").values()
    assert prop(props, "job_title") == "VP Sales"


def test_memorize_batch_items_form_of_004_stores_each_entity_in_its_collection(
        pz: Personize, settle: Callable[[], None]) -> None:
    # 004: memorizeBatch({ items: [...] }) for contacts, companies, deals and tickets
    pz.post("/batch-memorize", {"items": [
        {"content": "Contact: Sarah Chen, VP Eng at Acme. Notes: evaluating SOC2 tooling.",
         "email": "sarah@acme.com", "website_url": "https://acme.com", "collectionName": "Contact",
         "extractMemories": True, "intelligence": "pro"},
        {"content": "Company: Acme. Industry: Fintech. ARR: 4M. Stack: Stripe, PostgreSQL.",
         "website_url": "https://acme.com", "collectionName": "Company", "extractMemories": True,
         "intelligence": "pro"},
        {"content": "Deal: Acme Expansion. Stage: negotiation. Value: $120000. Next step: legal review.",
         "customKeyName": "dealId", "customKeyValue": "D-1", "email": "sarah@acme.com",
         "website_url": "https://acme.com", "collectionName": "Deal", "extractMemories": True,
         "intelligence": "pro"},
        {"content": "Ticket #T-9: Webhook retries failing. Status: open. Severity: high.",
         "customKeyName": "ticketId", "customKeyValue": "T-9", "website_url": "https://acme.com",
         "email": "sarah@acme.com", "collectionName": "SupportTicket", "extractMemories": True,
         "intelligence": "pro"}]})
    settle()
    for type_, key in [("Contact", {"email": "sarah@acme.com"}), ("Company", {"website_url": "https://acme.com"}),
                       ("Deal", {"customKeyName": "dealId", "customKeyValue": "D-1"}),
                       ("SupportTicket", {"customKeyName": "ticketId", "customKeyValue": "T-9"})]:
        found = pz.post("/search", {"type": type_, "returnRecords": True, **key})
        assert found["totalMatched"] == 1, (type_, found)
    deal = pz.post("/smart-recall", {"query": "deal stage and next step", "type": "Deal",
                                     "customKeyName": "dealId", "customKeyValue": "D-1"})
    assert any("legal review" in t for t in texts(deal["results"])), deal
