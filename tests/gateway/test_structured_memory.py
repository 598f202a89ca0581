"""Structured memory through the API, on SQLite and (in CI) PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from memrelay.engine.stores.db.models import AuditEntry, OutboxEvent

pytestmark = pytest.mark.usefixtures("backend")


def upsert(api, **body):
    r = api.post("/api/v1/upsert", json=body)
    assert r.status_code == 200 and r.json["success"] is True, r.json
    return r.json["data"]


# --- collections and entity types --------------------------------------------------------------
def test_starter_collections_and_versioned_changes(api):
    names = {c["collectionName"] for c in api.get("/api/v1/collections").json["data"]["collections"]}
    assert {"Contact", "Company", "Deal", "SupportTicket"} <= names
    contact = next(c for c in api.get("/api/v1/collections").json["data"]["collections"] if c["collectionName"] == "Contact")
    assert all(p["description"] for p in contact["properties"])

    r = api.post("/api/v1/collections", json={"collectionName": "Signals", "entityType": "contact", "properties": [
        {"propertyName": "nps", "type": "number", "description": "Net promoter score"}]})
    assert r.status_code == 201 and r.json["data"]["version"] == 1
    cid = r.json["data"]["collectionId"]
    r = api.patch(f"/api/v1/collections/{cid}", json={"properties": [
        {"propertyName": "nps", "type": "number", "description": "Net promoter score 0-10"},
        {"propertyName": "plan", "type": "options", "options": ["free", "pro"], "description": "Plan"}]})
    assert r.status_code == 200 and r.json["data"]["version"] == 2
    hist = api.get(f"/api/v1/collections/{cid}/history?mode=diff").json["data"]["versions"]
    assert [v["version"] for v in hist] == [1, 2]
    assert '+      "propertyName": "plan",' in hist[1]["diff"]
    assert api.get(f"/api/v1/collections/{cid}/history?mode=bogus").status_code == 400
    assert api.post("/api/v1/collections", json={"collectionName": "Signals"}).status_code == 409
    bad = api.post("/api/v1/collections", json={"collectionName": "Bad", "properties": [
        {"propertyName": "x", "type": "options"}]})
    assert bad.status_code == 422 and bad.json["error"]["details"]["property"] == "x"
    assert api.delete(f"/api/v1/collections/{cid}").json["data"]["archived"] is True


def test_entity_types_archive_restore_and_system_types(api):
    assert api.post("/api/v1/entities", json={"name": "partner"}).status_code == 201
    assert api.post("/api/v1/entities/partner/archive").json["data"]["archived"] is True
    slugs = [e["slug"] for e in api.get("/api/v1/entities").json["data"]]  # 003: types.data is the array
    assert "contact" in slugs and "partner" not in slugs
    assert api.post("/api/v1/entities/partner/restore").json["data"]["archived"] is False
    r = api.post("/api/v1/entities/contact/archive")
    assert r.status_code == 403 and r.json["error"]["code"] == "forbidden"
    assert api.post("/api/v1/entities/company/archive").status_code == 403


# --- identity --------------------------------------------------------------------------------------
def test_any_key_finds_the_record_and_urls_are_normalised(api):
    a = upsert(api, type="company", website_url="https://WWW.Acme.com/", properties={"name": "Acme"},
               customKeyName="hubspot_id", customKeyValue="901")
    b = upsert(api, type="company", website_url="acme.com", properties={"industry": "Software"})
    assert a["recordId"] == b["recordId"] and a["created"] and not b["created"]
    c = upsert(api, type="company", customKeyName="hubspot_id", customKeyValue="901", properties={"city": "Berlin"})
    assert c["recordId"] == a["recordId"]
    rec = api.post("/api/v1/search", json={"type": "company", "website_url": "http://acme.com"}).json["data"]
    assert rec["total"] == 1
    props = rec["results"][0]["properties"]
    assert {k: v["value"] for k, v in props.items()} == {"name": "Acme", "industry": "Software", "city": "Berlin"}
    assert rec["results"][0]["keys"]["website_url"] == "acme.com"


def test_cross_type_search_by_email_and_contact_found_from_company_url(api):
    contact = upsert(api, type="contact", email="Ada@Acme.com", website_url="https://acme.com",
                     properties={"first_name": "Ada"})
    company = upsert(api, type="company", website_url="acme.com", properties={"name": "Acme"})
    ticket = upsert(api, type="ticket", email="ada@acme.com", customKeyName="zendesk_id", customKeyValue="t1",
                    properties={"subject": "Login fails"})
    by_email = api.post("/api/v1/search", json={"email": "ada@acme.com"}).json["data"]
    assert {r["recordId"] for r in by_email["results"]} == {contact["recordId"], ticket["recordId"]}
    by_url = api.post("/api/v1/search", json={"website_url": "www.acme.com/"}).json["data"]
    assert {r["recordId"] for r in by_url["results"]} == {contact["recordId"], company["recordId"]}


def test_missing_identifier_is_400_listing_accepted(api):
    r = api.post("/api/v1/upsert", json={"type": "contact", "properties": {"first_name": "X"}})
    assert r.status_code == 400
    assert "email" in r.json["error"]["details"]["accepted"]


# --- properties ------------------------------------------------------------------------------------
def test_typed_validation_names_the_property(api):
    r = api.post("/api/v1/upsert", json={"email": "a@x.io", "properties": {"lifecycle_stage": "astronaut"}})
    assert r.status_code == 422 and r.json["error"]["details"]["property"] == "lifecycle_stage"
    assert "customer" in r.json["error"]["details"]["allowed"]
    r = api.post("/api/v1/upsert", json={"website_url": "x.io", "properties": {"employee_count": "many"}})
    assert r.status_code == 422 and "employee_count" in r.json["error"]["message"]
    r = api.post("/api/v1/upsert", json={"email": "a@x.io", "properties": {"shoe_size": 42}})
    assert r.status_code == 422 and "shoe_size" in r.json["error"]["details"]["unknown"]
    assert "job_title" in r.json["error"]["details"]["known"]
    ok = upsert(api, website_url="x.io", properties={"employee_count": "1,200", "founded": "2019-05-01"})
    rec = api.post("/api/v1/recall", json={"type": "company", "website_url": "x.io"})
    if rec.status_code == 200:
        assert rec.json["data"]["properties"]["employee_count"]["value"] == 1200
    assert ok["updated"] == ["employee_count", "founded"]


def test_append_mode_and_array_ops(api):
    upsert(api, email="b@x.io", properties={"interests": ["pricing", "sso"]})
    upsert(api, email="b@x.io", properties={"interests": ["sso", "audit logs"]})
    get = lambda: api.post("/api/v1/search", json={"email": "b@x.io"}).json["data"]["results"][0]["properties"]  # noqa: E731
    assert get()["interests"]["value"] == ["pricing", "sso", "audit logs"]
    r = api.post("/api/v1/memory/update", json={"email": "b@x.io", "propertyName": "interests",
                                                "arrayPush": {"items": ["sso", "api"], "unique": True}})
    assert r.status_code == 200, r.json
    assert get()["interests"]["value"] == ["pricing", "sso", "audit logs", "api"]
    api.post("/api/v1/memory/update", json={"email": "b@x.io", "propertyName": "interests",
                                            "arrayRemove": {"items": ["pricing"]}})
    assert get()["interests"]["value"] == ["sso", "audit logs", "api"]
    api.post("/api/v1/collections", json={"collectionName": "Seats", "entityType": "contact", "properties": [
        {"propertyName": "seats", "type": "array", "description": "licensed seats"}]})
    upsert(api, email="b@x.io", properties={"seats": [{"user": "u1", "role": "viewer"}, {"user": "u2", "role": "x"}]})
    r = api.post("/api/v1/memory/update", json={"email": "b@x.io", "propertyName": "seats",
                                                "arrayPatch": {"match": {"user": "u1"}, "set": {"role": "admin"}}})
    assert r.status_code == 200
    assert get()["seats"]["value"] == [{"user": "u1", "role": "admin"}, {"user": "u2", "role": "x"}]
    r = api.post("/api/v1/memory/update", json={"email": "b@x.io", "propertyName": "job_title",
                                                "arrayPush": {"items": ["x"]}})
    assert r.status_code == 422


def test_expected_version_conflict_is_409_with_current_version(api):
    v1 = upsert(api, email="c@x.io", properties={"job_title": "Engineer"})["version"]
    ok = api.post("/api/v1/memory/update", json={"email": "c@x.io", "propertyName": "job_title",
                                                 "propertyValue": "Lead", "expectedVersion": v1})
    assert ok.status_code == 200 and ok.json["data"]["version"] == v1 + 1
    stale = api.post("/api/v1/memory/update", json={"email": "c@x.io", "propertyName": "job_title",
                                                    "propertyValue": "CTO", "expectedVersion": v1})
    assert stale.status_code == 409 and stale.json["error"]["details"]["currentVersion"] == v1 + 1


def test_older_source_timestamp_never_overwrites_and_is_kept_in_history(api):
    upsert(api, email="d@x.io", properties={"job_title": "VP Sales"}, source="hubspot",
           sourceEventId="e2", sourceTimestamp="2026-05-02T10:00:00Z")
    r = upsert(api, email="d@x.io", properties={"job_title": "Sales Rep"}, source="hubspot",
               sourceEventId="e1", sourceTimestamp="2026-05-01T10:00:00Z")
    assert r["stale"] == ["job_title"] and r["updated"] == []
    rec = api.post("/api/v1/search", json={"email": "d@x.io"}).json["data"]["results"][0]
    jt = rec["properties"]["job_title"]
    assert jt["value"] == "VP Sales" and jt["sourceEventId"] == "e2" and jt["source"] == "hubspot"
    assert jt["sourceTimestamp"].startswith("2026-05-02")
    hist = api.post("/api/v1/memory/property-history", json={"email": "d@x.io", "propertyName": "job_title"}).json["data"]
    assert [(h["value"], h["applied"]) for h in hist["items"]] == [("Sales Rep", False), ("VP Sales", True)]
    assert hist["items"][0]["reason"] == "older_source_timestamp" and hist["total"] == 2
    page = api.post("/api/v1/memory/property-history", json={"email": "d@x.io", "page": 2, "pageSize": 1}).json["data"]
    assert len(page["items"]) == 1 and page["items"][0]["value"] == "VP Sales" and not page["hasMore"]


def test_bulk_update_is_atomic(api):
    upsert(api, email="e@x.io", properties={"first_name": "Eve"})
    r = api.post("/api/v1/memory/bulk-update", json={"email": "e@x.io", "properties": {
        "first_name": "Eva", "lifecycle_stage": "not-a-stage"}})
    assert r.status_code == 422
    rec = api.post("/api/v1/search", json={"email": "e@x.io"}).json["data"]["results"][0]
    assert rec["properties"]["first_name"]["value"] == "Eve"  # nothing half-written
    r = api.post("/api/v1/memory/bulk-update", json={"email": "e@x.io", "properties": {
        "first_name": "Eva", "lifecycle_stage": "customer"}})
    assert r.status_code == 200 and sorted(r.json["data"]["updated"]) == ["first_name", "lifecycle_stage"]
    assert api.post("/api/v1/memory/bulk-update", json={"email": "nobody@x.io", "properties": {
        "first_name": "N"}}).status_code == 404


# --- search ------------------------------------------------------------------------------------------
@pytest.fixture
def deals(api):
    rows = [("d1", "Alpha", 5000, "qualified", "2026-01-10", True), ("d2", "Beta", 250000, "closed_won", "2026-03-01", False),
            ("d3", "Gamma", 1000000, "closed_won", "2026-06-30", True), ("d4", "Delta deal", 42, "closed_lost", None, None)]
    for key, name, amount, stage, close, _ in rows:
        props = {"deal_name": name, "amount": amount, "stage": stage}
        if close:
            props["close_date"] = close
        upsert(api, type="deal", customKeyName="crm_id", customKeyValue=key, properties=props)
    return rows


def _names(resp):
    rows = resp["results"] if "results" in resp else resp["records"]  # search: results; filter-by-property: records
    return [r["properties"]["deal_name"]["value"] for r in rows]


@pytest.mark.parametrize(("cond", "expected"), [
    ({"property": "amount", "operator": "GT", "value": 5000}, ["Beta", "Gamma"]),
    ({"property": "amount", "operator": "GTE", "value": 5000}, ["Alpha", "Beta", "Gamma"]),
    ({"property": "amount", "operator": "LT", "value": 5000}, ["Delta deal"]),
    ({"property": "amount", "operator": "LTE", "value": "250000"}, ["Alpha", "Beta", "Delta deal"]),
    ({"property": "stage", "operator": "EQ", "value": "Closed_Won"}, ["Beta", "Gamma"]),
    ({"property": "stage", "operator": "NEQ", "value": "closed_won"}, ["Alpha", "Delta deal"]),
    ({"property": "deal_name", "operator": "CONTAINS", "value": "ta"}, ["Beta", "Delta deal"]),
    ({"property": "stage", "operator": "IN", "value": ["qualified", "closed_lost"]}, ["Alpha", "Delta deal"]),
    ({"property": "close_date", "operator": "IS_SET"}, ["Alpha", "Beta", "Gamma"]),
    ({"property": "close_date", "operator": "IS_NOT_SET"}, ["Delta deal"]),
    ({"property": "close_date", "operator": "GT", "value": "2026-02-01"}, ["Beta", "Gamma"]),
])
def test_search_operators(api, deals, cond, expected):
    r = api.post("/api/v1/search", json={"type": "deal", "groups": [{"conditions": [cond]}]})
    assert r.status_code == 200, r.json
    assert sorted(_names(r.json["data"])) == expected and r.json["data"]["total"] == len(expected)


def test_search_groups_logic_paging_and_limits(api, deals):
    body = {"type": "deal", "logic": "OR", "groups": [
        {"logic": "AND", "conditions": [{"property": "stage", "operator": "EQ", "value": "closed_won"},
                                        {"property": "amount", "operator": "GT", "value": 500000}]},
        {"conditions": [{"property": "amount", "operator": "LT", "value": 100}]}]}
    assert sorted(_names(api.post("/api/v1/search", json=body).json["data"])) == ["Delta deal", "Gamma"]
    pages = [api.post("/api/v1/search", json={"type": "deal", "page": p, "pageSize": 3}).json["data"] for p in (1, 2)]
    assert pages[0]["total"] == 4 and pages[0]["hasMore"] and not pages[1]["hasMore"]
    assert _names(pages[0]) + _names(pages[1]) == ["Alpha", "Beta", "Gamma", "Delta deal"]  # stable order
    only_ids = api.post("/api/v1/search", json={"type": "deal", "returnRecords": False}).json["data"]
    assert len(only_ids["recordIds"]) == 4 and set(only_ids["results"][0]) == {"recordId", "type"}
    key_only = api.post("/api/v1/search", json={"customKeyName": "crm_id", "customKeyValue": "d3"}).json["data"]
    assert _names(key_only) == ["Gamma"]
    assert api.post("/api/v1/search", json={"pageSize": 501}).status_code == 400
    unknown = api.post("/api/v1/search", json={"type": "deal", "groups": [{"conditions": [
        {"property": "colour", "operator": "EQ", "value": "red"}]}]})
    assert unknown.status_code == 422 and "amount" in unknown.json["error"]["details"]["known"]


def test_filter_by_property_with_next_token(api, deals):
    body = {"type": "deal", "conditions": [{"propertyName": "amount", "operator": "gt", "value": 1}], "limit": 2}
    first = api.post("/api/v1/memory/filter-by-property", json=body).json["data"]
    assert first["total"] == 4 and len(first["records"]) == 2 and first["nextToken"]
    second = api.post("/api/v1/memory/filter-by-property", json={**body, "nextToken": first["nextToken"]}).json["data"]
    assert second["nextToken"] is None
    assert _names(first) + _names(second) == ["Alpha", "Beta", "Gamma", "Delta deal"]
    either = api.post("/api/v1/memory/filter-by-property", json={"type": "deal", "logic": "OR", "conditions": [
        {"propertyName": "stage", "operator": "equals", "value": "qualified"},
        {"propertyName": "close_date", "operator": "isEmpty"}]}).json["data"]
    assert sorted(_names(either)) == ["Alpha", "Delta deal"]
    assert api.post("/api/v1/memory/filter-by-property", json={**body, "nextToken": "garbage!"}).status_code == 400


# --- deletion --------------------------------------------------------------------------------------
def test_soft_delete_hides_everywhere_and_can_be_cancelled(api):
    upsert(api, email="f@x.io", properties={"first_name": "Fay"})
    r = api.post("/api/v1/memory/delete-record", json={"email": "f@x.io"})
    assert r.status_code == 200 and r.json["data"]["purgeAfter"]
    assert api.post("/api/v1/search", json={"email": "f@x.io"}).json["data"]["total"] == 0
    assert api.post("/api/v1/recall", json={"type": "contact", "email": "f@x.io"}).status_code == 404
    assert api.post("/api/v1/memory/update", json={"email": "f@x.io", "propertyName": "first_name",
                                                   "propertyValue": "X"}).status_code == 404
    assert api.post("/api/v1/upsert", json={"email": "f@x.io", "properties": {}}).status_code == 404
    assert api.post("/api/v1/memory/cancel-deletion", json={"email": "f@x.io"}).status_code == 200
    assert api.post("/api/v1/search", json={"email": "f@x.io"}).json["data"]["total"] == 1


def test_purge_job_hard_deletes_expired_soft_deletes(api, engine):
    upsert(api, email="g@x.io", properties={"first_name": "Gil"})
    rid = api.post("/api/v1/memory/delete-record", json={"email": "g@x.io"}).json["data"]["recordId"]
    assert engine.records.purge_expired(org_id=api.org_id) == 0  # still within the window
    from datetime import timedelta

    from memrelay.engine.core.util import utcnow
    from memrelay.engine.stores.db.models import Record

    with engine.db.session() as s:
        s.get(Record, rid).purge_after = utcnow() - timedelta(seconds=1)
    assert engine.records.purge_expired(org_id=api.org_id) == 1
    assert api.post("/api/v1/memory/cancel-deletion", json={"email": "g@x.io"}).status_code == 404


def test_erase_removes_everything_and_audits_without_personal_data(api, engine):
    upsert(api, email="h@x.io", properties={"first_name": "Hana", "job_title": "CFO"})
    upsert(api, email="h@x.io", properties={"job_title": "CEO"})
    r = api.post("/api/v1/memory/erase-record", json={"email": "h@x.io"})
    assert r.status_code == 200 and r.json["data"]["records"] == 1 and r.json["data"]["properties"] == 2
    assert r.json["data"]["history"] == 3
    assert api.post("/api/v1/search", json={"email": "h@x.io"}).json["data"]["total"] == 0
    with engine.db.read() as s:
        audit = s.scalars(select(AuditEntry).where(AuditEntry.org_id == api.org_id)).all()
        events = s.scalars(select(OutboxEvent).where(OutboxEvent.org_id == api.org_id,
                                                     OutboxEvent.event_type == "memory.record.erased")).all()
    assert len(audit) == 1 and len(events) == 1
    blob = repr((audit[0].subject, audit[0].detail, events[0].payload)).lower()
    assert "h@x.io" not in blob and "hana" not in blob and "cfo" not in blob


def test_erase_needs_admin_scope(app, engine):
    from tests.conftest import make_api

    writer = make_api(app, engine, scopes=("read", "write"))
    upsert(writer, email="i@x.io", properties={})
    assert writer.post("/api/v1/memory/erase-record", json={"email": "i@x.io"}).status_code == 403


# --- outbox and isolation --------------------------------------------------------------------------
def test_mutations_emit_outbox_events_in_the_same_transaction(api, engine):
    upsert(api, email="j@x.io", properties={"first_name": "Jo"})
    upsert(api, email="j@x.io", properties={"first_name": "Joe", "job_title": "PM"})
    api.post("/api/v1/upsert", json={"email": "j@x.io", "properties": {"lifecycle_stage": "nope"}})  # rejected
    api.post("/api/v1/memory/delete-record", json={"email": "j@x.io"})
    api.post("/api/v1/memory/cancel-deletion", json={"email": "j@x.io"})
    cid = api.get("/api/v1/collections").json["data"]["collections"][0]["collectionId"]
    api.patch(f"/api/v1/collections/{cid}", json={"description": "changed"})
    with engine.db.read() as s:
        types = [e.event_type for e in s.scalars(select(OutboxEvent).where(OutboxEvent.org_id == api.org_id)
                                                 .order_by(OutboxEvent.id))]
    assert types == ["record.created", "memory.property.updated",  # one event per changed property, plus
                     "memory.property.updated", "memory.property.updated", "memory.properties.bulk_updated",
                     "memory.record.deleted", "memory.record.deletion_cancelled", "collection.updated"]


def test_another_orgs_key_never_sees_or_changes_data(api, other_api):
    upsert(api, email="k@x.io", properties={"first_name": "Kim"}, customKeyName="crm", customKeyValue="k1")
    rid = api.post("/api/v1/search", json={"email": "k@x.io"}).json["data"]["results"][0]["recordId"]
    for body in ({"email": "k@x.io"}, {"record_id": rid}, {"customKeyName": "crm", "customKeyValue": "k1"}):
        assert other_api.post("/api/v1/search", json=body).json["data"]["total"] == 0
        assert other_api.post("/api/v1/recall", json={"type": "contact", **body}).status_code == 404
        assert other_api.post("/api/v1/memory/property-history", json=body).status_code == 404
        assert other_api.post("/api/v1/memory/update", json={**body, "propertyName": "first_name",
                                                             "propertyValue": "X"}).status_code == 404
        assert other_api.post("/api/v1/memory/delete-record", json=body).status_code == 404
        assert other_api.post("/api/v1/memory/erase-record", json=body).status_code == 404
    assert other_api.post("/api/v1/search", json={"groups": [{"conditions": [
        {"property": "first_name", "operator": "EQ", "value": "kim"}]}]}).json["data"]["total"] == 0
    cid = api.get("/api/v1/collections").json["data"]["collections"][0]["collectionId"]
    assert other_api.get(f"/api/v1/collections/{cid}").status_code == 404
    assert other_api.patch(f"/api/v1/collections/{cid}", json={"description": "x"}).status_code == 404
    assert api.post("/api/v1/search", json={"email": "k@x.io"}).json["data"]["results"][0]["properties"][
        "first_name"]["value"] == "Kim"


def test_concurrent_writers_never_lose_an_update(api, engine, backend):
    upsert(api, email="race@x.io", properties={"interests": []})
    errors: list[object] = []

    def push(i: int) -> None:
        r = api.client.post("/api/v1/memory/update", headers={"X-API-Key": api.key}, json={
            "email": "race@x.io", "propertyName": "interests", "arrayPush": {"items": [f"t{i}"], "unique": True}})
        if r.status_code != 200:
            errors.append(r.json)

    threads = [threading.Thread(target=push, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    rec = api.post("/api/v1/search", json={"email": "race@x.io"}).json["data"]["results"][0]
    assert sorted(rec["properties"]["interests"]["value"]) == sorted(f"t{i}" for i in range(24))
    assert rec["version"] == 1 + 24
