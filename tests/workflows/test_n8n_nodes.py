"""The n8n-nodes-memrelay package in real n8n (pinned 2.41.1 on Node 24): built and linted with @n8n/node-cli,
installed as a community package, then every action operation executed by ``n8n execute`` against a running
``memrelay up`` (each effect checked through memrelay's API), and the trigger node subscribing on activation,
receiving a real signed delivery, refusing a forged one and unsubscribing on deactivation.
Run with ``make test-n8n`` (the first run installs n8n)."""

from __future__ import annotations

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

from tests.support.fake_llm import FakeLLMServer
from tests.workflows.memrelay_server import Memrelay, running_memrelay
from tests.workflows.n8n_runtime import Install, N8n, install_package
from tests.workflows.sinks import schema_responder

pytestmark = [pytest.mark.n8n, pytest.mark.timeout(3600)]

NODE = "n8n-nodes-memrelay.memrelay"
TRIGGER = "n8n-nodes-memrelay.memrelayTrigger"
CREDENTIAL = {"id": "memrelayApiCred1", "name": "memrelay"}
CONTACTS = [f"starter{i}@example.com" for i in range(7)]


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(responder=schema_responder) as srv:
        yield srv


@pytest.fixture(scope="module")
def memrelay(tmp_path_factory: pytest.TempPathFactory, llm: FakeLLMServer) -> Iterator[Memrelay]:
    with running_memrelay(tmp_path_factory.mktemp("memrelay"), llm.base_url) as m:
        yield m


@pytest.fixture(scope="module")
def n8n(tmp_path_factory: pytest.TempPathFactory, memrelay: Memrelay, n8n_install: Install,
        node_package: Path) -> N8n:
    folder = tmp_path_factory.mktemp("n8n")
    install_package(node_package, folder, n8n_install)
    n = N8n(n8n_install, folder)
    n.import_json("credentials", [{**CREDENTIAL, "type": "memrelayApi",
                                   "data": {"baseUrl": memrelay.url, "apiKey": memrelay.key}}], "credentials.json")
    return n


class Flow:
    """A manual-trigger workflow whose memrelay nodes run one after another, each once."""

    def __init__(self, name: str):
        self.doc: dict[str, Any] = {
            "id": name.replace("-", "")[:16].ljust(16, "0"), "name": name, "active": False,
            "settings": {"executionOrder": "v1"}, "connections": {}, "pinData": {},
            "nodes": [{"id": f"{name}-start", "name": "Start", "type": "n8n-nodes-base.manualTrigger",
                       "typeVersion": 1, "position": [0, 0], "parameters": {}}]}

    def add(self, node_name: str, resource: str, operation: str, **params: Any) -> Flow:
        prev = self.doc["nodes"][-1]["name"]
        self.doc["nodes"].append({
            "id": f"{self.doc['name']}-{len(self.doc['nodes'])}", "name": node_name, "type": NODE, "typeVersion": 1,
            "position": [200 * len(self.doc["nodes"]), 0], "executeOnce": True, "credentials": {
                "memrelayApi": CREDENTIAL}, "parameters": {"resource": resource, "operation": operation, **params}})
        self.doc["connections"][prev] = {"main": [[{"node": node_name, "type": "main", "index": 0}]]}
        return self


def outputs(result: Any) -> dict[str, list[dict[str, Any]]]:
    """Node name → its output items' JSON, from ``n8n execute --rawOutput``; fails on any node error."""
    run = result.get("data", result)["resultData"]
    assert not run.get("error"), json.dumps(run.get("error"))[:3000]
    out: dict[str, list[dict[str, Any]]] = {}
    for name, runs in run["runData"].items():
        assert not runs[0].get("error"), (name, json.dumps(runs[0]["error"])[:3000])
        out[name] = [item["json"] for item in (runs[0]["data"]["main"][0] or [])]
    return out


def props(memrelay: Memrelay, email: str) -> dict[str, Any]:
    found = memrelay.post("/api/v1/search", {"type": "contact", "email": email})["results"]
    return {k: v["value"] for k, v in found[0]["properties"].items()} if found else {}


