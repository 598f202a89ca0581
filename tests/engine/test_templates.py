"""The one template language: rendering, missing values, escaping, filters, errors with positions."""

from __future__ import annotations

import pytest

from memrelay.engine.core.errors import ValidationFailed
from memrelay.engine.domain.templates import DEFAULT, Function, TemplateError, parse, render

CTX = {"trigger": {"payload": {"email": "a@x.io", "tags": ["vip"], "n": 3, "name": "Ada"}},
       "steps": {"digest": {"markdown": "# Ada"}}, "rows": [{"id": 1}, {"id": 2}]}


def test_text_and_expressions_render():
    assert render("Hi {{ trigger.payload.name }} ({{ trigger.payload.n }})", CTX) == "Hi Ada (3)"
    assert render('{{ trigger.payload["email"] }} {{ rows[1].id }} {{ rows[-1]["id"] }}', CTX) == "a@x.io 2 2"
    assert render("{{ trigger.payload.n + 1 }} {{ 'n=' + trigger.payload.n }}", CTX) == "4 n=3"
    assert render('{{ "vip" in trigger.payload.tags and trigger.payload.n >= 3 }}', CTX) == "True"
    assert render("no expressions at all", CTX) == "no expressions at all"
    assert render("{{ trigger.payload.tags }} {{ steps }}", CTX) == '["vip"] {"digest": {"markdown": "# Ada"}}'


def test_a_single_expression_keeps_its_type_when_asked():
    assert render("{{ trigger.payload.tags }}", CTX, keep_type=True) == ["vip"]
    assert render("  {{ trigger.payload.n }}\n", CTX, keep_type=True) == 3
    assert render("{{ trigger.payload.n }}!", CTX, keep_type=True) == "3!"
    assert render('{{ {"k": trigger.payload.n, "l": [1, 2]} }}', CTX, keep_type=True) == {"k": 3, "l": [1, 2]}


def test_missing_values():
    assert render("[{{ nope }}] [{{ trigger.nope.deeper }}] [{{ rows[9].id }}]", CTX) == "[] [] []"
    assert render("{{ steps.missing.value is None }}", CTX) == "True"
    # required: a template with an empty expression renders nothing (mapping memories)
    assert parse("{{ trigger.payload.name }} likes {{ nope }}").render(CTX, required=True) is None
    assert parse("{{ trigger.payload.name }} likes {{ '' }}").render(CTX, required=True) is None
    assert parse("{{ trigger.payload.name }} is here").render(CTX, required=True) == "Ada is here"


def test_filters_and_functions():
    assert render("{{ trigger.payload.name | upper }} {{ lower(trigger.payload.name) }}", CTX) == "ADA ada"
    assert render("{{ trigger.payload.tags | len }} {{ nope | len }} {{ nope | str }}", CTX) == "1 0 "
    shout = DEFAULT.extend({"shout": Function(lambda v, mark="!": f"{v}{mark}", (1, 2))})
    assert shout.template('{{ trigger.payload.name | shout }} {{ trigger.payload.name | shout("?") | lower }}') \
        .render(CTX) == "Ada! ada?"
    assert shout.template("{{ shout(trigger.payload.name, '.') }}").names() == {"trigger"}
    with pytest.raises(TemplateError, match="only these functions"):
        parse("{{ trigger.payload.name | shout }}")  # not in the default language


def test_escaping_literal_braces():
    assert render('{{ "{{" }} x }}', CTX) == "{{ x }}"
    assert render("single {braces} and }} stay text", CTX) == "single {braces} and }} stay text"
    assert render("{{ 'a}}b' }} {{ \"{{\" + '}}' }}", CTX) == "a}}b {{}}"
    assert render('{{ {"a": {"b": 1}} }}', CTX) == '{"a": {"b": 1}}'  # nested braces inside an expression


def test_names_and_paths():
    t = parse("{{ trigger.payload.email | lower }} {{ len(rows) }} {{ steps['digest'].markdown }} {{ 'x' }}")
    assert t.names() == {"trigger", "rows", "steps"}
    assert t.paths() == ["trigger.payload.email", "rows", "steps.digest.markdown"]


@pytest.mark.parametrize(("source", "reason", "line", "column"), [
    ("Hi {{ name", "'{{' is not closed by '}}'", 1, 4),
    ("Hi {{ }}", "empty expression", 1, 6),
    ("Hi {{ 1 * 2 }}", "only '+' is allowed as an operator", 1, 7),
    ("one\ntwo {{ open('x') }}", "only these functions may be called", 2, 8),
    ("{{ name.__class__ }}", "attribute names starting with '_' are not allowed", 1, 4),
    ("{{ [x for x in y] }}", "ListComp is not allowed", 1, 4),
    ("{{ lambda: 1 }}", "Lambda is not allowed", 1, 4),
    ("ok {{ a }} then {{ a b }}", "invalid expression", 1, 22),  # points at the b
    ("{{ len(a, b) }}", "len takes 1 argument(s)", 1, 4),
    ("{{ a | 3 }}", "only '+' is allowed", 1, 4),
])
def test_errors_name_the_position(source, reason, line, column):
    with pytest.raises(TemplateError) as info:
        parse(source)
    err = info.value
    assert err.reason.startswith(reason)
    assert (err.line, err.column) == (line, column)
    assert err.details["line"] == line and err.details["column"] == column
    where = f"column {column}" if line == 1 else f"line {line}, column {column}"
    assert f"at {where} of template" in err.message
    assert isinstance(err, ValidationFailed) and err.http_status == 422  # one error tree (and a ValueError)


def test_bare_expressions():
    assert DEFAULT.evaluate("trigger.payload.n >= 3 and not nope", CTX) is True
    assert DEFAULT.evaluate("[trigger.payload.n, -1]", CTX) == [3, -1]
    with pytest.raises(TemplateError):
        DEFAULT.expression("import os")
