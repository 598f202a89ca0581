"""Real n8n 2.41.1 with the memrelay node pack: import every template, execute the manual ones and the provider
ones (Stripe Checkout, HubSpot subscription events: genuine payloads as their trigger's output), publish the
webhook ones and call them like their callers would (authenticated, unauthenticated, invalid, failing), and check
memrelay's side effects. Run with ``make test-n8n`` (the first run installs n8n)."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from memrelay.workflows.n8n.build import TEMPLATES_DIR
from memrelay.workflows.n8n.document import API_CREDENTIAL, HOOK_CREDENTIAL, SETTINGS, SMTP_CREDENTIAL
from memrelay.workflows.n8n.templates import HUBSPOT_APP_TOKEN, HUBSPOT_DEVELOPER, STRIPE
from tests.support.fake_llm import FakeLLMServer
from tests.workflows.memrelay_server import Memrelay, running_memrelay
from tests.workflows.n8n_runtime import Install, N8n, install_package, still_starting
from tests.workflows.sinks import HttpSink, SmtpSink, schema_responder
from tests.workflows.test_n8n_nodes import outputs

pytestmark = [pytest.mark.n8n, pytest.mark.timeout(3600)]

REPO = Path(__file__).resolve().parents[2]
STRIPE_EVENT = json.loads((REPO / "connectors" / "stripe" / "fixtures" / "checkout_session_completed.json").read_text())
HUBSPOT_EVENTS = (json.loads((REPO / "connectors" / "hubspot" / "fixtures" / "contact_creation.json").read_text())
                  + json.loads((REPO / "connectors" / "hubspot" / "fixtures" / "batch.json").read_text()))
HOOK_HEADER = {"X-Memrelay-Token": "n8n-test-shared-secret-0123456789"}
EXPORTED = 205  # more than one page of the template's Search (200 per request)


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(responder=schema_responder) as srv:
        yield srv


@pytest.fixture(scope="module")
def memrelay(tmp_path_factory: pytest.TempPathFactory, llm: FakeLLMServer) -> Iterator[Memrelay]:
    with running_memrelay(tmp_path_factory.mktemp("memrelay"), llm.base_url) as m:
        yield m


def hubspot_trigger_output(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What n8n's HubSpot Trigger emits for a verified delivery: one item per event, ``objectId`` renamed after
    the object type (its own webhook(): contactId, companyId, dealId, ticketId)."""
    out = []
    for ev in copy.deepcopy(events):
        for kind in ("contact", "company", "deal", "ticket"):
            if kind in ev["subscriptionType"]:
                ev[f"{kind}Id"] = ev["objectId"]
        ev.pop("objectId")
        out.append({"json": ev})
    return out


def configured(doc: dict[str, Any], values: dict[str, str], pin: dict[str, Any] | None = None) -> dict[str, Any]:
    """The template with its Settings node filled in, as a user does after import (and a trigger's output
    pinned when the trigger cannot run offline)."""
    doc = copy.deepcopy(doc)
    for node in doc["nodes"]:
        if node["name"] == SETTINGS:
            for a in node["parameters"]["assignments"]["assignments"]:
                a["value"] = values.get(a["name"], a["value"])
    if pin:  # `n8n execute` starts at a manual trigger: it feeds a node of the trigger's name emitting the payload
        for node in doc["nodes"]:
            if node["name"] in pin:
                items = json.dumps([item["json"] for item in pin[node["name"]]])
                node.update(type="n8n-nodes-base.code", typeVersion=2, parameters={
                    "jsCode": f"return {items}.map((json) => ({{ json }}));"})
                node.pop("credentials", None)
                node.pop("webhookId", None)
                doc["nodes"].append({"id": "test-start", "name": "Start", "type": "n8n-nodes-base.manualTrigger",
                                     "typeVersion": 1, "position": [0, -400], "parameters": {}})
                doc["connections"]["Start"] = {"main": [[{"node": node["name"], "type": "main", "index": 0}]]}
    return doc


def test_templates_in_real_n8n(memrelay: Memrelay, llm: FakeLLMServer, n8n_install: Install, node_package: Path,
                               tmp_path: Path) -> None:
    slack, smtp = HttpSink(), SmtpSink()
    try:
        _run(memrelay, slack, smtp, n8n_install, node_package, tmp_path)
    finally:
        slack.close()
        smtp.close()


