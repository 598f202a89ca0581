"""Org B's key, sent at every /api/v1 route with org A's ids and identifiers, never sees or changes A's data."""

from __future__ import annotations

import json
import re

import pytest

LEAK_EMAIL = "zanzibar@leak-a.io"
MARKERS = ("Zanzibar", "Quokka", "LeakCollectionDescription", "LeakGuidelineBody", "leak-source-secret",
           "LeakAgentDescription")


def _org_a_everything(api) -> dict[str, str]:
    ids: dict[str, str] = {}
    r = api.post("/api/v1/upsert", json={"email": LEAK_EMAIL, "properties": {"first_name": "Zanzibar"},
                                         "customKeyName": "crm", "customKeyValue": "a-1"})
    ids["record"] = r.json["data"]["recordId"]
    m = api.post("/api/v1/memorize", json={"email": LEAK_EMAIL, "tags": ["call"],
                                           "content": "Zanzibar signed the Quokka contract last week."})
    assert m.status_code == 200, m.json
    ids["memory"] = m.json["data"]["memoryIds"][0]
    c = api.post("/api/v1/collections", json={"collectionName": "LeakCollection", "entityType": "contact",
                                              "description": "LeakCollectionDescription", "properties": [
                                                  {"propertyName": "leak_score", "type": "number"}]})
    ids["collection"] = c.json["data"]["collectionId"]
    s = api.post("/api/v1/sources", json={"connector": "hubspot", "secret": "leak-source-secret"})
    ids["source"] = s.json["data"]["id"]
    g = api.post("/api/v1/guidelines", json={"name": "LeakGuideline", "content": "# Tone\nLeakGuidelineBody"})
    assert g.status_code == 201, g.json
    ids["guideline"] = g.json["data"]["id"]
    a = api.post("/api/v1/agents", json={"name": "LeakAgent", "description": "LeakAgentDescription",
                                         "spec": {"instructions": [{"prompt": "Say hi to {{input}}"}]}})
    assert a.status_code == 201, a.json
    ids["agent"] = a.json["data"]["id"]
    ids["key"] = api.get("/api/v1/keys").json["data"]["keys"][0]["id"]
    return ids


def _body(ids: dict[str, str]) -> dict[str, object]:
    return {"email": LEAK_EMAIL, "record_id": ids["record"], "recordId": ids["record"], "type": "contact",
            "customKeyName": "crm", "customKeyValue": "a-1", "memoryIds": [ids["memory"]],
            "memoryId": ids["memory"], "text": "overwritten", "query": "what contract was signed",
            "content": "overwritten", "tags": ["x"], "properties": {"first_name": "Overwritten"},
            "propertyName": "first_name", "propertyValue": "Overwritten", "collectionId": ids["collection"],
            "message": "contract tone", "instructions": [{"prompt": "summarise"}], "seed": {"recordId": ids["record"]},
            "recordIds": [ids["record"]], "sourceId": ids["source"]}


def test_org_b_cannot_read_or_change_org_a_through_any_endpoint(app, api, other_api):
    ids = _org_a_everything(api)
    body = _body(ids)
    checked = 0
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1"):
            continue
        params = re.findall(r"<(?:\w+:)?(\w+)>", rule.rule)
        candidates = [dict.fromkeys(params, v) for v in ids.values()] if params else [{}]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            for values in candidates:
                path = rule.rule
                for p, v in values.items():
                    path = re.sub(rf"<(?:\w+:)?{p}>", v, path)
                resp = getattr(other_api, method.lower())(path, json=body) if method != "GET" else \
                    other_api.get(path, query_string={"email": LEAK_EMAIL, "record_id": ids["record"]})
                checked += 1
                assert resp.status_code != 500, (method, path, resp.get_data(as_text=True)[:300])
                text = resp.get_data(as_text=True)
                sent = path + json.dumps(body)
                for marker in MARKERS:
                    assert marker not in text, (method, path, marker)
                for name, value in ids.items():
                    if value not in sent:
                        assert value not in text, (method, path, name)
    assert checked > 60
    # org A is untouched
    rec = api.post("/api/v1/recall", json={"type": "contact", "email": LEAK_EMAIL}).json["data"]
    assert rec["properties"]["first_name"]["value"] == "Zanzibar"
    assert ids["memory"] in {m["memoryId"] for m in rec["freeformMemories"]}
    assert all("overwritten" not in m["text"] for m in rec["freeformMemories"])
    assert api.get(f"/api/v1/collections/{ids['collection']}").json["data"]["archived"] is False
    assert api.get(f"/api/v1/sources/{ids['source']}").json["data"]["active"] is True
    assert api.get(f"/api/v1/guidelines/{ids['guideline']}").status_code == 200
    assert api.get(f"/api/v1/agents/{ids['agent']}").status_code == 200
    assert api.get("/api/v1/me").status_code == 200  # A's key was not revoked


@pytest.mark.parametrize("path", ["/api/v1/smart-recall", "/api/v1/search", "/api/v1/similar"])
def test_org_wide_queries_only_see_the_own_org(api, other_api, path):
    _org_a_everything(api)
    r = other_api.post(path, json={"query": "who signed a contract", "groups": []})
    assert r.status_code != 500
    assert "Quokka" not in r.get_data(as_text=True) and "Zanzibar" not in r.get_data(as_text=True)
