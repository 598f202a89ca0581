"""003/004 ``search`` (``POST /api/v1/search``): filters, key-only, secondary-key and cross-type lookups.

Answer (SDK reference, n8n Slack template): ``data.totalMatched``, ``data.totalPages``, and ``data.records`` —
an object keyed by recordId whose values are ``{property: {value}}``.
"""

from __future__ import annotations

from tests.contract.conftest import Personize, prop


def test_search_filter_with_is_set_on_email(pz: Personize) -> None:
    pz.upsert({"plan_tier": "enterprise"}, type="Contact", email="big@acme.com")
    pz.upsert({"plan_tier": "starter"}, type="Contact", email="small@acme.com")
    # 003 "Filtered export — find all enterprise contacts", verbatim. email is a key: IS_SET must see it.
    data = pz.post("/search", {"type": "Contact", "returnRecords": True, "pageSize": 50, "groups": [{
        "conditions": [{"property": "plan_tier", "operator": "EQ", "value": "enterprise"},
                       {"property": "email", "operator": "IS_SET"}]}]})
    assert data["totalMatched"] == 1, data
    (props,) = data["records"].values()
    assert prop(props, "plan_tier") == "enterprise" and prop(props, "email") == "big@acme.com", props


def test_search_key_only_lookup(pz: Personize) -> None:
    pz.upsert({"job_title": "CTO"}, type="Contact", email="sarah@acme.com")
    records = pz.search_records(email="sarah@acme.com")
    assert [prop(p, "job_title") for p in records.values()] == ["CTO"], records


def test_search_custom_key_and_secondary_key_lookup(pz: Personize, student_type: None) -> None:
    pz.memorize("Student: Alice Chen, Computer Science.", type="Student", customKeyName="studentNumber",
                customKeyValue="S-2024-1234", email="alice@university.edu", collectionName="Student")
    by_key = pz.post("/search", {"type": "Student", "customKeyName": "studentNumber",
                                 "customKeyValue": "S-2024-1234", "returnRecords": True})
    by_email = pz.post("/search", {"type": "Student", "email": "alice@university.edu", "returnRecords": True})
    assert by_key["totalMatched"] == by_email["totalMatched"] == 1, (by_key, by_email)
    assert list(by_key["records"]) == list(by_email["records"])


def test_search_cross_type_by_email(pz: Personize, student_type: None) -> None:
    # 003 "Cross-type: find ALL records with this email across ALL entity types"
    pz.upsert({"job_title": "Engineer"}, type="Contact", email="john@acme.com")
    pz.memorize("Student: John, evening MBA.", customKeyName="studentNumber", customKeyValue="S-1",
                email="john@acme.com", collectionName="Student")
    data = pz.post("/search", {"email": "john@acme.com", "returnRecords": True})
    assert data["totalMatched"] == 2, data


def test_search_property_condition_on_stored_value(pz: Personize) -> None:
    pz.upsert({"linkedin_url": "https://linkedin.com/in/johndoe"}, type="Contact", email="john@acme.com")
    pz.upsert({"linkedin_url": "https://linkedin.com/in/other"}, type="Contact", email="other@acme.com")
    records = pz.search_records(type="Contact", groups=[{"conditions": [
        {"property": "linkedin_url", "operator": "EQ", "value": "https://linkedin.com/in/johndoe"}]}])
    assert [prop(p, "email") for p in records.values()] == ["john@acme.com"], records


def test_search_by_secondary_website_url_per_type_with_field_conditions(pz: Personize) -> None:
    # 004 "the secondary key pattern": contacts, tickets and deals found by the company URL
    acme = "https://acme.com"
    for email in ("a@acme.com", "b@acme.com"):
        pz.memorize(f"Contact {email} at Acme.", email=email, website_url=acme, collectionName="Contact")
    pz.memorize("Contact at Globex.", email="c@globex.com", website_url="https://globex.com",
                collectionName="Contact")
    pz.memorize("Ticket T-1: SSO broken.", customKeyName="ticketId", customKeyValue="T-1", website_url=acme,
                collectionName="SupportTicket")
    # 004 filters NEQ 'closed'; the allowed stage values are the org's schema's (memrelay's starter Deal:
    # qualified ... closed_won), so the closed deal here is 'closed_won' and the filter NEQ 'closed_won'.
    for deal, stage in (("D-1", "qualified"), ("D-2", "closed_won")):
        pz.upsert({"stage": stage}, type="Deal", customKeyName="dealId", customKeyValue=deal, website_url=acme)
    assert pz.post("/search", {"type": "Contact", "website_url": acme, "returnRecords": True})["totalMatched"] == 2
    assert pz.post("/search", {"type": "SupportTicket", "website_url": acme,
                               "returnRecords": True})["totalMatched"] == 1
    open_deals = pz.post("/search", {"type": "Deal", "website_url": acme, "returnRecords": True, "groups": [
        {"id": "open", "logic": "AND", "conditions": [{"field": "stage", "operator": "NEQ", "value": "closed_won"}]}]})
    assert open_deals["totalMatched"] == 1, open_deals
    (props,) = open_deals["records"].values()
    assert prop(props, "stage") == "qualified"


def test_search_numeric_gte_on_custom_type(pz: Personize, student_type: None) -> None:
    # SDK reference: search({ type: "Student", groups: [{ conditions: [{ property: "gpa", operator: "GTE",
    # value: 3.5 }] }] })
    for number, gpa in (("S-1", 3.8), ("S-2", 3.1)):
        pz.upsert({"gpa": gpa}, type="Student", customKeyName="studentNumber", customKeyValue=number)
    data = pz.post("/search", {"type": "Student", "returnRecords": True, "groups": [
        {"conditions": [{"property": "gpa", "operator": "GTE", "value": 3.5}]}]})
    assert data["totalMatched"] == 1, data


def test_search_pages_report_total_matched_and_total_pages(pz: Personize) -> None:
    for i in range(5):
        pz.upsert({"lifecycle_stage": "opportunity"}, type="Contact", email=f"p{i}@acme.com")
    seen: dict[str, object] = {}
    page, total_pages = 1, 1
    while page <= total_pages:  # the SDK reference's page loop, verbatim in spirit
        data = pz.post("/search", {"type": "Contact", "returnRecords": True, "pageSize": 2, "page": page,
                                   "groups": [{"conditions": [
                                       {"property": "lifecycle_stage", "operator": "EQ", "value": "opportunity"}]}]})
        assert data["totalMatched"] == 5 and data["totalPages"] == 3, data
        seen.update(data["records"])
        total_pages = data["totalPages"]
        page += 1
    assert len(seen) == 5