def test_every_action_operation_in_real_n8n(n8n: N8n, memrelay: Memrelay) -> None:
    m = memrelay
    m.post("/api/v1/collections", {"collectionName": "Sales", "entityType": "contact", "properties": [
        {"propertyName": "plan", "type": "text", "description": "Subscription plan"}]})
    for email in CONTACTS:
        m.post("/api/v1/upsert", {"type": "contact", "email": email, "properties": {"plan": "starter"}})
    for email in ("gone@example.com", "erase@example.com"):
        m.post("/api/v1/memorize", {"content": f"{email} asked for a quote.", "email": email})
    agent = m.post("/api/v1/agents", {"name": "Tagline", "spec": {
        "instructions": [{"prompt": "Write a tagline about {{ input }}"}], "outputs": [{"name": "text"}]}})
    ada = {"entityType": "contact", "email": "ada@example.com"}
    rows = [{"email": "row1@example.com", "firstname": "Rowan"}, {"email": "row2@example.com", "firstname": "Rhea"}]
    flow = (Flow("node-pack-operations")
            .add("Upsert", "record", "upsert", **ada, properties={"property": [
                {"name": "plan", "value": "pro"}, {"name": "lifecycle_stage", "value": "lead"}]})
            .add("Update property", "record", "update", **ada, propertyName="lifecycle_stage", change="set",
                 propertyValue="customer")
            .add("Add interest", "record", "update", **ada, propertyName="interests", change="arrayPush",
                 propertyValue="analytics")
            .add("Bulk update", "record", "bulkUpdate", **ada, properties={"property": [
                {"name": "plan", "value": "enterprise"}, {"name": "lifecycle_stage", "value": "evangelist"}]})
            .add("Get", "record", "get", **ada)
            .add("History", "record", "propertyHistory", **ada, historyProperty="lifecycle_stage", limit=10)
            .add("Search", "record", "search", searchType="contact", returnAll=True, pageSize=3,
                 conditions={"condition": [{"property": "plan", "operator": "EQ", "value": "starter"}]})
            .add("Memorize", "memory", "memorize", **ada, content="Ada prefers async updates over calls.",
                 tags="n8n, notes")
            .add("Smart recall", "memory", "smartRecall", **ada, query="how does Ada like updates?", limit=5)
            .add("Digest", "memory", "digest", **ada, tokenBudget=400)
            .add("Similar", "memory", "similar", **ada, topK=5)
            .add("Segment", "memory", "segment", entityType="contact", text="async updates", pageSize=5)
            .add("Batch memorize", "memory", "batchMemorize", rows=json.dumps(rows), mapping=json.dumps(
                {"entityType": "contact", "email": "email", "properties": {"first_name": {"sourceField": "firstname"}}}),
                 tags="import")
            .add("Batch run", "memory", "batchStatus", runId="={{ $('Batch memorize').first().json.runId }}")
            .add("Create guideline", "governance", "createGuideline", name="Tone",
                 content="# Tone\nAlways answer politely and mention pricing only on request.",
                 additionalFields={"triggerKeywords": "pricing, tone"})
            .add("Get guideline", "governance", "getGuideline",
                 guidelineId="={{ $('Create guideline').first().json.id }}")
            .add("Update guideline", "governance", "updateGuideline",
                 guidelineId="={{ $('Create guideline').first().json.id }}",
                 updateFields={"description": "House tone of voice"})
            .add("Guidelines", "governance", "getGuidelines")
            .add("Smart guidelines", "governance", "smartGuidelines", message="What tone for a pricing email?")
            .add("Delete guideline", "governance", "deleteGuideline",
                 guidelineId="={{ $('Create guideline').first().json.id }}")
            .add("Prompt", "generation", "prompt", **ada, instructions={"instruction": [
                {"prompt": "Write a one-line account note."}]}, outputs={"output": [{"name": "note"}]},
                 memorizeBack=True)
            .add("Run agent", "generation", "runAgent", agentId=agent["id"], input="memory for agents")
            .add("Collections", "collection", "getAll", collectionType="contact")
            .add("Delete", "record", "delete", entityType="contact", email="gone@example.com")
            .add("Cancel deletion", "record", "cancelDeletion", entityType="contact", email="gone@example.com")
            .add("Erase", "record", "erase", entityType="contact", email="erase@example.com"))
    n8n.import_workflows({"ops.json": flow.doc})
    out = outputs(n8n.execute(flow.doc["id"]))

    # records
    assert out["Upsert"][0]["recordId"].startswith("rec_")
    assert out["Update property"][0]["newValue"] == "customer"
    ada_now = props(m, "ada@example.com")
    assert (ada_now["plan"], ada_now["lifecycle_stage"], ada_now["interests"]) == (
        "enterprise", "evangelist", ["analytics"]), ada_now
    assert out["Get"][0]["memories"], out["Get"]
    history = [e["value"] for e in out["History"]]
    assert history[:3] == ["evangelist", "customer", "lead"], out["History"]
    found = sorted(r["keys"]["email"] for r in out["Search"])
    assert found == sorted(CONTACTS), "search must follow every page (7 records, 3 per page)"
    # memory
    recall = m.post("/api/v1/recall", {"type": "contact", "email": "ada@example.com"})
    assert any("async updates" in mem["text"] for mem in recall["freeformMemories"])
    assert any("async" in r.get("text", "") for r in out["Smart recall"][0]["results"]), out["Smart recall"]
    assert "compiledContext" in out["Digest"][0] and "ada@example.com" in out["Digest"][0]["compiledContext"]
    assert "results" in out["Similar"][0] or "tiers" in out["Similar"][0], out["Similar"]
    assert "tiers" in out["Segment"][0] or "results" in out["Segment"][0], out["Segment"]
    run_id = out["Batch memorize"][0]["runId"]
    assert out["Batch run"][0]["runId"] == run_id
    m.wait_for(lambda: props(m, "row2@example.com").get("first_name") == "Rhea", "the batch rows")
    # governance
    gid = out["Create guideline"][0]["id"]
    assert out["Get guideline"][0]["name"] == "Tone"
    assert out["Update guideline"][0]["description"] == "House tone of voice"
    assert gid in [g["id"] for g in out["Guidelines"]]
    assert "Tone" in json.dumps(out["Smart guidelines"][0])
    assert m.call("GET", f"/api/v1/guidelines/{gid}", ok=False).status_code == 404
    # generation
    assert out["Prompt"][0]["outputs"]["note"]
    assert any("note" in mem["text"].lower() or "generated" in mem["text"].lower()
               for mem in m.post("/api/v1/recall", {"type": "contact", "email": "ada@example.com"})[
                   "freeformMemories"]), "memorize back"
    assert out["Run agent"][0]["outputs"]
    assert "Sales" in [c["collectionName"] for c in out["Collections"]]
    # deletion
    assert out["Delete"][0] and out["Cancel deletion"][0]
    assert m.post("/api/v1/search", {"type": "contact", "email": "gone@example.com"})["results"], "restored"
    assert not m.post("/api/v1/search", {"type": "contact", "email": "erase@example.com"})["results"], "erased"


