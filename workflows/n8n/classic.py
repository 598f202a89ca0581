"""The classic data paths as n8n templates (no memrelay workflow behind them).

memrelay answers in Personize's envelope ``{"success": true, "data": ...}``: expressions read ``json.data.*``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from memrelay.workflows.n8n.document import Doc, stable_id

BODY = "$('Webhook').first().json.body"
CONTACT_MAPPING = {"entityType": "contact", "email": "email", "customKeyName": "hubspot_id", "customKey": "id",
                   "properties": {"first_name": {"sourceField": "firstname"}, "last_name": {"sourceField": "lastname"},
                                  "company_name": {"sourceField": "company"},
                                  "job_title": {"sourceField": "jobtitle"}}}


def _json(value: Any) -> str:
    from memrelay.workflows.expressions import value_to_js

    return value_to_js(value, lambda _n, _p: None)


def webhook_memorize() -> dict[str, Any]:
    """Any system POSTs {email, content, tags?} → memorize on the contact."""
    d = Doc("classic/webhook-memorize", "memrelay: webhook → memorize")
    d.add("Webhook", "n8n-nodes-base.webhook", {"httpMethod": "POST", "path": "memrelay-memorize",
                                                "responseMode": "lastNode", "options": {}},
          extra={"webhookId": stable_id(d.key, "webhook")})
    d.add_config()
    body = ("{ \"content\": " + f"{BODY}.content ?? JSON.stringify({BODY}), \"email\": {BODY}.email, "
            f"\"tags\": {BODY}.tags ?? [\"n8n\", \"webhook\"], \"source\": \"n8n\"" + " }")
    d.api("Memorize", "POST", "/api/v1/memorize", body)
    return d.document("POST {email, content, tags?} to the webhook; memrelay stores it as memories.")


def _rows_code(fields: str) -> dict[str, Any]:
    js = ("const rows = $input.all().map((item) => {\n  const p = item.json.properties ?? item.json;\n"
          f"  return {fields};\n}});\nreturn [{{ json: {{ rows }} }}];")
    return {"jsCode": js}


def hubspot_batch() -> dict[str, Any]:
    """Every hour: recent HubSpot contacts → batch-memorize."""
    d = Doc("classic/hubspot-batch-memorize", "memrelay: scheduled HubSpot contacts → batch-memorize")
    d.add("Schedule", "n8n-nodes-base.scheduleTrigger", {"rule": {"interval": [{"field": "hours"}]}})
    d.add_config()
    d.add("HubSpot contacts", "n8n-nodes-base.hubspot", {
        "authentication": "appToken", "resource": "contact", "operation": "getAll", "returnAll": False,
        "limit": 100, "additionalFields": {"propertiesCollection": {"propertiesValues": {
            "properties": ["email", "firstname", "lastname", "company", "jobtitle"]}}}},
        credentials={"hubspotAppToken": {"id": "memrelayHubspot1", "name": "HubSpot app token"}})
    fields = ("({ id: String(item.json.vid ?? item.json.id ?? ''), email: p.email?.value ?? p.email, "
              "firstname: p.firstname?.value ?? p.firstname, lastname: p.lastname?.value ?? p.lastname, "
              "company: p.company?.value ?? p.company, jobtitle: p.jobtitle?.value ?? p.jobtitle })")
    d.add("Rows", "n8n-nodes-base.code", _rows_code(fields))
    body = "{ \"rows\": $json.rows, \"mapping\": " + _json(CONTACT_MAPPING) + ", \"source\": \"hubspot\", " \
           "\"tags\": [\"hubspot\"] }"
    d.api("Batch memorize", "POST", "/api/v1/batch-memorize", body)
    return d.document("Hourly: the latest HubSpot contacts become memrelay contacts (async batch run).")


def sheets_batch() -> dict[str, Any]:
    """Every hour: rows of a Google Sheet → batch-memorize (one row per contact, an `email` column)."""
    d = Doc("classic/google-sheets-batch-memorize", "memrelay: Google Sheets → batch-memorize")
    d.add("Schedule", "n8n-nodes-base.scheduleTrigger", {"rule": {"interval": [{"field": "hours"}]}})
    d.add_config()
    d.add("Read sheet", "n8n-nodes-base.googleSheets", {
        "documentId": {"__rl": True, "value": "", "mode": "url"},
        "sheetName": {"__rl": True, "value": "gid=0", "mode": "list"}, "options": {}},
        credentials={"googleSheetsOAuth2Api": {"id": "memrelayGSheets1", "name": "Google Sheets account"}})
    d.add("Rows", "n8n-nodes-base.code", _rows_code("({ ...p })"))
    mapping = {"entityType": "contact", "email": "email",
               "properties": {"first_name": {"sourceField": "first_name"}, "last_name": {"sourceField": "last_name"},
                              "company_name": {"sourceField": "company"},
                              "notes": {"sourceField": "notes", "extractMemories": True}}}
    body = "{ \"rows\": $json.rows, \"mapping\": " + _json(mapping) + ", \"source\": \"google_sheets\", " \
           "\"tags\": [\"sheets\"] }"
    d.api("Batch memorize", "POST", "/api/v1/batch-memorize", body)
    return d.document("Hourly: every row of a sheet (email, first_name, last_name, company, notes) is imported.")


def digest_prompt_slack() -> dict[str, Any]:
    """By hand: one contact's digest → a generated Slack brief → Slack incoming webhook."""
    d = Doc("classic/record-digest-prompt-slack", "memrelay: record → smart digest + prompt → Slack")
    d.add("Manual trigger", "n8n-nodes-base.manualTrigger", {})
    d.config = {"email": "ada@example.com", "slackWebhookUrl": ""}
    d.add_config()
    email = d.config_ref("email")
    d.api("Smart digest", "POST", "/api/v1/smart-memory-digest",
          "{ \"email\": " + email + ", \"tokenBudget\": 800 }")
    d.api("Prompt", "POST", "/api/v1/prompt",
          "{ \"context\": $('Smart digest').first().json.data.compiledContext, \"channel\": \"slack\", "
          "\"instructions\": [ { \"prompt\": \"Write a short account brief for the team: who this is, what "
          "matters now, one suggested next step.\" } ] }")
    d.post_json("Slack", d.config_ref("slackWebhookUrl"),
                "{ \"text\": $('Prompt').first().json.data.outputs.text }")
    return d.document("Set the contact's email and your Slack incoming-webhook URL in Config, then run.")


