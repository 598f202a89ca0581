"""n8n templates: the checked-in files equal a fresh build, and invalid documents fail the build."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from memrelay.cli.workflow_commands import templates_group
from memrelay.workflows.n8n.build import TEMPLATES_DIR, build, render_all
from memrelay.workflows.n8n.nodes import InvalidTemplate, validate


def test_checked_in_templates_equal_a_fresh_build(tmp_path: Path) -> None:
    assert build(TEMPLATES_DIR, check=True) == [], "run `memrelay templates build`"
    result = CliRunner().invoke(templates_group, ["build", "--out", str(tmp_path)])
    assert result.exit_code == 0 and len(list(tmp_path.glob("*.json"))) == 9
    assert CliRunner().invoke(templates_group, ["build", "--out", str(tmp_path), "--check"]).exit_code == 0
    (tmp_path / "webhook-memorize.json").write_text("{}")
    assert CliRunner().invoke(templates_group, ["build", "--out", str(tmp_path), "--check"]).exit_code == 1


def test_every_template_calls_memrelay_with_the_placeholder_credential() -> None:
    for name, doc in render_all().items():
        api_nodes = [n for n in doc["nodes"] if "memrelayBaseUrl" in str(n["parameters"].get("url", ""))]
        assert api_nodes, name
        for n in api_nodes:
            assert n["credentials"]["httpHeaderAuth"]["name"] == "memrelay API key"
        assert doc["settings"] == {"executionOrder": "v1"}
    lead = render_all()["workflow-form-lead-slack.json"]
    assert [n["name"] for n in lead["nodes"]] == ["Webhook", "Config", "Memorize submission", "Digest",
                                                  "Lead summary", "Post to Slack"]


def test_expressions_read_memrelay_answers_inside_the_envelope() -> None:
    """memrelay answers ``{"success": true, "data": ...}``: a later node reads ``json.data`` of a memrelay node,
    and a Split Out after one splits a field under ``data``."""
    checked = 0
    for name, doc in render_all().items():
        api_nodes = {n["name"] for n in doc["nodes"] if "memrelayBaseUrl" in str(n["parameters"].get("url", ""))}
        text = json.dumps(doc)
        for node in api_nodes:
            for m in re.finditer(re.escape(f"$('{node}')") + r"\.(first\(\)|item)\.json(\S{0,5})", text):
                assert m.group(2).startswith(".data"), (name, node, m.group(0))
                checked += 1
        for i, n in enumerate(doc["nodes"]):
            if n["type"] == "n8n-nodes-base.splitOut" and doc["nodes"][i - 1]["name"] in api_nodes:
                assert n["parameters"]["fieldToSplitOut"].startswith("data."), (name, n["name"])
                checked += 1
    assert checked >= 8  # digest → prompt → Slack, search → CSV, deferred digest, lead summary, onboarding


@pytest.mark.parametrize("breakage, message", [
    (lambda d: d["nodes"][1].update(type="n8n-nodes-base.teleport"), "unknown type"),
    (lambda d: d["nodes"][1].update(typeVersion=9), "no typeVersion 9"),
    (lambda d: d["nodes"][2].update(name=d["nodes"][1]["name"]), "not unique"),
    (lambda d: d["connections"]["Config"]["main"][0].append({"node": "Ghost", "type": "main", "index": 0}),
     "unknown node 'Ghost'"),
    (lambda d: d["nodes"][2]["parameters"].update(url="={{ $json.x }"), "unbalanced"),
    (lambda d: d["settings"].clear(), "executionOrder"),
])
def test_invalid_documents_are_rejected(breakage, message) -> None:  # type: ignore[no-untyped-def]
    doc = copy.deepcopy(render_all()["webhook-memorize.json"])
    breakage(doc)
    with pytest.raises(InvalidTemplate, match=message):
        validate(doc)