def test_trigger_subscribes_verifies_and_unsubscribes(n8n: N8n, memrelay: Memrelay, tmp_path: Path) -> None:
    m = memrelay
    m.call("PUT", "/api/v1/webhooks/allowlist", {"hosts": ["127.0.0.1"]})
    m.post("/api/v1/upsert", {"type": "contact", "email": "sink@example.com", "properties": {}})
    webhook_id = "6a1f3a52-5f6e-4c2e-9a55-6d656d72656c"
    doc = {"id": "memrelayTrigger01", "name": "trigger", "active": False, "settings": {"executionOrder": "v1"},
           "pinData": {}, "nodes": [
               {"id": "t1", "name": "memrelay Trigger", "type": TRIGGER, "typeVersion": 1, "position": [0, 0],
                "webhookId": webhook_id, "credentials": {"memrelayApi": CREDENTIAL},
                "parameters": {"event": "record.created", "options": {"entityType": "contact"}}},
               {"id": "t2", "name": "Note it", "type": NODE, "typeVersion": 1, "position": [200, 0],
                "credentials": {"memrelayApi": CREDENTIAL}, "parameters": {
                    "resource": "memory", "operation": "memorize", "entityType": "contact",
                    "email": "sink@example.com", "tags": "trigger",
                    "content": "=Saw {{ $json.event }} for record {{ $json.recordId }}"}}],
           "connections": {"memrelay Trigger": {"main": [[{"node": "Note it", "type": "main", "index": 0}]]}}}
    n8n.import_workflows({"trigger.json": doc})
    n8n.cli("publish:workflow", f"--id={doc['id']}")
    log = tmp_path / "n8n.log"
    server = n8n.start(log)
    try:
        hooks = m.wait_for(lambda: [h for h in m.get("/api/v1/webhooks?kind=zapier_hook")["webhooks"]
                                    if h["url"].endswith(f"/webhook/{webhook_id}/webhook")],
                           f"n8n to subscribe (log: {log})", timeout=180)
        assert hooks[0]["eventTypes"] == ["record.created"]

        created = m.post("/api/v1/upsert", {"type": "contact", "email": "newbie@example.com",
                                            "properties": {}})
        m.wait_for(lambda: any(created["recordId"] in mem["text"] for mem in m.post(
            "/api/v1/recall", {"type": "contact", "email": "sink@example.com"})["freeformMemories"]),
            "the signed delivery to run the workflow")

        url = f"{n8n.url}/webhook/{webhook_id}/webhook"
        forged = requests.post(url, json={"event": "record.created", "recordId": "rec_forged"}, timeout=30,
                               headers={"webhook-id": "msg_x", "webhook-timestamp": str(int(time.time())),
                                        "webhook-signature": "v1,AAAA"})
        assert forged.status_code == 401, forged.text
        unsigned = requests.post(url, json={"event": "record.created", "recordId": "rec_forged"}, timeout=30)
        assert unsigned.status_code == 401, unsigned.text

        n8n.login()
        # the credential's test request (GET /api/v1/me) and the pickers' loadOptions, as the editor calls them
        cred = {**CREDENTIAL, "type": "memrelayApi", "data": {"baseUrl": m.url + "/", "apiKey": m.key}}
        assert n8n.rest("POST", "/credentials/test", {"credentials": cred})["status"] == "OK"
        wrong = {**cred, "data": {"baseUrl": m.url, "apiKey": "mr_not_a_key"}}
        assert n8n.rest("POST", "/credentials/test", {"credentials": wrong})["status"] == "Error"

        def options(method: str, path: str, **params: Any) -> list[str]:
            return [o["value"] for o in n8n.rest("POST", "/dynamic-node-parameters/options", {
                "path": path, "methodName": method, "nodeTypeAndVersion": {"name": NODE, "version": 1},
                "currentNodeParameters": params, "credentials": {"memrelayApi": CREDENTIAL}})]

        assert {"contact", "company"} <= set(options("getEntityTypes", "parameters.entityType",
                                                     resource="record", operation="upsert"))
        assert "lifecycle_stage" in options("getProperties", "parameters.propertyName", resource="record",
                                            operation="update", entityType="contact")
        assert "employee_count" in options("getProperties", "parameters.propertyName", resource="record",
                                           operation="update", entityType="company")
        n8n.rest("POST", f"/workflows/{doc['id']}/deactivate", {})
        m.wait_for(lambda: not [h for h in m.get("/api/v1/webhooks?kind=zapier_hook")["webhooks"]
                                if webhook_id in h["url"]], "n8n to unsubscribe")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
    notes = [mem["text"] for mem in m.post("/api/v1/recall", {"type": "contact", "email": "sink@example.com"})[
        "freeformMemories"]]
    assert not any("rec_forged" in t for t in notes), notes