def _run(m: Memrelay, slack: HttpSink, smtp: SmtpSink, inst: Install, package: Path, tmp: Path) -> None:
    folder = tmp / "n8n"
    folder.mkdir()
    install_package(package, folder, inst)
    n8n = N8n(inst, folder)
    n8n.import_json("credentials", [
        {**API_CREDENTIAL, "type": "memrelayApi", "data": {"baseUrl": m.url, "apiKey": m.key}},
        {**HOOK_CREDENTIAL, "type": "httpHeaderAuth", "data": {"name": "X-Memrelay-Token",
                                                               "value": HOOK_HEADER["X-Memrelay-Token"]}},
        {**SMTP_CREDENTIAL, "type": "smtp", "data": {"user": "", "password": "", "host": "127.0.0.1",
                                                     "port": smtp.port, "secure": False, "disableStartTls": True}},
        {**STRIPE["stripeApi"], "type": "stripeApi", "data": {"secretKey": "sk_test_offline"}},
        {**HUBSPOT_DEVELOPER["hubspotDeveloperApi"], "type": "hubspotDeveloperApi", "data": {
            "clientId": "1", "clientSecret": "offline", "apiKey": "offline", "appId": "54321"}},
        {**HUBSPOT_APP_TOKEN["hubspotAppToken"], "type": "hubspotAppToken", "data": {"appToken": "offline"}},
    ], "credentials.json")
    values = {"slackWebhookUrl": slack.url, "email": "ada@example.com", "emailFrom": "onboarding@example.com"}
    docs = {p.name: json.loads(p.read_text()) for p in sorted(TEMPLATES_DIR.glob("*.json"))
            if p.name not in ("package.json", "package-lock.json")}
    pins = {"workflow-stripe-payment-onboarding.json": {"Stripe Trigger": [{"json": STRIPE_EVENT}]},
            "workflow-hubspot-contact-welcome.json": {"HubSpot Trigger": hubspot_trigger_output(HUBSPOT_EVENTS)}}
    n8n.import_workflows({name: configured(doc, values, pins.get(name)) for name, doc in docs.items()})

    # manual templates: `n8n execute`
    m.post("/api/v1/memorize", {"content": "Ada leads the analytics team and asked about SSO.",
                                "email": "ada@example.com", "tags": ["crm"]})
    outputs(n8n.execute(docs["record-digest-prompt-slack.json"]["id"]))
    assert slack.posts[-1] == {"text": "New lead worth a call. Next action: reply today."}
    for i in range(EXPORTED):
        m.post("/api/v1/upsert", {"type": "contact", "email": f"export{i:03d}@example.com",
                                  "properties": {"first_name": f"Ex{i}"}})
    total = m.post("/api/v1/search", {"type": "contact", "pageSize": 1})["totalMatched"]
    assert total > 200
    out = outputs(n8n.execute(docs["export-search-csv.json"]["id"]))
    rows = out["Row"]
    assert len(rows) == total, "export-search-csv must follow hasMore past the first page"
    assert {"export000@example.com", f"export{EXPORTED - 1:03d}@example.com"} <= {r["email"] for r in rows}
    assert out["CSV file"], "the CSV file item"

    # provider templates: the genuine payload as the trigger's output (n8n's Stripe / HubSpot triggers check the
    # provider signature and answer the provider themselves; they register with the provider's API on publish,
    # which this offline machine cannot reach, so a node of the same name stands in, emitting the payload)
    out = outputs(n8n.execute(docs["workflow-stripe-payment-onboarding.json"]["id"]))
    bo = m.post("/api/v1/recall", {"type": "contact", "email": "bo@globex.example"})
    assert any("120000 JPY" in mem["text"] and "Stripe" in mem["text"] for mem in bo["freeformMemories"]), [
        mem["text"] for mem in bo["freeformMemories"]]
    (mail,) = smtp.messages
    assert [r.lower() for r in mail["rcpt"]] == ["bo@globex.example"] and "Welcome aboard" in mail["data"]
    assert "n8n" not in mail["data"].lower(), "no n8n attribution footer on customer emails"
    no_email = copy.deepcopy(STRIPE_EVENT)
    no_email["data"]["object"]["customer_details"]["email"] = None
    doc = configured(docs["workflow-stripe-payment-onboarding.json"], values,
                     {"Stripe Trigger": [{"json": no_email}]})
    doc["id"] = "stripeNoEmail0001"
    n8n.import_workflows({"stripe-no-email.json": doc})
    out = outputs(n8n.execute(doc["id"]))
    assert out["No customer email"] and "Remember payment" not in out and len(smtp.messages) == 1

    out = outputs(n8n.execute(docs["workflow-hubspot-contact-welcome.json"]["id"]))
    assert [i["contactId"] for i in out["Contact created"]] == [123], "only contact.creation events go on"
    found = m.post("/api/v1/search", {"type": "contact", "customKeyName": "hubspot_id", "customKeyValue": "123"})
    assert found["results"] and found["results"][0]["properties"]["lead_source"]["value"] == "hubspot"
    assert out["HubSpot unreachable"], "HubSpot's API is unreachable here: the error output takes it"

    # webhook templates: publish, start n8n, call /webhook/<path>
    webhooks = [n for n, d in docs.items() if any(x["type"] == "n8n-nodes-base.webhook" for x in d["nodes"])]
    assert sorted(webhooks) == ["webhook-memorize.json", "workflow-form-lead-slack.json"]
    for name in webhooks:
        n8n.cli("publish:workflow", f"--id={docs[name]['id']}")
    log = tmp / "n8n.log"
    server = n8n.start(log)
    try:
        base = f"{n8n.url}/webhook"
        ok = _post_when_ready(f"{base}/memrelay-memorize", {"email": "bob@example.com", "content": "Bob prefers "
                              "quarterly billing.", "tags": "billing"}, server, log)
        assert ok.status_code == 200 and _json(ok)["ok"] is True and _json(ok)["recordId"], ok.text
        anonymous = requests.post(f"{base}/memrelay-memorize", json={"email": "x@example.com", "content": "x"},
                                  timeout=60)
        assert anonymous.status_code in (401, 403), anonymous.text
        bad = requests.post(f"{base}/memrelay-memorize", json={"email": "not-an-email"}, headers=HOOK_HEADER,
                            timeout=60)
        assert bad.status_code == 422 and _json(bad)["ok"] is False, bad.text
        failing = requests.post(f"{base}/memrelay-memorize", json={"email": "big@example.com",
                                                                   "content": "x" * 200_001},
                                headers=HOOK_HEADER, timeout=120)
        assert failing.status_code == 502 and _json(failing)["step"] == "Memorize", failing.text

        lead = requests.post(f"{base}/form-lead", json={"email": "cy@example.com", "form_name": "Demo request",
                                                        "fields": {"message": "Need a memory layer for agents"}},
                             headers=HOOK_HEADER, timeout=120)
        assert lead.status_code == 200 and _json(lead) == {"ok": True, "email": "cy@example.com"}, lead.text
        invalid = requests.post(f"{base}/form-lead", json={"form_name": "Demo request"}, headers=HOOK_HEADER,
                                timeout=60)
        assert invalid.status_code == 422, invalid.text
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)

    bob = m.post("/api/v1/recall", {"email": "bob@example.com", "type": "contact"})
    assert any("quarterly billing" in mem["text"] for mem in bob["freeformMemories"])
    assert not m.post("/api/v1/search", {"type": "contact", "email": "big@example.com"})["results"]
    assert any(p["text"].startswith("New lead cy@example.com") for p in slack.posts)
    cy = m.post("/api/v1/recall", {"email": "cy@example.com", "type": "contact"})
    assert any("Demo request" in mem["text"] for mem in cy["freeformMemories"])


def _json(resp: requests.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        raise AssertionError(f"HTTP {resp.status_code}, not JSON: {resp.text[:1000]!r}") from None


def _post_when_ready(url: str, body: dict[str, Any], server: subprocess.Popen[bytes], log: Path) -> requests.Response:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert server.poll() is None, log.read_text()[-3000:]
        try:
            resp = requests.post(url, json=body, headers=HOOK_HEADER, timeout=120)
            if not still_starting(resp):
                return resp
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} never became ready:\n{log.read_text()[-3000:]}")
