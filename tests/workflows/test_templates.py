"""n8n templates: the checked-in files equal a fresh build, they are built on the memrelay node pack with the
conventions the pack promises, and invalid documents fail the build."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from memrelay.cli.workflow_commands import templates_group
from memrelay.workflows.n8n.build import TEMPLATES_DIR, build, render_all
from memrelay.workflows.n8n.nodes import MEMRELAY_NODE, NODE_TYPES, InvalidTemplate, validate

PACKAGE = Path(__file__).resolve().parents[2] / "n8n-nodes-memrelay"


def test_checked_in_templates_equal_a_fresh_build(tmp_path: Path) -> None:
    assert build(TEMPLATES_DIR, check=True) == [], "run `memrelay templates build`"
    result = CliRunner().invoke(templates_group, ["build", "--out", str(tmp_path)])
    assert result.exit_code == 0 and len(list(tmp_path.glob("*.json"))) == 9
    assert CliRunner().invoke(templates_group, ["build", "--out", str(tmp_path), "--check"]).exit_code == 0
    (tmp_path / "webhook-memorize.json").write_text("{}")
    assert CliRunner().invoke(templates_group, ["build", "--out", str(tmp_path), "--check"]).exit_code == 1


def test_memrelay_steps_use_the_node_pack_with_retries_and_an_error_path() -> None:
    for name, doc in render_all().items():
        steps = [n for n in doc["nodes"] if n["type"] == MEMRELAY_NODE]
        assert steps, name
        assert not [n for n in doc["nodes"] if "/api/v1" in json.dumps(n["parameters"])], "no raw HTTP to memrelay"
        for n in steps:
            assert n["credentials"] == {"memrelayApi": {"id": "memrelayApi00001", "name": "memrelay account"}}
            assert n["retryOnFail"] is True and n["maxTries"] == 3 and n["onError"] in (
                "continueErrorOutput", "stopWorkflow"), (name, n["name"])
        assert any(n["type"] == "n8n-nodes-base.stickyNote" and "Setup" in n["parameters"]["content"]
                   for n in doc["nodes"]), name
        assert doc["settings"] == {"executionOrder": "v1"}


def test_webhook_templates_authenticate_and_answer_every_branch() -> None:
    hooks = {name: doc for name, doc in render_all().items()
             if any(n["type"] == "n8n-nodes-base.webhook" for n in doc["nodes"])}
    assert set(hooks) == {"webhook-memorize.json", "workflow-form-lead-slack.json"}
    for name, doc in hooks.items():
        (hook,) = [n for n in doc["nodes"] if n["type"] == "n8n-nodes-base.webhook"]
        assert hook["parameters"]["authentication"] == "headerAuth" and "httpHeaderAuth" in hook["credentials"]
        assert hook["parameters"]["responseMode"] == "responseNode", "no lastNode: every branch answers itself"
        by_name = {n["name"]: n for n in doc["nodes"]}
        # every path from the webhook ends at a Respond to Webhook node with a deliberate status
        ends = _leaves(doc, "Webhook")
        assert ends and all(by_name[e]["type"] == "n8n-nodes-base.respondToWebhook" for e in ends), (name, ends)
        codes = {by_name[e]["parameters"]["options"]["responseCode"] for e in ends}
        assert {200, 422, 502} <= codes, (name, codes)


def test_provider_templates_use_the_providers_triggers() -> None:
    docs = render_all()
    stripe = docs["workflow-stripe-payment-onboarding.json"]
    assert stripe["nodes"][1]["type"] == "n8n-nodes-base.stripeTrigger"
    assert stripe["nodes"][1]["parameters"]["events"] == ["checkout.session.completed"]
    (mail,) = [n for n in stripe["nodes"] if n["type"] == "n8n-nodes-base.emailSend"]
    assert mail["parameters"]["options"]["appendAttribution"] is False
    hubspot = docs["workflow-hubspot-contact-welcome.json"]
    assert any(n["type"] == "n8n-nodes-base.hubspotTrigger" for n in hubspot["nodes"])


def test_lists_are_paged() -> None:
    docs = render_all()
    (search,) = [n for n in docs["export-search-csv.json"]["nodes"] if n["type"] == MEMRELAY_NODE]
    assert search["parameters"]["operation"] == "search" and search["parameters"]["returnAll"] is True
    (hubspot,) = [n for n in docs["hubspot-batch-memorize.json"]["nodes"] if n["type"] == "n8n-nodes-base.hubspot"]
    assert hubspot["parameters"]["returnAll"] is True


def test_templates_use_node_versions_of_the_pinned_n8n() -> None:
    pinned = json.loads((TEMPLATES_DIR / "package.json").read_text())["dependencies"]["n8n"]
    assert pinned == "2.41.1"
    for doc in render_all().values():
        for n in doc["nodes"]:
            assert n["typeVersion"] == NODE_TYPES[n["type"]][0]


def test_every_operation_a_template_uses_exists_in_the_node_package() -> None:
    sources = "".join(p.read_text() for p in (PACKAGE / "nodes" / "Memrelay" / "resources").glob("*.ts"))
    for doc in render_all().values():
        for n in doc["nodes"]:
            if n["type"] == MEMRELAY_NODE:
                assert f"value: '{n['parameters']['operation']}'" in sources, n["parameters"]["operation"]


def _leaves(doc: dict, start: str) -> set[str]:  # type: ignore[type-arg]
    seen, todo, leaves = set(), [start], set()
    while todo:
        node = todo.pop()
        if node in seen:
            continue
        seen.add(node)
        nxt = [link["node"] for branch in doc["connections"].get(node, {}).get("main", []) for link in branch or []]
        if not nxt:
            leaves.add(node)
        todo.extend(nxt)
    return leaves


@pytest.mark.parametrize("breakage, message", [
    (lambda d: d["nodes"][1].update(type="n8n-nodes-base.teleport"), "unknown type"),
    (lambda d: d["nodes"][1].update(typeVersion=9), "no typeVersion 9"),
    (lambda d: d["nodes"][2].update(name=d["nodes"][1]["name"]), "not unique"),
    (lambda d: d["connections"]["Webhook"]["main"][0].append({"node": "Ghost", "type": "main", "index": 0}),
     "unknown node 'Ghost'"),
    (lambda d: d["nodes"][2]["parameters"]["conditions"]["conditions"][0].update(leftValue="={{ $json.x }"),
     "unbalanced"),
    (lambda d: d["settings"].clear(), "executionOrder"),
    (lambda d: d["connections"]["Has email and content"]["main"][1].clear(), "dead branch"),
    (lambda d: d["connections"]["Memorize"]["main"][1].clear(), "dead branch"),
    (lambda d: d["nodes"][1]["parameters"].update(authentication="none"), "must authenticate"),
])
def test_invalid_documents_are_rejected(breakage, message) -> None:  # type: ignore[no-untyped-def]
    doc = copy.deepcopy(render_all()["webhook-memorize.json"])
    breakage(doc)
    with pytest.raises(InvalidTemplate, match=message):
        validate(doc)
