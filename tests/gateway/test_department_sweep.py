"""Department keys: a key restricted to entity types and guideline tags, sent at every /api/v1 and /api/v1.1
route with another department's ids, identifiers and words, never sees or changes that department's records
or guidelines; org-wide routes refuse it; an unrestricted key of the same org still sees everything.

The route classification lives in ``memrelay.gateway.department``; this sweep fails when a route is in neither
of its tables (a new route must be classified before a department key may reach it)."""

from __future__ import annotations

import json
import re
from typing import Any

from memrelay.gateway.department import DEPARTMENT_ROUTES, ORG_WIDE_ROUTES
from tests.conftest import Api

DOMAIN = "acme-dept.io"
CONTACT_EMAIL = f"quinn@{DOMAIN}"
# words only the out-of-scope (sales) department's data contains
OUT_MARKERS = ("ZebraMegadeal", "987654", "PricingApprovedSecretly", "SalesPlaybookBody", "A sales opportunity",
               "OrgWideBrandBody")
OUT_IDS = ("deal", "deal_memory", "sales_guideline", "brand_guideline", "deal_collection")
IN_MARKERS = ("QuinnRefund", "SupportToneBody")


def _seed(api: Api) -> dict[str, str]:
    ids: dict[str, str] = {}

    def ok(resp: Any, *codes: int) -> dict[str, Any]:
        assert resp.status_code in (codes or (200, 201)), resp.get_data(as_text=True)[:400]
        return resp.json["data"]

    ids["company"] = ok(api.post("/api/v1/upsert", json={"type": "company", "website_url": DOMAIN,
                                                         "properties": {"name": "AcmeDept"}}))["recordId"]
    ids["contact"] = ok(api.post("/api/v1/upsert", json={"email": CONTACT_EMAIL,
                                                         "properties": {"first_name": "Quinn"}}))["recordId"]
    ok(api.post("/api/v1/memorize", json={"email": CONTACT_EMAIL,
                                          "content": "QuinnRefund: Quinn asked for a refund of the pricing plan."}))
    ids["ticket"] = ok(api.post("/api/v1/upsert", json={
        "type": "ticket", "customKeyName": "ticketId", "customKeyValue": "T-1", "email": CONTACT_EMAIL,
        "properties": {"subject": "Refund request about pricing"}}))["recordId"]
    ids["deal"] = ok(api.post("/api/v1/upsert", json={
        "type": "deal", "customKeyName": "dealId", "customKeyValue": "D-ZEBRA", "website_url": DOMAIN,
        "email": CONTACT_EMAIL, "properties": {"deal_name": "ZebraMegadeal", "amount": 987654}}))["recordId"]
    mem = ok(api.post("/api/v1/memorize", json={
        "record_id": ids["deal"], "type": "deal",
        "content": "PricingApprovedSecretly: the ZebraMegadeal pricing for Quinn's refund plan was approved."}))
    ids["deal_memory"] = mem["memoryIds"][0]
    ids["deal_collection"] = next(c["collectionId"] for c in ok(api.get("/api/v1/collections"))["collections"]
                                  if c["entityType"] == "deal")
    ids["support_guideline"] = ok(api.post("/api/v1/guidelines", json={
        "name": "Support Tone", "tags": ["support"], "triggerKeywords": ["refund"],
        "content": "# Refunds\nSupportToneBody: be kind about refunds and pricing."}))["id"]
    ids["sales_guideline"] = ok(api.post("/api/v1/guidelines", json={
        "name": "Sales Playbook", "tags": ["sales"], "triggerKeywords": ["pricing", "refund"],
        "content": "# Pricing\nSalesPlaybookBody: never discount pricing on refund requests."}))["id"]
    ids["brand_guideline"] = ok(api.post("/api/v1/guidelines", json={
        "name": "Brand", "content": "# Voice\nOrgWideBrandBody: refunds and pricing in plain words."}))["id"]
    return ids