def test_trigger_signature_check_matches_the_standard_webhooks_test_vector(n8n_install: Install,
                                                                           node_package: Path) -> None:
    """The published Standard Webhooks vector verifies; a changed body, id, secret or an old timestamp do not."""
    script = """
const { verifyStandardWebhook: verify } = require('./dist/nodes/MemrelayTrigger/MemrelayTrigger.node.js');
const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', ts = 1614265330;
const headers = { 'webhook-id': 'msg_p5jXN8AQM9LWM0D4loKWxJek', 'webhook-timestamp': String(ts),
  'webhook-signature': 'v1,bm9ldHZhbGlk v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=' };
const body = Buffer.from('{"test": 2432232314}');
console.log(JSON.stringify([
  verify(secret, headers, body, ts),
  verify(secret, headers, Buffer.from('{"test": 2432232315}'), ts),
  verify(secret, { ...headers, 'webhook-id': 'msg_other' }, body, ts),
  verify('whsec_' + Buffer.from('another key').toString('base64'), headers, body, ts),
  verify(secret, headers, body, ts + 301),
  verify(secret, { 'webhook-id': 'msg_x' }, body, ts),
]));"""
    proc = subprocess.run([str(n8n_install.node), "-e", script], cwd=node_package, capture_output=True, text=True,
                          timeout=60, check=True)
    ok, body, msg_id, key, late, missing = json.loads(proc.stdout)
    assert ok is None
    assert body == msg_id == key == "no signature matches"
    assert late == "timestamp outside the tolerance" and missing.startswith("missing")
