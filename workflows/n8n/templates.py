"""The shipped n8n templates, built on the memrelay node pack (n8n-nodes-memrelay).

Each function builds one workflow document. Conventions: a sticky note says what to set up; webhook
templates authenticate the caller (Header Auth) and answer every branch through a Respond to Webhook node
(200/202 done, 422 bad input, 502 a step failed); provider events come in through n8n's own Stripe and
HubSpot triggers (which check the provider's signature and answer the provider themselves); memrelay steps
are retried and have an error output; lists that can exceed a page are paged; customer emails carry no
n8n footer."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from memrelay.workflows.n8n.document import SMTP_CREDENTIAL, Doc, error_body, stable_id

BODY = "$('Webhook').first().json.body"
EMAIL_RE = "regex"
HUBSPOT_APP_TOKEN = {"hubspotAppToken": {"id": "memrelayHubspot1", "name": "HubSpot app token"}}
HUBSPOT_DEVELOPER = {"hubspotDeveloperApi": {"id": "memrelayHubDev01", "name": "HubSpot developer app"}}
STRIPE = {"stripeApi": {"id": "memrelayStripe01", "name": "Stripe account"}}
# Stripe amounts are in the currency's smallest unit; these currencies have none below the unit
ZERO_DECIMAL = json.dumps(["bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
                           "xaf", "xof", "xpf"])
SHEETS = {"googleSheetsOAuth2Api": {"id": "memrelayGSheets1", "name": "Google Sheets account"}}

def setup_webhook(body: str, *extra: str) -> str:
    """The sticky note of a webhook template: credentials, extra setup steps, the body, the answers."""
    steps = ["**memrelay account**: a *memrelay API* credential (base URL + API key).",
             "**memrelay webhook header**: a *Header Auth* credential; callers must send that header "
             "(e.g. `X-Memrelay-Token: <long random value>`).", *extra,
             "Publish the workflow and POST JSON to the production URL."]
    return ("## Setup\n" + "\n".join(f"{i}. {step}" for i, step in enumerate(steps, 1))
            + f"\n\nBody: `{body}`\n\nAnswers: **200** `{{ok: true, …}}`, **422** missing or invalid fields, "
            "**502** a step failed after 3 tries (`{ok: false, step, error}`).")


def _post_to_slack(d: Doc, name: str, text: str, *, after: str, at: tuple[int, int]) -> str:
    """POST {text} to the Slack incoming-webhook URL kept in Settings (retried; errors leave by output 2)."""
    return d.add(name, "n8n-nodes-base.httpRequest", {
        "method": "POST", "url": "={{ " + d.setting("slackWebhookUrl") + " }}", "sendBody": True,
        "specifyBody": "keypair", "bodyParameters": {"parameters": [{"name": "text", "value": text}]},
        "options": {}}, after=after, at=at,
        extra={"retryOnFail": True, "maxTries": 3, "waitBetweenTries": 2000, "onError": "continueErrorOutput"})


# --- webhook templates --------------------------------------------------------------------------------
def webhook_memorize() -> dict[str, Any]:
    """Any system POSTs {email, content, tags?} → memorize on the contact → {ok, recordId}."""
    d = Doc("classic/webhook-memorize", "memrelay: webhook → memorize")
    d.sticky(setup_webhook('{"email": "ada@example.com", "content": "…", "tags": "crm, call"}'), at=(0, -2),
             width=520, height=320)
    d.webhook("memrelay-memorize")
    d.checks("Has email and content", [("={{ " + BODY + ".email }}", EMAIL_RE),
                                       ("={{ " + BODY + ".content }}", "notEmpty")])
    d.memrelay("Memorize", "memory", "memorize", {
        "entityType": "contact", "email": "={{ " + BODY + ".email }}", "content": "={{ " + BODY + ".content }}",
        "tags": "={{ " + BODY + ".tags ?? 'webhook' }}", "source": "n8n"})
    d.respond("Stored", 200, "={{ { ok: true, recordId: $json.recordId, memories: $json.memories?.length ?? 0 } }}",
              after="Memorize")
    d.respond("Memorize failed", 502, error_body("Memorize"), after="Memorize", output=1, at=(3, 1))
    d.respond("Missing fields", 422, "={{ { ok: false, error: 'send JSON with a valid email and content' } }}",
              after="Has email and content", output=1, at=(2, 2))
    return d.document("POST {email, content, tags?} (with the header credential); memrelay stores it as memories.")


def form_lead_slack() -> dict[str, Any]:
    """A form submission: memorize → digest → generated lead summary → Slack."""
    d = Doc("workflow/form-lead-slack", "memrelay: form lead → memorize + digest + summary → Slack")
    d.sticky(setup_webhook("{email, form_name, fields: {…}}", "**Settings**: your Slack incoming-webhook URL."),
             at=(0, -2), width=560, height=340)
    d.webhook("form-lead")
    d.settings({"slackWebhookUrl": ""})
    d.checks("Valid submission", [("={{ " + BODY + ".email }}", EMAIL_RE)])
    d.memrelay("Memorize submission", "memory", "memorize", {
        "entityType": "contact", "email": "={{ " + BODY + ".email }}",
        "content": "=Submitted the form {{ " + BODY + ".form_name }}: {{ JSON.stringify(" + BODY + ".fields ?? {}) }}",
        "tags": "form, lead", "source": "form"})
    d.memrelay("Digest", "memory", "digest", {"entityType": "contact", "email": "={{ " + BODY + ".email }}",
                                              "tokenBudget": 600})
    d.memrelay("Lead summary", "generation", "prompt", {
        "instructions": {"instruction": [{"prompt": "Summarise this new lead for the sales team in three bullet "
                                                    "points and suggest the next action."}]},
        "channel": "slack", "context": "={{ $json.compiledContext }}", "entityType": "contact",
        "email": "={{ " + BODY + ".email }}"})
    _post_to_slack(d, "Post to Slack", "=New lead {{ " + BODY + ".email }}\n{{ $json.outputs.text }}",
                   after="Lead summary", at=(6, 0))
    d.respond("Done", 200, "={{ { ok: true, email: " + BODY + ".email } }}", after="Post to Slack", at=(7, 0))
    for i, step in enumerate(("Memorize submission", "Digest", "Lead summary", "Post to Slack")):
        d.respond(f"{step} failed", 502, error_body(step), after=step, output=1, at=(4 + i, 2))
    d.respond("Invalid submission", 422, "={{ { ok: false, error: 'a valid email is required' } }}",
              after="Valid submission", output=1, at=(3, 3))
    return d.document("Stores a form submission on the contact and posts a generated lead summary to Slack.")


# --- provider triggers ------------------------------------------------------------------------------------
def stripe_payment_onboarding() -> dict[str, Any]:
    """Stripe Checkout completed: remember the payment → onboarding email (SMTP, no n8n footer)."""
    d = Doc("workflow/stripe-payment-onboarding", "memrelay: Stripe checkout completed → onboarding email")
    session = "$('Stripe Trigger').first().json.data.object"
    d.sticky("## Setup\n1. **Stripe account**: a *Stripe API* credential; the Stripe Trigger registers its own "
             "webhook endpoint in Stripe on publish and checks every event's `Stripe-Signature`.\n"
             "2. **memrelay account**: a *memrelay API* credential.\n3. **memrelay SMTP**: an SMTP credential; "
             "**Settings**: the sender address.\n\nEvent: `checkout.session.completed`. Sessions without a "
             "customer email are skipped on purpose.", at=(0, -2), width=560, height=320)
    d.add("Stripe Trigger", "n8n-nodes-base.stripeTrigger", {"events": ["checkout.session.completed"]},
          at=(0, 0), credentials=STRIPE, extra={"webhookId": "a6c4fbc3-5d7f-5c37-9f5c-6d656d72656c"})
    d.settings({"emailFrom": "onboarding@example.com"})
    d.add("Payment", "n8n-nodes-base.set", {"mode": "manual", "includeOtherFields": False, "options": {},
                                           "assignments": {"assignments": [
                                               _field(d, "email", "={{ " + session + ".customer_details?.email ?? '' }}"),
                                               _field(d, "name", "={{ " + session + ".customer_details?.name ?? '' }}"),
                                               _field(d, "amount", "={{ " + ZERO_DECIMAL + ".includes(" + session
                                                      + ".currency) ? String(" + session + ".amount_total) : ("
                                                      + session + ".amount_total / 100).toFixed(2) }}"),
                                               _field(d, "currency", "={{ " + session + ".currency.toUpperCase() }}"),
                                               _field(d, "session", "={{ " + session + ".id }}")]}})
    d.checks("Has customer email", [("={{ $json.email }}", EMAIL_RE)])
    d.memrelay("Remember payment", "memory", "memorize", {
        "entityType": "contact", "email": "={{ $json.email }}",
        "content": "=Paid {{ $json.amount }} {{ $json.currency }} via Stripe Checkout (session {{ $json.session }}).",
        "tags": "stripe, payment", "source": "stripe"}, error_output=False)
    d.memrelay("Onboarding message", "generation", "prompt", {
        "instructions": {"instruction": [{"prompt": "Write an onboarding email thanking the customer for their "
                                                    "purchase and giving the three most useful first steps."}]},
        "channel": "email", "entityType": "contact", "email": "={{ $('Payment').item.json.email }}",
        "memorizeBack": True}, error_output=False)
    d.add("Send onboarding email", "n8n-nodes-base.emailSend", {
        "fromEmail": "={{ " + d.setting("emailFrom") + " }}",
        "toEmail": "={{ $('Payment').item.json.email }}", "subject": "={{ $json.outputs.subject }}",
        "emailFormat": "text", "text": "={{ $json.outputs.body_text }}", "options": {"appendAttribution": False}},
        credentials={"smtp": dict(SMTP_CREDENTIAL)},
        extra={"retryOnFail": True, "maxTries": 3, "waitBetweenTries": 5000, "onError": "stopWorkflow"})
    d.add("No customer email", "n8n-nodes-base.noOp", {}, after="Has customer email", output=1, at=(4, 1))
    return d.document("Stripe checkout.session.completed → payment memorized on the customer → onboarding email.")


def hubspot_contact_welcome() -> dict[str, Any]:
    """HubSpot contact created: remember it (by HubSpot id) → fetch it → enrich → welcome email draft."""
    d = Doc("workflow/hubspot-contact-welcome", "memrelay: HubSpot contact created → enrich → welcome draft")
    d.sticky("## Setup\n1. **HubSpot developer app**: a *HubSpot Developer API* credential (app id, client "
             "secret, developer key); the HubSpot Trigger subscribes the app on publish and checks "
             "`X-HubSpot-Signature`.\n2. **HubSpot app token**: to read the new contact.\n3. **memrelay account**."
             "\n\nHubSpot sends an array of subscription events; each contact creation becomes one item. The "
             "draft is stored on the contact (memory) — nothing is sent.", at=(0, -2), width=600, height=340)
    d.add("HubSpot Trigger", "n8n-nodes-base.hubspotTrigger", {
        "eventsUi": {"eventValues": [{"name": "contact.creation"}]}, "additionalFields": {"maxConcurrentRequests": 5}},
        at=(0, 0), credentials=HUBSPOT_DEVELOPER, extra={"webhookId": "1d0a6e55-8a1a-5b8e-9a11-6d656d72656c"})
    d.add("Contact created", "n8n-nodes-base.filter", {
        "conditions": {"options": {"caseSensitive": True, "leftValue": "", "typeValidation": "strict", "version": 2},
                       "conditions": [{"id": stable_id(d.key, "contact-created"),
                                       "leftValue": "={{ $json.subscriptionType }}", "rightValue": "contact.creation",
                                       "operator": {"type": "string", "operation": "equals"}}],
                       "combinator": "and"}, "options": {}})
    d.memrelay("Remember HubSpot contact", "record", "upsert", {
        "entityType": "contact", "otherIdentifiers": {"customKeyName": "hubspot_id",
                                                       "customKeyValue": "={{ String($json.contactId) }}"},
        "properties": {"property": [{"name": "lead_source", "value": "hubspot"}]}, "source": "hubspot"},
        error_output=False)
    d.add("Get HubSpot contact", "n8n-nodes-base.hubspot", {
        "authentication": "appToken", "resource": "contact", "operation": "get",
        "contactId": {"__rl": True, "mode": "id", "value": "={{ String($('Contact created').item.json.contactId) }}"}, "additionalFields": {}},
        credentials=HUBSPOT_APP_TOKEN,
        extra={"retryOnFail": True, "maxTries": 3, "waitBetweenTries": 2000, "onError": "continueErrorOutput"})
    contact = "$('Get HubSpot contact').item.json.properties"
    d.memrelay("Enrich", "record", "upsert", {
        "entityType": "contact", "email": "={{ " + contact + ".email?.value }}",
        "otherIdentifiers": {"customKeyName": "hubspot_id",
                             "customKeyValue": "={{ String($('Contact created').item.json.contactId) }}"},
        "properties": {"property": [
            {"name": "first_name", "value": "={{ " + contact + ".firstname?.value ?? '' }}"},
            {"name": "last_name", "value": "={{ " + contact + ".lastname?.value ?? '' }}"},
            {"name": "job_title", "value": "={{ " + contact + ".jobtitle?.value ?? '' }}"}]},
        "source": "hubspot"}, error_output=False)
    d.memrelay("Digest", "memory", "digest", {"entityType": "contact", "email": "={{ $json.keys?.email ?? '' }}",
                                              "otherIdentifiers": {"recordId": "={{ $json.recordId }}"},
                                              "tokenBudget": 800}, error_output=False)
    d.memrelay("Welcome email draft", "generation", "prompt", {
        "instructions": {"instruction": [{"prompt": "Draft a short, warm welcome email to this new contact. "
                                                    "Mention their role or company when known. One clear next "
                                                    "step, no invented facts."}]},
        "channel": "email", "context": "={{ $json.compiledContext }}", "entityType": "contact",
        "otherIdentifiers": {"recordId": "={{ $('Enrich').item.json.recordId }}"}, "memorizeBack": True},
        error_output=False)
    d.add("HubSpot unreachable", "n8n-nodes-base.noOp", {}, after="Get HubSpot contact", output=1, at=(4, 1))
    return d.document("HubSpot contact.creation → contact remembered by HubSpot id → enriched → welcome draft "
                      "stored on the contact.")


# --- schedules and manual runs -----------------------------------------------------------------------------
def hubspot_batch() -> dict[str, Any]:
    """Every hour: every HubSpot contact → batch memorize (one background run)."""
    d = Doc("classic/hubspot-batch-memorize", "memrelay: scheduled HubSpot contacts → batch memorize")
    d.sticky("## Setup\n**HubSpot app token** (read contacts) and **memrelay account**. The HubSpot node "
             "follows every page (Return All); the rows go to memrelay as one batch run (check it with "
             "*memrelay → Memory → Get Batch Run*).", at=(0, -2), width=520, height=240)
    d.add("Every hour", "n8n-nodes-base.scheduleTrigger", {"rule": {"interval": [{"field": "hours"}]}}, at=(0, 0))
    d.add("HubSpot contacts", "n8n-nodes-base.hubspot", {
        "authentication": "appToken", "resource": "contact", "operation": "getAll", "returnAll": True,
        "additionalFields": {"propertiesCollection": {"propertiesValues": {
            "properties": ["email", "firstname", "lastname", "company", "jobtitle"]}}}},
        credentials=HUBSPOT_APP_TOKEN,
        extra={"retryOnFail": True, "maxTries": 3, "waitBetweenTries": 5000, "onError": "stopWorkflow"})
    p = "$json.properties"
    d.add("Row", "n8n-nodes-base.set", {"mode": "manual", "includeOtherFields": False, "options": {},
                                       "assignments": {"assignments": [
                                           _field(d, "id", "={{ String($json.vid ?? $json.id) }}"),
                                           _field(d, "email", "={{ " + p + ".email?.value }}"),
                                           _field(d, "firstname", "={{ " + p + ".firstname?.value }}"),
                                           _field(d, "lastname", "={{ " + p + ".lastname?.value }}"),
                                           _field(d, "company", "={{ " + p + ".company?.value }}"),
                                           _field(d, "jobtitle", "={{ " + p + ".jobtitle?.value }}")]}})
    d.add("All rows", "n8n-nodes-base.aggregate", {"aggregate": "aggregateAllItemData",
                                                   "destinationFieldName": "rows", "options": {}})
    mapping = {"entityType": "contact", "email": "email", "customKeyName": "hubspot_id", "customKey": "id",
               "properties": {"first_name": {"sourceField": "firstname"}, "last_name": {"sourceField": "lastname"},
                              "company_name": {"sourceField": "company"}, "job_title": {"sourceField": "jobtitle"}}}
    d.memrelay("Batch memorize", "memory", "batchMemorize", {
        "rows": "={{ $json.rows }}", "mapping": json.dumps(mapping, indent=2), "tags": "hubspot",
        "source": "hubspot"}, error_output=False)
    return d.document("Hourly: every HubSpot contact becomes a memrelay contact (one batch run).")


def sheets_batch() -> dict[str, Any]:
    """Every hour: every row of a Google Sheet → batch memorize."""
    d = Doc("classic/google-sheets-batch-memorize", "memrelay: Google Sheets → batch memorize")
    d.sticky("## Setup\n1. **Google Sheets account** and **memrelay account** credentials.\n2. In *Read sheet* "
             "pick your spreadsheet (or paste its id: the part of the URL between `/d/` and `/edit`) and the "
             "sheet.\n3. Columns: `email`, `first_name`, `last_name`, `company`, `notes` (notes become memories)."
             , at=(0, -2), width=560, height=260)
    d.add("Every hour", "n8n-nodes-base.scheduleTrigger", {"rule": {"interval": [{"field": "hours"}]}}, at=(0, 0))
    d.add("Read sheet", "n8n-nodes-base.googleSheets", {
        "documentId": {"__rl": True, "value": "", "mode": "list", "cachedResultName": ""},
        "sheetName": {"__rl": True, "value": "gid=0", "mode": "list", "cachedResultName": "Sheet1"},
        "options": {}}, credentials=SHEETS,
        extra={"retryOnFail": True, "maxTries": 3, "waitBetweenTries": 5000, "onError": "stopWorkflow"})
    d.add("All rows", "n8n-nodes-base.aggregate", {"aggregate": "aggregateAllItemData",
                                                   "destinationFieldName": "rows", "options": {}})
    mapping = {"entityType": "contact", "email": "email",
               "properties": {"first_name": {"sourceField": "first_name"}, "last_name": {"sourceField": "last_name"},
                              "company_name": {"sourceField": "company"},
                              "notes": {"sourceField": "notes", "extractMemories": True}}}
    d.memrelay("Batch memorize", "memory", "batchMemorize", {
        "rows": "={{ $json.rows }}", "mapping": json.dumps(mapping, indent=2), "tags": "sheets",
        "source": "google_sheets"}, error_output=False)
    return d.document("Hourly: every row of a sheet (email, first_name, last_name, company, notes) is imported.")


def digest_prompt_slack() -> dict[str, Any]:
    """By hand: one contact's digest → a generated Slack brief → Slack incoming webhook."""
    d = Doc("classic/record-digest-prompt-slack", "memrelay: record → smart digest + prompt → Slack")
    d.sticky("## Setup\n**memrelay account** credential; in **Settings** the contact's email and your Slack "
             "incoming-webhook URL. Then *Execute workflow*.", at=(0, -2), width=460, height=200)
    d.add("Manual trigger", "n8n-nodes-base.manualTrigger", {}, at=(0, 0))
    d.settings({"email": "ada@example.com", "slackWebhookUrl": ""})
    d.memrelay("Smart digest", "memory", "digest", {"entityType": "contact", "email": "={{ $json.email }}",
                                                    "tokenBudget": 800}, error_output=False)
    d.memrelay("Prompt", "generation", "prompt", {
        "instructions": {"instruction": [{"prompt": "Write a short account brief for the team: who this is, what "
                                                    "matters now, one suggested next step."}]},
        "channel": "slack", "context": "={{ $json.compiledContext }}"}, error_output=False)
    _post_to_slack(d, "Slack", "={{ $json.outputs.text }}", after="Prompt", at=(4, 0))
    d.add("Slack failed", "n8n-nodes-base.noOp", {}, after="Slack",
          output=1, at=(5, 1))
    return d.document("Set the contact's email and your Slack incoming-webhook URL in Settings, then run.")