def _department_key(api: Api, **access: Any) -> Api:
    resp = api.post("/api/v1/keys", json={"name": "support", "scopes": ["read", "write", "admin"], **access})
    assert resp.status_code == 201, resp.json
    assert resp.json["data"]["access"] is not None
    return Api(api.client, resp.json["data"]["key"], api.org_id)


def _body(ids: dict[str, str]) -> dict[str, Any]:
    deal = ids["deal"]
    return {"type": "deal", "record_id": deal, "recordId": deal, "customKeyName": "dealId", "customKeyValue": "D-ZEBRA",
            "memoryIds": [ids["deal_memory"]], "memoryId": ids["deal_memory"], "recordIds": [deal],
            "query": "ZebraMegadeal pricing approved refund", "message": "pricing for a refund request",
            "text": "pricing approved for the refund", "content": "overwritten by support",
            "properties": {"amount": 1, "deal_name": "Overwritten"}, "propertyName": "amount", "propertyValue": 1,
            "tags": ["sales"], "name": "Sales Playbook", "guidelineIds": [ids["sales_guideline"]],
            "guidelineNames": ["Sales Playbook", "Brand"], "instructions": [{"prompt": "summarise the deal pricing"}],
            "seed": {"recordId": deal}, "identifiers": {"record_id": deal, "type": "deal"},
            "collectionId": ids["deal_collection"], "collectionName": "Deal", "entityType": "deal",
            "conditions": [{"propertyName": "amount", "operator": "GT", "value": 1}],
            "groups": [{"conditions": [{"property": "amount", "operator": "GT", "value": 1}]}],
            "includeMemories": True, "returnRecords": True, "topK": 50, "includeLinked": True}


def _paths(rule: str, ids: dict[str, str]) -> list[str]:
    params = re.findall(r"<(?:\w+:)?(\w+)>", rule)
    if not params:
        return [rule]
    values = [ids["deal"], ids["deal_memory"], ids["sales_guideline"], ids["deal_collection"], "deal"]
    out = []
    for v in values:
        path = rule
        for p in params:
            path = re.sub(rf"<(?:\w+:)?{p}>", v, path)
        out.append(path)
    return out


def _assert_no_leak(text: str, where: tuple[Any, ...]) -> None:
    for marker in OUT_MARKERS:
        assert marker not in text, (*where, marker, text[:600])


