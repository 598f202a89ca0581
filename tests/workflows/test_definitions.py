"""Definitions: shipped files load; problems are reported with file and line; expressions are safe."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from memrelay.workflows.cron import cron_matches, due_slot, parse_interval
from memrelay.workflows.expressions import ExpressionError, evaluate, render, template_to_js
from memrelay.workflows.loader import SHIPPED_DIR, WorkflowLoadError, load_dirs, parse_definition

BASE = """\
id: demo
name: Demo
trigger:
  type: manual
steps:
  - id: first
    type: digest
    identifiers: {email: "{{ input.email }}"}
"""


def test_shipped_definitions_load_in_dependency_order() -> None:
    reg = load_dirs(SHIPPED_DIR)
    assert set(reg.workflows) >= {"hubspot-contact-welcome", "stripe-payment-onboarding", "form-lead-slack",
                                  "daily-deferred-digest"}
    assert [s.id for s in reg.get("form-lead-slack").order()] == ["memorize", "digest", "summary", "notify"]


def test_unknown_step_type_names_file_and_line() -> None:
    text = BASE + "  - id: second\n    type: teleport\n    where: mars\n"
    with pytest.raises(WorkflowLoadError) as err:
        parse_definition(text, "flows/demo.yaml")
    assert err.value.line == 10 and err.value.path == "flows/demo.yaml"
    assert "flows/demo.yaml:10" in err.value.message and "unknown step type 'teleport'" in err.value.message


def test_cycle_is_rejected_with_line() -> None:
    text = BASE.replace('    type: digest\n', '    type: digest\n    after: [second]\n') + (
        "  - id: second\n    type: condition\n    if: steps.first.recordId is not None\n")
    with pytest.raises(WorkflowLoadError) as err:
        parse_definition(text, "x.yaml")
    assert "cycle" in err.value.message and err.value.line == 6


def test_field_errors_point_at_the_field_line() -> None:
    text = BASE + "  - id: send\n    type: deliver\n    via: pigeon\n    text: hi\n"
    with pytest.raises(WorkflowLoadError) as err:
        parse_definition(text, "x.yaml")
    assert err.value.line == 11 and "via" in err.value.message
    with pytest.raises(WorkflowLoadError) as err:
        parse_definition(BASE.replace("{{ input.email }}", "{{ __import__('os') }}"), "x.yaml")
    assert err.value.line == 8 and "identifiers.email" in err.value.message


def test_template_errors_name_the_field_line_and_position() -> None:
    text = BASE + ("  - id: send\n    type: deliver\n    via: slack\n    url: env:HOOK\n"
                   "    text: \"Hi {{ input.name\"\n")
    with pytest.raises(WorkflowLoadError) as err:
        parse_definition(text, "x.yaml")
    assert err.value.line == 13
    assert "step 'send', text: '{{' is not closed by '}}' at column 4 of template" in err.value.message
    with pytest.raises(WorkflowLoadError, match="unknown step 'nope'"):
        parse_definition(BASE + "  - id: b\n    type: digest\n    after: [nope]\n    identifiers: {}\n", "x.yaml")


def test_duplicate_ids_across_directories(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(BASE)
    (tmp_path / "b.yaml").write_text(BASE)
    with pytest.raises(WorkflowLoadError, match="already defined"):
        load_dirs(tmp_path)


def test_expressions_read_context_and_refuse_code() -> None:
    ctx = {"trigger": {"payload": {"email": "a@x.io", "tags": ["vip"], "n": 3}}, "steps": {}}
    assert render("Hi {{ trigger.payload.email }} ({{ trigger.payload.n }})", ctx) == "Hi a@x.io (3)"
    assert render("{{ trigger.payload.tags }}", ctx) == ["vip"]  # a whole-string template keeps its type
    assert evaluate('"vip" in trigger.payload.tags and trigger.payload.n >= 3', ctx) is True
    assert evaluate("steps.missing.value is None", ctx) is True
    for bad in ("open('x')", "trigger.__class__", "[x for x in y]", "1 * 2", "lambda: 1"):
        with pytest.raises(ExpressionError):
            evaluate(bad, ctx)


def test_workflow_templates_are_the_shared_language() -> None:
    ctx = {"trigger": {"payload": {"name": "ada", "tags": ["a", "b"]}}}
    assert render("{{ trigger.payload.name | upper }} has {{ trigger.payload.tags | len }} tags", ctx) == \
        "ADA has 2 tags"
    assert render({"k": ['{{ "{{" }} literal', "{{ trigger.payload.tags }}"]}, ctx) == {"k": ["{{ literal", ["a", "b"]]}
    js = template_to_js("{{ trigger.payload.name | upper }}", lambda n, p: "$json" if n == "trigger" and not p else None)
    assert js == 'String(($json?.["payload"]?.["name"]) ?? \'\').toUpperCase()'
    with pytest.raises(ExpressionError, match="only these functions may be called"):
        render("{{ trigger.payload.email | domain_from_email }}", ctx)  # mapping filters are not workflow functions
    nested = template_to_js('{{ {"a": {"b": trigger.payload.name}} }}',
                            lambda n, p: "$json" if n == "trigger" and not p else None)
    assert nested == '({ ["a"]: ({ ["b"]: $json?.["payload"]?.["name"] }) })' and "}}" not in nested


def test_templates_translate_to_n8n_javascript_without_delimiters() -> None:
    js = template_to_js("Hi {{ upper(trigger.payload.name) }}! {json}} {{ 'a{b}' }}",
                        lambda n, p: "$json" if n == "trigger" and not p else None)
    assert "}}" not in js and "{{" not in js
    assert 'String(($json?.["payload"]?.["name"]) ?? \'\').toUpperCase()' in js


def test_schedules() -> None:
    t = datetime(2025, 1, 6, 8, 0, tzinfo=UTC)  # a Monday
    assert cron_matches("0 8 * * 1-5", t) and not cron_matches("0 8 * * 0,6", t)
    assert cron_matches("*/15 8 * * 7", datetime(2025, 1, 5, 8, 30, tzinfo=UTC))  # 7 is Sunday
    assert due_slot("0 8 * * *", None, None, t) == t
    assert due_slot("0 8 * * *", None, t, t.replace(minute=5)) is None  # already ran this slot
    assert due_slot("0 8 * * *", None, t.replace(day=5), t.replace(hour=9)) == t  # missed tick catches up
    assert parse_interval("15m") == 900
    with pytest.raises(ValueError):
        parse_interval("5s")