def export_search_csv() -> dict[str, Any]:
    """By hand: every record of a type (all pages) → one CSV file."""
    d = Doc("classic/export-search-csv", "memrelay: export search → CSV")
    d.sticky("## Setup\n**memrelay account** credential; in **Settings** the record type. *Search* follows "
             "every page (Return All, 200 per request); add columns in *Row*.", at=(0, -2), width=460, height=200)
    d.add("Manual trigger", "n8n-nodes-base.manualTrigger", {}, at=(0, 0))
    d.settings({"type": "contact"})
    d.memrelay("Search", "record", "search", {"searchType": "={{ $json.type }}", "returnAll": True,
                                              "pageSize": 200}, error_output=False)
    pr = "$json.properties"
    d.add("Row", "n8n-nodes-base.set", {"mode": "manual", "includeOtherFields": False, "options": {},
                                       "assignments": {"assignments": [
                                           _field(d, "recordId", "={{ $json.recordId }}"),
                                           _field(d, "type", "={{ $json.type }}"),
                                           _field(d, "email", "={{ $json.keys?.email ?? '' }}"),
                                           _field(d, "first_name", "={{ " + pr + ".first_name?.value ?? '' }}"),
                                           _field(d, "last_name", "={{ " + pr + ".last_name?.value ?? '' }}"),
                                           _field(d, "company_name", "={{ " + pr + ".company_name?.value ?? '' }}"),
                                           _field(d, "updatedAt", "={{ $json.updatedAt ?? '' }}")]}})
    d.add("CSV file", "n8n-nodes-base.convertToFile", {"operation": "csv", "options": {
        "fileName": "memrelay-export.csv"}})
    return d.document("Exports every record of a type (all pages) as memrelay-export.csv.")