def test_department_key_never_reads_or_changes_another_department(app, api):  # type: ignore[no-untyped-def]
    ids = _seed(api)
    support = _department_key(api, entityTypes=["contact", "ticket", "company"], guidelineTags=["support"])
    body = _body(ids)
    unclassified, checked, org_wide = [], 0, 0
    for rule in app.url_map.iter_rules():
        if not re.match(r"^/api/v1(\.1)?/", rule.rule):
            continue
        if rule.endpoint not in DEPARTMENT_ROUTES and rule.endpoint not in ORG_WIDE_ROUTES:
            unclassified.append((rule.endpoint, rule.rule))
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            for path in _paths(rule.rule, ids):
                if method == "GET":
                    resp = support.get(path, query_string={"record_id": ids["deal"], "type": "deal",
                                                           "header": "Pricing", "eventTypes": "*"})
                else:
                    resp = support.client.open(path, method=method, json=body,
                                               headers={"Authorization": f"Bearer {support.key}"})
                checked += 1
                where = (method, path, resp.status_code)
                assert resp.status_code != 500, (*where, resp.get_data(as_text=True)[:400])
                if rule.endpoint in ORG_WIDE_ROUTES:
                    assert resp.status_code == 403, where
                    assert resp.json["error"]["code"] == "forbidden"
                    org_wide += 1
                text = resp.get_data(as_text=True)
                _assert_no_leak(text, where)
                sent = path + json.dumps(body) + ids["deal"]
                for name in OUT_IDS:  # an id the request did not carry is never in the answer
                    if ids[name] not in sent:
                        assert ids[name] not in text, (*where, name)
    assert not unclassified, f"classify these routes in memrelay.gateway.department: {unclassified}"
    endpoints = {r.endpoint for r in app.url_map.iter_rules()}
    assert (DEPARTMENT_ROUTES | ORG_WIDE_ROUTES) <= endpoints, (DEPARTMENT_ROUTES | ORG_WIDE_ROUTES) - endpoints
    assert not DEPARTMENT_ROUTES & ORG_WIDE_ROUTES
    assert checked > 150 and org_wide > 40

    # in-scope seeds whose answers would reach the deal: the company's linked records, lookalikes, segments
    company = {"type": "company", "website_url": DOMAIN}
    for path, req in (("/api/v1/smart-memory-digest", company), ("/api/v1/smart-memory-digest", {"email": CONTACT_EMAIL}),
                      ("/api/v1/similar", {"identifiers": company, "topK": 50}),
                      ("/api/v1/similar", {"identifiers": {"email": CONTACT_EMAIL}, "type": "deal", "topK": 50}),
                      ("/api/v1/segment", {"text": "the deal pricing was approved", "pageSize": 100}),
                      ("/api/v1/smart-recall", {"query": "pricing approved", "website_url": DOMAIN, "type": "company"}),
                      ("/api/v1/search", {"groups": [{"conditions": [{"property": "deal_name", "operator": "EQ",
                                                                      "value": "ZebraMegadeal"}]}]})):
        resp = support.post(path, json=req)
        assert resp.status_code in (200, 404, 422), (path, resp.get_data(as_text=True)[:300])
        text = resp.get_data(as_text=True)
        _assert_no_leak(text, (path,))
        assert ids["deal"] not in text and ids["deal_memory"] not in text, path
    linked = api.post("/api/v1/smart-memory-digest", json=company).get_data(as_text=True)
    assert "ZebraMegadeal" in linked or ids["deal"] in linked  # the org-wide key does see the deal there

    # the sales department's data is untouched (read with the org-wide admin key)
    deal = api.post("/api/v1/recall", json={"type": "deal", "record_id": ids["deal"]})
    assert deal.status_code == 200, deal.json
    props = deal.json["data"]["properties"]
    assert props["deal_name"]["value"] == "ZebraMegadeal" and props["amount"]["value"] == 987654
    assert ids["deal_memory"] in {m["memoryId"] for m in deal.json["data"]["freeformMemories"]}
    deals = api.post("/api/v1/search", json={"type": "deal"}).json["data"]
    assert deals["recordIds"] == [ids["deal"]]  # no deal was created by the department key
    sales = api.get(f"/api/v1/guidelines/{ids['sales_guideline']}").json["data"]
    assert sales["version"] == 1 and sales["tags"] == ["sales"]


