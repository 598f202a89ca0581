"""Personize's four published n8n templates (personizeai/personize-skills, skills/personize-code/templates/),
re-written here as their HTTP calls: the same method, path, auth header and body the templates send once their
Code nodes have run on sample input, and the same reads of the answer their Code/IF nodes make. The template
files themselves are not copied into this repository and nothing is fetched at run time.

Auth: every template's HTTP node uses an ``httpHeaderAuth`` credential ("Personize API Key"), i.e. an
``Authorization: Bearer <key>`` header — what the test client sends.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tests.contract.conftest import Personize, prop, texts

RUN_AT_MS = 1733486400000  # Date.now() in the templates' runName
STANDARD = {"collectionId": "YOUR_STANDARD_COL_ID", "collectionName": "Contacts Standard Schema"}


# --- gsheets-to-personize -----------------------------------------------------------------------------------
def gsheets_payload(sheet_rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The "Build Batch Memorize Payload" Code node: keep rows with an email, lower-case + snake-case headers."""
    valid = [r for r in sheet_rows if r.get("email") or r.get("Email")]
    rows = [{re.sub(r"\s+", "_", k.lower()): v for k, v in r.items()} for r in valid]
    return {"source": "Google Sheets",
            "mapping": {"entityType": "contact", "email": "email", "runName": f"n8n-gsheets-import-{RUN_AT_MS}",
                        "properties": {
                            "email": {"sourceField": "email", **STANDARD},
                            "first_name": {"sourceField": "first_name", **STANDARD},
                            "last_name": {"sourceField": "last_name", **STANDARD},
                            "company": {"sourceField": "company", **STANDARD},
                            "phone": {"sourceField": "phone", **STANDARD},
                            "notes": {"sourceField": "notes", "collectionId": "YOUR_GENERATED_COL_ID",
                                      "collectionName": "Generated Content", "extractMemories": True}}},
            "rows": rows, "chunkSize": 1}


def test_gsheets_to_personize(pz: Personize, settle: Callable[[], None]) -> None:
    sheet = [{"Email": "ada@acme.com", "First Name": "Ada", "Last Name": "Lovelace", "Company": "Acme",
              "Phone": "+1 555 0100", "Notes": "Ada wants SSO before the Q3 rollout."},
             {"Email": "", "First Name": "Blank row"}]
    payload = gsheets_payload(sheet)
    assert len(payload["rows"]) > 0  # the "Has Rows?" IF node: $json.rows.length > 0
    r = pz.send("POST", "/api/v1/batch-memorize", payload)  # "Personize: Batch Memorize" (retryOnFail on errors)
    assert 200 <= r.status_code < 300 and r.get_json()["success"] is True, r.get_json()
    settle()
    (props,) = pz.search_records(email="ada@acme.com").values()
    assert (prop(props, "first_name"), prop(props, "last_name"), prop(props, "company"), prop(props, "phone")) == \
        ("Ada", "Lovelace", "Acme", "+1 555 0100"), props
    found = pz.post("/smart-recall", {"query": "what does Ada need before rollout?", "email": "ada@acme.com"})
    assert any("SSO" in t for t in texts(found["results"])), found


# --- hubspot-to-personize -----------------------------------------------------------------------------------
def hubspot_payload(items: list[dict[str, Any]]) -> dict[str, Any]:
    """The "Build Batch Memorize Payload" Code node of the HubSpot template."""
    def field(item: dict[str, Any], name: str) -> Any:
        return item.get(name) or (item.get("properties") or {}).get(name) or ""

    names = ("email", "firstname", "lastname", "phone", "company", "jobtitle", "mobilephone")
    rows = [row for row in ({n: field(i, n) for n in names} for i in items) if row["email"]]
    return {"source": "Hubspot",
            "mapping": {"entityType": "contact", "email": "email", "runName": f"n8n-hubspot-sync-{RUN_AT_MS}",
                        "properties": {
                            "email": {"sourceField": "email", **STANDARD},
                            "first_name": {"sourceField": "firstname", **STANDARD},
                            "last_name": {"sourceField": "lastname", **STANDARD},
                            "phone": {"sourceField": "phone", **STANDARD},
                            "mobile_phone": {"sourceField": "mobilephone", **STANDARD},
                            "company": {"sourceField": "company", **STANDARD},
                            "job_title": {"sourceField": "jobtitle", **STANDARD}}},
            "rows": rows, "chunkSize": 1}


HUBSPOT_CONTACTS = [
    {"id": "101", "properties": {"email": "ann@acme.com", "firstname": "Ann", "lastname": "Lee", "company": "Acme",
                                 "jobtitle": "CTO", "phone": "+1 555 0101", "mobilephone": "+1 555 0199"}},
    {"id": "102", "properties": {"email": "bob@globex.com", "firstname": "Bob", "lastname": "Ng",
                                 "company": "Globex", "jobtitle": "CFO"}},
    {"id": "103", "email": "cy@initech.com", "firstname": "Cy", "company": "Initech", "jobtitle": "VP Sales"},
    {"id": "104", "properties": {"email": "di@umbrella.com", "firstname": "Di", "company": "Umbrella"}},
    {"id": "105", "properties": {"firstname": "No email"}},
]


def test_hubspot_to_personize(pz: Personize, settle: Callable[[], None]) -> None:
    r = pz.send("POST", "/api/v1/batch-memorize", hubspot_payload(HUBSPOT_CONTACTS))
    assert 200 <= r.status_code < 300 and r.get_json()["success"] is True, r.get_json()
    settle()
    (ann,) = pz.search_records(email="ann@acme.com").values()
    assert (prop(ann, "first_name"), prop(ann, "company"), prop(ann, "job_title"), prop(ann, "mobile_phone")) == \
        ("Ann", "Acme", "CTO", "+1 555 0199"), ann
    assert pz.post("/search", {"type": "Contact", "returnRecords": True})["totalMatched"] == 4