def daily_deferred_digest() -> dict[str, Any]:
    """Every morning: each contact with deferred signals → its digest → Slack."""
    d = Doc("workflow/daily-deferred-digest", "memrelay: daily digest of deferred signals per contact")
    d.sticky("## Setup\n**memrelay account** credential; in **Settings** your Slack incoming-webhook URL. "
             "Every day at 08:00 each contact with memories tagged `deferred` in the last 24 h gets one "
             "digest posted.", at=(0, -2), width=460, height=220)
    d.add("Every morning", "n8n-nodes-base.scheduleTrigger", {
        "rule": {"interval": [{"field": "cronExpression", "expression": "0 8 * * *"}]}}, at=(0, 0))
    d.settings({"slackWebhookUrl": ""})
    d.memrelay("Deferred signals", "memory", "signals", {"signalTag": "deferred", "sinceHours": 24,
                                                         "signalType": "contact", "signalLimit": 500},
               error_output=False)
    d.memrelay("Digest", "memory", "digest", {"entityType": "contact",
                                              "otherIdentifiers": {"recordId": "={{ $json.record_id }}"},
                                              "tokenBudget": 600}, error_output=False)
    _post_to_slack(d, "Post to Slack", "=Deferred signals for {{ $('Deferred signals').item.json.email }}:\n"
                                       "{{ $json.compiledContext }}", after="Digest", at=(4, 0))
    d.add("Slack failed", "n8n-nodes-base.noOp", {}, after="Post to Slack", output=1, at=(5, 1))
    return d.document("Each day, post one digest per contact that collected deferred signals in the last 24 hours.")


def _field(d: Doc, name: str, value: str) -> dict[str, Any]:
    return {"id": stable_id(d.key, "field", name), "name": name, "value": value, "type": "string"}


TEMPLATES: dict[str, Callable[[], dict[str, Any]]] = {
    "webhook-memorize": webhook_memorize,
    "hubspot-batch-memorize": hubspot_batch,
    "google-sheets-batch-memorize": sheets_batch,
    "record-digest-prompt-slack": digest_prompt_slack,
    "export-search-csv": export_search_csv,
    "workflow-form-lead-slack": form_lead_slack,
    "workflow-stripe-payment-onboarding": stripe_payment_onboarding,
    "workflow-hubspot-contact-welcome": hubspot_contact_welcome,
    "workflow-daily-deferred-digest": daily_deferred_digest,
}