def test_department_key_sees_its_own_department(app, api):  # type: ignore[no-untyped-def]
    ids = _seed(api)
    support = _department_key(api, entityTypes=["contact", "ticket"], guidelineTags=["support"])

    rec = support.post("/api/v1/recall", json={"email": CONTACT_EMAIL, "type": "contact"})
    assert rec.status_code == 200 and "QuinnRefund" in rec.get_data(as_text=True)
    found = support.post("/api/v1/search", json={}).json["data"]
    assert set(found["recordIds"]) == {ids["contact"], ids["ticket"]}
    smart = support.post("/api/v1/smart-recall", json={"query": "pricing refund approved", "limit": 20})
    assert smart.status_code == 200
    texts = smart.get_data(as_text=True)
    assert "QuinnRefund" in texts and "PricingApprovedSecretly" not in texts
    guidelines = support.get("/api/v1/guidelines").json["data"]
    assert [g["id"] for g in guidelines["guidelines"]] == [ids["support_guideline"]]
    routed = support.post("/api/v1/ai/smart-guidelines", json={"message": "how to answer a refund about pricing"})
    assert routed.status_code == 200
    assert "SupportToneBody" in routed.get_data(as_text=True)
    _assert_no_leak(routed.get_data(as_text=True), ("smart-guidelines",))
    cols = {c["entityType"] for c in support.get("/api/v1/collections").json["data"]["collections"]}
    assert cols == {"contact", "ticket"}
    ents = support.get("/api/v1/entities").json["data"]
    assert {e["name"] for e in ents} == {"Contact", "Support Ticket"} and len(ents) == 2

    # writes inside the department work; outside it are refused and store nothing
    ok = support.post("/api/v1/upsert", json={"type": "ticket", "customKeyName": "ticketId", "customKeyValue": "T-2",
                                              "properties": {"subject": "Second"}})
    assert ok.status_code == 200, ok.json
    for req in (
        ("/api/v1/upsert", {"type": "deal", "customKeyName": "dealId", "customKeyValue": "D-NEW",
                            "properties": {"deal_name": "New"}}),
        ("/api/v1/upsert", {"type": "deal", "record_id": ids["deal"], "properties": {"amount": 1}}),
        ("/api/v1/memorize", {"record_id": ids["deal"], "type": "deal", "content": "support note"}),
        ("/api/v1/memory/update", {"record_id": ids["deal"], "type": "deal", "propertyName": "amount",
                                   "propertyValue": 2}),
        ("/api/v1/memory/delete-record", {"record_id": ids["deal"], "type": "deal"}),
        ("/api/v1/memory/erase-record", {"record_id": ids["deal"], "type": "deal"}),
        ("/api/v1/memory/delete", {"memoryIds": [ids["deal_memory"]]}),
        ("/api/v1/guidelines", {"name": "Sneaky", "tags": ["sales"], "content": "x"}),
        ("/api/v1/guidelines", {"name": "Untagged", "content": "x"}),
        ("/api/v1/collections", {"collectionName": "DealExtras", "entityType": "deal",
                                 "properties": [{"propertyName": "x", "type": "text"}]}),
        ("/api/v1/entities", {"name": "deal"}),
    ):
        resp = support.post(req[0], json=req[1])
        assert resp.status_code in (403, 404, 422) or (req[0] == "/api/v1/memory/delete"
                                                       and resp.json["data"].get("deleted", 0) == 0), \
            (req, resp.status_code, resp.get_data(as_text=True)[:300])
    patched = support.patch(f"/api/v1/guidelines/{ids['support_guideline']}", json={"tags": ["support", "sales"]})
    assert patched.status_code == 403
    deal = api.post("/api/v1/recall", json={"type": "deal", "record_id": ids["deal"]}).json["data"]
    assert deal["properties"]["amount"]["value"] == 987654
    assert [m["memoryId"] for m in deal["freeformMemories"]] == [ids["deal_memory"]]
    assert api.post("/api/v1/search", json={"type": "deal"}).json["data"]["recordIds"] == [ids["deal"]]
    assert len(api.get("/api/v1/guidelines").json["data"]["guidelines"]) == 3

    # the org-wide key is unaffected by the department key's requests
    everything = api.post("/api/v1/search", json={}).json["data"]
    assert {ids["deal"], ids["contact"], ids["ticket"], ids["company"]} <= set(everything["recordIds"])
    assert "PricingApprovedSecretly" in api.post("/api/v1/smart-recall", json={
        "query": "ZebraMegadeal pricing approved", "limit": 20}).get_data(as_text=True)