def export_search_csv() -> dict[str, Any]:
    """By hand: a /search over records → one CSV file (keys + property values)."""
    d = Doc("classic/export-search-csv", "memrelay: export search → CSV")
    d.add("Manual trigger", "n8n-nodes-base.manualTrigger", {})
    d.config = {"type": "contact"}
    d.add_config()
    d.api("Search", "POST", "/api/v1/search",
          "{ \"type\": " + d.config_ref("type") + ", \"pageSize\": 200, \"returnRecords\": true }")
    d.add("Records", "n8n-nodes-base.splitOut", {"fieldToSplitOut": "data.results", "options": {}})
    flatten = ("return $input.all().map((item) => {\n  const r = item.json;\n  const row = { recordId: r.recordId, "
               "type: r.type, email: r.keys?.email ?? '' };\n  for (const [k, v] of Object.entries(r.properties ?? "
               "{})) row[k] = v && typeof v === 'object' && 'value' in v ? v.value : v;\n  return { json: row };\n});")
    d.add("Flatten", "n8n-nodes-base.code", {"jsCode": flatten})
    d.add("CSV file", "n8n-nodes-base.convertToFile", {"operation": "csv", "options": {
        "fileName": "memrelay-export.csv"}})
    return d.document("Exports every record of a type (first 200) as memrelay-export.csv.")


CLASSIC: dict[str, Callable[[], dict[str, Any]]] = {
    "webhook-memorize": webhook_memorize,
    "hubspot-batch-memorize": hubspot_batch,
    "google-sheets-batch-memorize": sheets_batch,
    "record-digest-prompt-slack": digest_prompt_slack,
    "export-search-csv": export_search_csv,
}