def test_placeholder_collection_ids_resolve_by_name_and_never_hide_an_unknown_property(
        pz: Personize, settle: Callable[[], None]) -> None:
    # the templates' placeholder id with a collection name this org has: the name decides
    by_name = {"sourceField": "first", "collectionId": "YOUR_STANDARD_COL_ID", "collectionName": "contact"}
    base = {"source": "Hubspot", "mapping": {"entityType": "contact", "email": "email", "properties": {
        "first_name": by_name}}, "rows": [{"email": "eve@acme.com", "first": "Eve"}]}
    pz.post("/batch-memorize", base)
    # a property no collection of the type defines, under an unknown collection: refused, naming it
    bad = {**base, "mapping": {**base["mapping"], "properties": {
        "first_name": by_name, "shoe_size": {"sourceField": "first", **STANDARD}}}}
    refused = pz.fails("POST", "/batch-memorize", bad, 422)
    assert "shoe_size" in str(refused["error"]), refused
    settle()
    (eve,) = pz.search_records(email="eve@acme.com").values()
    assert prop(eve, "first_name") == "Eve", eve


# --- personize-to-slack -------------------------------------------------------------------------------------
SLACK_EXPORT = {"type": "Contact", "returnRecords": True, "pageSize": 50, "includeMemories": False}


def slack_message(answer: dict[str, Any]) -> str:
    """The "Format Slack Message" Code node, line for line."""
    data = answer.get("data") or answer
    total = data.get("totalMatched") or 0
    records = data.get("records") or {}
    message = f"*Personize Memory Digest* — {total} contacts\n\n"
    for count, (record_id, p) in enumerate(records.items()):  # Object.entries(records)
        if count >= 10:
            message += f"\n_...and {total - 10} more_"
            break
        email = (p.get("email") or {}).get("value") or record_id
        company = (p.get("company") or {}).get("value") or "Unknown"
        name = (p.get("first_name") or {}).get("value") or (p.get("full_name") or {}).get("value") or ""
        message += f"• *{name}* ({email}) — {company}\n"
    if total == 0:
        message = "*Personize Memory Digest* — No contacts found matching filters."
    return message


def test_personize_to_slack(pz: Personize) -> None:
    for first_name, email, company in (("Ann", "ann@acme.com", "Acme"), ("Bob", "bob@globex.com", "Globex"),
                                       ("Cy", "cy@initech.com", "Initech"), ("Di", "di@umbrella.com", "Umbrella")):
        pz.upsert({"first_name": first_name, "company": company}, type="Contact", email=email)
    r = pz.send("POST", "/api/v1/search", SLACK_EXPORT)  # "Personize: Export Records"
    answer = r.get_json()
    assert r.status_code == 200 and answer["success"] is True, answer
    message = slack_message(answer)
    assert message.startswith("*Personize Memory Digest* — 4 contacts"), message
    for line in ("• *Ann* (ann@acme.com) — Acme", "• *Bob* (bob@globex.com) — Globex",
                 "• *Cy* (cy@initech.com) — Initech", "• *Di* (di@umbrella.com) — Umbrella"):
        assert line in message, message


# --- webhook-to-personize -----------------------------------------------------------------------------------
def webhook_payload(body: dict[str, Any]) -> dict[str, Any]:
    """The "Build Memorize Payload" Code node: allow-listed fields, v1.1 ``shape: 'shortform'``.
    ``JSON.stringify`` drops ``undefined`` keys, so absent identifiers are absent here too."""
    def safe(value: Any, limit: int) -> str | None:
        return (value.strip()[:limit] or None) if isinstance(value, str) else None

    data = {k: safe(body.get(k), 2000 if k in ("notes", "message") else 200)
            for k in ("name", "email", "company", "title", "phone", "notes", "message", "source")}
    data["website"] = safe(body.get("website") or body.get("website_url"), 200)
    if data["email"] and not re.fullmatch(r"[^\s@]+@[^\s@]+\.[^\s@]+", data["email"]):
        data["email"] = None
    labels = [("name", "Name"), ("email", "Email"), ("company", "Company"), ("title", "Title"), ("phone", "Phone"),
              ("notes", "Notes"), ("message", "Message")]
    content = "\n".join(f"{label}: {data[k]}" for k, label in labels if data[k])
    payload: dict[str, Any] = {"shape": "shortform", "content": content, "speaker": data["source"] or "webhook",
                               "tags": ["webhook", "real-time", data["source"] or "unknown"]}
    if data["email"]:
        payload["email"] = data["email"]
    if data["website"]:
        payload["website_url"] = data["website"]
    return payload


def test_webhook_to_personize(pz: Personize) -> None:
    inbound = {"name": "Grace Hopper", "email": "grace@navy.mil", "company": "US Navy", "title": "Rear Admiral",
               "notes": "Wants a COBOL migration plan by March.", "source": "typeform",
               "website": "https://navy.mil"}
    r = pz.send("POST", "/api/v1.1/memory/save", webhook_payload(inbound))  # "Personize: Memory Save (v1.1)"
    result = r.get_json() or {}
    # "Build Response" node: success: result.success || false ; data: result.data || null
    assert result.get("success") is True and result.get("data") is not None, (r.status_code, result)
    found = pz.post("/smart-recall", {"query": "what migration does she want?", "email": "grace@navy.mil"})
    assert any("COBOL" in t for t in texts(found["results"])), found