def test_collection_restricted_key_sees_only_those_properties(app, api):  # type: ignore[no-untyped-def]
    ids = _seed(api)
    billing = api.post("/api/v1/collections", json={"collectionName": "TicketBilling", "entityType": "ticket",
                                                    "properties": [{"propertyName": "refund_amount", "type": "number"}]})
    assert billing.status_code == 201, billing.json
    assert api.post("/api/v1/upsert", json={"type": "ticket", "record_id": ids["ticket"],
                                            "properties": {"refund_amount": 4242}}).status_code == 200
    support = _department_key(api, collections=["SupportTicket"])
    rec = support.post("/api/v1/recall", json={"type": "ticket", "record_id": ids["ticket"]})
    assert rec.status_code == 200, rec.json
    assert rec.json["data"]["properties"]["subject"]["value"] == "Refund request about pricing"
    other = support.post("/api/v1/recall", json={"email": CONTACT_EMAIL, "type": "contact"})
    assert other.status_code in (404, 422) and "Quinn" not in other.get_data(as_text=True)  # type out of scope
    cols = [c["collectionName"] for c in support.get("/api/v1/collections").json["data"]["collections"]]
    assert cols == ["SupportTicket"]
    hist = support.post("/api/v1/memory/property-history", json={"type": "ticket", "record_id": ids["ticket"]})
    assert hist.status_code == 200, hist.json
    assert {e["propertyName"] for e in hist.json["data"]["items"]} == {"subject"}
    # a property the allowed collections do not define is neither shown nor writable
    for path, body in (("/api/v1/recall", {"type": "ticket", "record_id": ids["ticket"]}),
                       ("/api/v1/smart-memory-digest", {"type": "ticket", "record_id": ids["ticket"]}),
                       ("/api/v1/search", {"type": "ticket", "returnRecords": True})):
        text = support.post(path, json=body).get_data(as_text=True)
        assert "Refund request about pricing" in text or path != "/api/v1/recall"
        assert "4242" not in text and "refund_amount" not in text and "TicketBilling" not in text, path
    refused = support.post("/api/v1/upsert", json={"type": "ticket", "record_id": ids["ticket"],
                                                   "properties": {"refund_amount": 1}})
    assert refused.status_code == 403, refused.json
    full = api.post("/api/v1/recall", json={"type": "ticket", "record_id": ids["ticket"]}).json["data"]
    assert full["properties"]["refund_amount"]["value"] == 4242
    wrote = support.post("/api/v1/memory/update", json={"type": "ticket", "record_id": ids["ticket"],
                                                        "propertyName": "subject", "propertyValue": "Changed"})
    assert wrote.status_code == 200, wrote.json


def test_a_department_admin_cannot_widen_its_keys(app, api):  # type: ignore[no-untyped-def]
    support = _department_key(api, entityTypes=["contact"], guidelineTags=["support"])
    assert support.post("/api/v1/keys", json={"scopes": ["read"]}).status_code == 403
    assert support.get("/api/v1/keys").status_code == 403
    assert api.post("/api/v1/keys", json={"entityTypes": []}).status_code in (400, 422)
    keys = api.get("/api/v1/keys").json["data"]["keys"]
    assert {json.dumps(k["access"], sort_keys=True) for k in keys} == {
        "null", json.dumps({"entityTypes": ["contact"], "guidelineTags": ["support"]}, sort_keys=True)}
    me = support.get("/api/v1/me").json["data"]
    assert me["key"]["access"] == {"entityTypes": ["contact"], "guidelineTags": ["support"]}


def test_department_filter_on_both_backends(app, api, backend):  # type: ignore[no-untyped-def]
    ids = _seed(api)
    support = _department_key(api, entityTypes=["contact", "ticket"], guidelineTags=["support"])
    for path, body in (("/api/v1/search", {}), ("/api/v1/smart-recall", {"query": "pricing approved refund"}),
                       ("/api/v1/smart-memory-digest", {"email": CONTACT_EMAIL}),
                       ("/api/v1/recall", {"type": "deal", "record_id": ids["deal"]}),
                       ("/api/v1/ai/smart-guidelines", {"message": "refund pricing"})):
        resp = support.post(path, json=body)
        assert resp.status_code in (200, 404, 422), (path, resp.get_data(as_text=True)[:300])
        _assert_no_leak(resp.get_data(as_text=True), (path,))
    assert set(support.post("/api/v1/search", json={}).json["data"]["recordIds"]) == {ids["contact"], ids["ticket"]}
