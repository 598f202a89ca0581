"""Real n8n: import every template, execute the manual- and webhook-triggered ones against a running
`memrelay up`, and check memrelay's side effects. Run with `make test-n8n` (the first run installs n8n)."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from memrelay.workflows.n8n.build import TEMPLATES_DIR
from memrelay.workflows.n8n.document import API_CREDENTIAL, CONFIG, SMTP_CREDENTIAL
from tests.support.fake_llm import FakeLLMServer
from tests.workflows.n8n_runtime import N8n, free_port, install
from tests.workflows.sinks import HttpSink, SmtpSink, schema_responder

pytestmark = [pytest.mark.n8n, pytest.mark.timeout(2400)]


class Memrelay:
    def __init__(self, url: str, key: str):
        self.url, self.headers = url, {"Authorization": f"Bearer {key}"}

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = requests.post(self.url + path, json=body, headers=self.headers, timeout=60)
        assert resp.status_code < 300 and resp.json()["success"] is True, resp.text
        return resp.json()["data"]


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(responder=schema_responder) as srv:
        yield srv


@pytest.fixture(scope="module")
def memrelay(tmp_path_factory: pytest.TempPathFactory, llm: FakeLLMServer) -> Iterator[Memrelay]:
    """`python -m memrelay.cli.main up` on a free port, its LLM being the local fake server."""
    tmp = tmp_path_factory.mktemp("memrelay")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMRELAY_")}
    env.update(MEMRELAY_PORT=str(port), MEMRELAY_WORKERS="1", MEMRELAY_WEB_WORKERS="1",
               MEMRELAY_LLM_MODEL="openai/gpt-4o-mini", MEMRELAY_LLM_API_BASE=llm.base_url, MEMRELAY_LLM_API_KEY="test")
    log = tmp / "up.log"
    proc = subprocess.Popen([sys.executable, "-m", "memrelay.cli.main", "up"], cwd=tmp, env=env,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.3)
        else:
            raise AssertionError(log.read_text()[-3000:])
        yield Memrelay(f"http://127.0.0.1:{port}", (tmp / ".memrelay" / "admin_key").read_text().strip())
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(60)


@pytest.fixture(scope="module")
def n8n(tmp_path_factory: pytest.TempPathFactory) -> N8n:
    return N8n(install(), tmp_path_factory.mktemp("n8n"))


def configured(doc: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    """The template with its Config node filled in, as a user does after import."""
    doc = copy.deepcopy(doc)
    for node in doc["nodes"]:
        if node["name"] == CONFIG:
            for a in node["parameters"]["assignments"]["assignments"]:
                a["value"] = values.get(a["name"], a["value"])
    return doc


def test_templates_import_and_execute_in_real_n8n(n8n: N8n, memrelay: Memrelay, llm: FakeLLMServer,
                                                  tmp_path: Path) -> None:
    slack, smtp = HttpSink(), SmtpSink()
    try:
        _run(n8n, memrelay, slack, smtp, tmp_path)
    finally:
        slack.close()
        smtp.close()


def _run(n8n: N8n, memrelay: Memrelay, slack: HttpSink, smtp: SmtpSink, tmp_path: Path) -> None:
    key = memrelay.headers["Authorization"].removeprefix("Bearer ")
    n8n.import_json("credentials", [
        {**API_CREDENTIAL, "type": "httpHeaderAuth", "data": {"name": "Authorization", "value": f"Bearer {key}"}},
        {**SMTP_CREDENTIAL, "type": "smtp", "data": {"user": "", "password": "", "host": "127.0.0.1",
                                                     "port": smtp.port, "secure": False, "disableStartTls": True}},
    ], "credentials.json")
    values = {"memrelayBaseUrl": memrelay.url, "MEMRELAY_SLACK_WEBHOOK_URL": slack.url, "slackWebhookUrl": slack.url,
              "email": "ada@example.com", "emailFrom": "onboarding@example.com"}
    docs = {p.name: json.loads(p.read_text()) for p in sorted(TEMPLATES_DIR.glob("*.json"))
            if p.name not in ("package.json", "package-lock.json")}
    n8n.import_workflows({name: configured(doc, values) for name, doc in docs.items()})
    kinds = {name: next(n["type"] for n in doc["nodes"] if n["type"].endswith(("Trigger", "webhook")))
             for name, doc in docs.items()}

    # manual-trigger templates: `n8n execute`
    memrelay.post("/api/v1/memorize", {"content": "Ada leads the analytics team and asked about SSO.",
                                       "email": "ada@example.com", "tags": ["crm"]})
    out = n8n.execute(docs["record-digest-prompt-slack.json"]["id"])
    assert slack.posts[-1] == {"text": "New lead worth a call. Next action: reply today."}, out
    out = json.dumps(n8n.execute(docs["export-search-csv.json"]["id"]))
    assert "memrelay-export.csv" in out and "text/csv" in out
    executed = {"record-digest-prompt-slack.json", "export-search-csv.json"}

    # webhook-triggered templates: publish, start n8n, POST to /webhook/<path>
    webhooks = [n for n, k in kinds.items() if k == "n8n-nodes-base.webhook"]
    for name in webhooks:
        n8n.cli("publish:workflow", f"--id={docs[name]['id']}")
    server = n8n.start(tmp_path / "n8n.log")
    try:
        payloads = {
            "webhook-memorize.json": {"email": "bob@example.com", "content": "Bob prefers quarterly billing."},
            "workflow-form-lead-slack.json": {"email": "cy@example.com", "form_name": "Demo request",
                                              "fields": {"message": "Need a memory layer for agents"}},
            "workflow-hubspot-contact-welcome.json": {"email": "dee@example.com", "firstname": "Dee",
                                                      "jobtitle": "CTO"},
            "workflow-stripe-payment-onboarding.json": {"customer_email": "eve@example.com",
                                                        "amount_display": "$99.00", "description": "Team plan"},
        }
        assert set(payloads) == set(webhooks)
        for name in webhooks:
            path = next(n["parameters"]["path"] for n in docs[name]["nodes"] if n["type"].endswith("webhook"))
            resp = _post_when_ready(f"http://127.0.0.1:{n8n.port}/webhook/{path}", payloads[name], server,
                                    tmp_path / "n8n.log")
            assert resp.status_code == 200, (name, resp.text[:2000])
            executed.add(name)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)

    bob = memrelay.post("/api/v1/recall", {"email": "bob@example.com", "type": "contact"})
    assert any("quarterly billing" in m["text"] for m in bob["freeformMemories"])
    assert any(p["text"].startswith("New lead cy@example.com") for p in slack.posts)
    dee = memrelay.post("/api/v1/recall", {"email": "dee@example.com", "type": "contact"})
    assert dee["properties"]["first_name"]["value"] == "Dee"
    assert any("Generated email message" in m["text"] for m in dee["freeformMemories"])  # the welcome draft
    (mail,) = smtp.messages
    assert mail["rcpt"] == ["eve@example.com"] and "Welcome aboard" in mail["data"]
    runnable = {n for n, k in kinds.items() if k != "n8n-nodes-base.scheduleTrigger"}
    assert executed == runnable


def _post_when_ready(url: str, body: dict[str, Any], server: subprocess.Popen[bytes], log: Path) -> requests.Response:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert server.poll() is None, log.read_text()[-3000:]
        try:
            resp = requests.post(url, json=body, timeout=120)
            if resp.status_code != 404:
                return resp
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} never became ready:\n{log.read_text()[-3000:]}")
