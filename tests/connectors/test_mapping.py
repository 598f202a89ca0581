"""Mapping files: validation with line numbers, transforms, apply_mapping and the shipped defaults."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime

import pytest
from connector_samples import TYPEFORM_BODY, WEBFLOW_BODY, envelope, notification
from deliver import deliver

from memrelay.connectors import connector_names, get_connector
from memrelay.connectors.mapping import (
    apply_mapping,
    default_mapping_files,
    lint_mapping_file,
    load_default_mapping,
    load_mapping,
    load_mapping_text,
    map_event,
)
from memrelay.connectors.mapping_legacy import translate, upgrade_text
from memrelay.connectors.transforms import (
    MAPPING_TEMPLATES,
    TRANSFORMS,
    TransformContext,
    get_path,
    template_fields,
    to_text,
)
from memrelay.engine.core.errors import NotFound, ValidationFailed
from memrelay.engine.core.properties_types import PropertySpec

CONTACT_MAPPING = """\
version: 2
objects:
  contact:
    entity_type: contact
    timestamp: updated
    keys:
      primary: {source: email, transform: [strip, lower]}
      email: {source: email, transform: [strip, lower]}
      website_url: {source: [website, email], transform: [domain_from_url]}
      custom:
        crm_id: id
    properties:
      email: {source: email, transform: [strip, lower]}
      first_name: first
      full_name: {transform: [{template: "{{ first }} {{ last }}"}]}
      stage: {source: stage, transform: [{map_values: {mql: Marketing Qualified Lead}}]}
      notes: {source: notes, extractMemories: true}
      employees: {source: headcount, transform: [number]}
      lead_source: {source: utm, default: Website}
    memories:
      - "{{ first }} {{ last }} is {{ title }} at {{ company }}."
      - template: "Moved to stage {{ _props.stage }}."
        when: {change: [stage, lifecycle]}
    tags: [crm, "team:{{ team }}"]
"""


LEGACY_CONTACT_MAPPING = """\
version: 1
objects:
  contact:
    entity_type: contact
    timestamp: updated
    keys:
      primary: {source: email, transform: [strip, lower]}
      email: {source: email, transform: [strip, lower]}
      website_url: {source: [website, email], transform: [domain_from_url]}
      custom:
        crm_id: id
    properties:
      email: {source: email, transform: [strip, lower]}
      first_name: first
      full_name: {transform: [{template: "{first} {last}"}]}
      stage: {source: stage, transform: [{map_values: {mql: Marketing Qualified Lead}}]}
      notes: {source: notes, extractMemories: true}
      employees: {source: headcount, transform: [number]}
      lead_source: {source: utm, default: Website}
    memories:
      - "{first} {last} is {title} at {company}."
      - template: "Moved to stage {@stage}."
        when: {change: [stage, lifecycle]}
    tags: [crm, "team:{team}"]
"""


def problems_of(error: ValidationFailed) -> list[dict]:
    return error.details["problems"]


def load(text: str):
    return load_mapping_text(textwrap.dedent(text), path="test.yaml")


# -- validation errors point at the right line ------------------------------------------------------


def test_valid_mapping_loads():
    spec = load(CONTACT_MAPPING)
    assert spec.object_for("contact").entity_type == "contact"
    assert spec.object_for("CONTACT") is spec.object_for("contact")
    assert spec.object_for("deal") is None


def test_unknown_transform_reports_its_line():
    text = CONTACT_MAPPING.replace("transform: [number]", "transform: [numbr]")
    with pytest.raises(ValidationFailed) as info:
        load(text)
    (problem,) = problems_of(info.value)
    assert problem["path"] == "test.yaml"
    assert problem["line"] == 18  # the `employees:` line
    assert problem["location"] == "objects.contact.properties.employees.transform[0].name"
    assert problem["message"].startswith("'numbr' is not allowed; expected 'lower', 'strip'")


def test_unknown_key_reports_its_line_and_name():
    text = CONTACT_MAPPING.replace("      notes: {source: notes, extractMemories: true}",
                                   "      notes: {source: notes, extractMemory: true}")  # fmt: skip
    with pytest.raises(ValidationFailed) as info:
        load(text)
    (problem,) = problems_of(info.value)
    assert problem["line"] == 17
    assert problem["message"] == "unknown key 'extractMemory'"
    assert str(info.value).startswith("invalid mapping test.yaml: test.yaml:17:")


def test_block_style_errors_point_at_the_nested_line():
    text = """\
    objects:
      deal:
        entity_type: deal
        keys:
          primary: id
        properties:
          amount:
            source: amount
            transform:
              - number
              - minor_to_major
    """
    with pytest.raises(ValidationFailed) as info:
        load(text)
    (problem,) = problems_of(info.value)
    assert problem["line"] == 11
    assert "minor_to_major needs the currency" in problem["message"]


def test_several_problems_are_all_reported_with_lines():
    text = """\
    version: 3
    objects:
      contact:
        entity_type: Contact!
        keys: {}
        properties:
          "bad name": email
        memories:
          - "Hello {{ first"
    """
    with pytest.raises(ValidationFailed) as info:
        load(text)
    lines = {p["location"]: p["line"] for p in problems_of(info.value)}
    assert lines["version"] == 1
    assert lines["objects.contact.entity_type"] == 4
    assert lines["objects.contact.keys"] == 5
    assert lines["objects.contact.properties.bad name.[key]"] == 7
    assert lines["objects.contact.memories[0].template"] == 9
    messages = {p["location"]: p["message"] for p in problems_of(info.value)}
    assert messages["objects.contact.properties.bad name.[key]"].startswith(
        "invalid name 'bad name': must match"
    )
    assert messages["objects.contact.entity_type"].startswith("invalid value 'Contact!'")


def test_missing_required_key():
    with pytest.raises(ValidationFailed) as info:
        load("objects:\n  contact:\n    keys: {email: email}\n")
    (problem,) = problems_of(info.value)
    assert problem["message"] == "missing required key 'entity_type'"
    assert problem["line"] == 2


def test_yaml_syntax_error_line():
    text = "objects:\n  contact:\n    entity_type: contact\n    keys: {email: email\n    tags: [a]\n"
    with pytest.raises(ValidationFailed) as info:
        load_mapping_text(text, path="broken.yaml")
    (problem,) = problems_of(info.value)
    assert problem["message"].startswith("YAML syntax error")
    assert problem["line"] == 5


def test_duplicate_keys_are_reported():
    text = (
        "objects:\n  contact:\n    entity_type: contact\n    keys: {email: email}\n    entity_type: company\n"
    )
    with pytest.raises(ValidationFailed) as info:
        load_mapping_text(text)
    (problem,) = problems_of(info.value)
    assert problem["line"] == 5 and "duplicate key 'entity_type'" in problem["message"]


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "empty"), ("- a\n- b\n", "top level"), ("objects: {}\n", "at least 1")],
)
def test_structural_problems(text, message):
    with pytest.raises(ValidationFailed) as info:
        load_mapping_text(text)
    assert message in problems_of(info.value)[0]["message"]


@pytest.mark.parametrize(
    ("transform", "message"),
    [
        ("[lower: x]", "takes no argument"),
        ("[{map_values: {}}]", "non-empty mapping"),
        ("[{template: 5}]", "template string"),
        ("[{template: '{@prop}'}]", "only available in memories"),
        ("[{parse_date: week}]", "'date' or 'datetime'"),
        ("[{domain_from_email: {strict: true}}]", "allow_free"),
        ("[{join: [1]}]", "separator"),
    ],
)
def test_transform_argument_checks(transform, message):
    text = f"objects:\n  c:\n    entity_type: contact\n    keys: {{email: email}}\n    properties:\n      p: {{source: x, transform: {transform}}}\n"
    with pytest.raises(ValidationFailed) as info:
        load_mapping_text(text)
    (problem,) = problems_of(info.value)
    assert message in problem["message"] and problem["line"] == 6


def test_custom_keys_may_not_reuse_reserved_names():
    with pytest.raises(ValidationFailed, match="may not be email"):
        load_mapping_text("objects:\n  c:\n    entity_type: contact\n    keys:\n      custom: {email: x}\n")


def test_lint_mapping_file(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(CONTACT_MAPPING)
    assert lint_mapping_file(good) == []
    bad = tmp_path / "bad.yaml"
    bad.write_text(CONTACT_MAPPING.replace("entity_type: contact", "entity_type: 7"))
    (problem,) = lint_mapping_file(bad)
    assert problem.line == 4 and problem.path == str(bad)
    assert str(problem).startswith(f"{bad}:4: objects.contact.entity_type:")
    (missing,) = lint_mapping_file(tmp_path / "nope.yaml")
    assert missing.line is None and "cannot read" in missing.message
    with pytest.raises(ValidationFailed):
        load_mapping(bad)
    assert load_mapping(good).objects["contact"].entity_type == "contact"


# -- applying ---------------------------------------------------------------------------------------


def test_apply_mapping_full_record():
    spec = load(CONTACT_MAPPING)
    record = {
        "id": 42,
        "email": "  Ann.Lee@ACME.com ",
        "first": "Ann",
        "last": "Lee",
        "title": "CTO",
        "company": "Acme",
        "stage": "mql",
        "notes": "Evaluating vector databases; prefers Postgres.",
        "headcount": "1,200",
        "updated": "2024-05-01T10:00:00Z",
        "change": "stage",
        "team": "emea",
    }
    mapped = apply_mapping(spec, "contact", record)
    assert mapped.entity_type == "contact"
    assert mapped.keys == {
        "primary": "ann.lee@acme.com",
        "email": "ann.lee@acme.com",
        "website_url": "acme.com",
        "crm_id": "42",
    }
    assert mapped.primary_key == "ann.lee@acme.com"
    assert mapped.properties == {
        "email": "ann.lee@acme.com",
        "first_name": "Ann",
        "full_name": "Ann Lee",
        "stage": "Marketing Qualified Lead",
        "notes": "Evaluating vector databases; prefers Postgres.",
        "employees": 1200,
        "lead_source": "Website",
    }
    assert mapped.memories == ["Ann Lee is CTO at Acme.", "Moved to stage Marketing Qualified Lead."]
    assert mapped.tags == ["crm", "team:emea"]
    assert mapped.extract_memories == ["notes"]
    assert mapped.source_timestamp == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert json.loads(json.dumps(mapped.to_dict()))["source_timestamp"] == "2024-05-01T10:00:00+00:00"


def test_apply_mapping_partial_record_omits_missing_fields():
    spec = load(CONTACT_MAPPING)
    occurred = datetime(2020, 1, 1, tzinfo=UTC)
    mapped = apply_mapping(spec, "contact", {"id": "7", "stage": "", "first": None}, occurred_at=occurred)
    assert mapped.keys == {"crm_id": "7"}
    assert mapped.properties == {"lead_source": "Website"}  # defaults still apply; empties never clear
    assert mapped.memories == [] and mapped.tags == ["crm"]
    assert mapped.source_timestamp == occurred


def test_free_mail_domains_are_not_company_keys():
    spec = load(CONTACT_MAPPING)
    mapped = apply_mapping(spec, "contact", {"email": "someone@gmail.com"})
    assert "website_url" not in mapped.keys


def test_unknown_object_type():
    with pytest.raises(NotFound):
        apply_mapping(load(CONTACT_MAPPING), "ticket", {})


def test_bad_values_become_warnings_not_errors():
    spec = load(CONTACT_MAPPING)
    mapped = apply_mapping(spec, "contact", {"email": "a@b.io", "headcount": "lots"})
    assert "employees" not in mapped.properties
    assert any("number" in w for w in mapped.warnings)


# -- transforms and templates -----------------------------------------------------------------------


def run(name, value, arg=None, record=None):
    return TRANSFORMS[name](value, arg, TransformContext(record=record or {}))


@pytest.mark.parametrize(
    ("name", "value", "arg", "record", "expected"),
    [
        ("lower", "ABC", None, None, "abc"),
        ("lower", ["A", "B"], None, None, ["a", "b"]),
        ("strip", "  x ", None, None, "x"),
        ("domain_from_email", "Ann@Sub.Acme.COM", None, None, "sub.acme.com"),
        ("domain_from_email", "a@gmail.com", None, None, None),
        ("domain_from_email", "a@gmail.com", {"allow_free": True}, None, "gmail.com"),
        ("domain_from_email", "not-an-email", None, None, None),
        ("domain_from_url", "https://www.Acme.com:8443/about?x=1", None, None, "acme.com"),
        ("domain_from_url", "acme.io", None, None, "acme.io"),
        ("domain_from_url", "bob@acme.io", None, None, "acme.io"),
        ("domain_from_url", "localhost", None, None, None),
        ("minor_to_major", 1999, "cur", {"cur": "usd"}, 19.99),
        ("minor_to_major", "5000", {"currency_field": "cur"}, {"cur": "JPY"}, 5000),
        ("minor_to_major", 12345, {"currency": "kwd"}, None, 12.345),
        ("minor_to_major", 1999, "cur", {}, None),
        ("parse_date", "1564113600000", None, None, "2019-07-26T04:00:00+00:00"),
        ("parse_date", 1564113600, "date", None, "2019-07-26"),
        ("parse_date", "2024-05-01T10:15:30.000Z", "date", None, "2024-05-01"),
        ("parse_date", "soon", None, None, None),
        ("join", ["a", None, "b"], None, None, "a, b"),
        ("join", ["a", "b"], "; ", None, "a; b"),
        ("split", "a;b; c", ";", None, ["a", "b", "c"]),
        ("number", "1,234.5", None, None, 1234.5),
        ("number", 7, None, None, 7),
        ("map_values", "closedwon", {"closedwon": "Won"}, None, "Won"),
        ("map_values", "other", {"closedwon": "Won"}, None, "other"),
        ("map_values", "other", {"closedwon": "Won", "*": None}, None, None),
        ("map_values", 1, {"1": "one"}, None, "one"),
        ("template", "123", "deal-{{ value }}-{{ region }}", {"region": "eu"}, "deal-123-eu"),
        ("template", "123", "deal-{{ value }}-{{ region }}", {}, None),
        ("template", "Ann", "{{ value | lower }}@{{ domain | domain_from_url }}", {"domain": "https://Acme.io"},
         "ann@acme.io"),
    ],
)
def test_transforms(name, value, arg, record, expected):
    assert run(name, value, arg, record) == expected


def test_get_path():
    data = {"a": {"b": [{"c": 1}]}, "x.y": 2, "n": None}
    assert get_path(data, "a.b.0.c") == 1
    assert get_path(data, "x.y") == 2
    assert get_path(data, "n") is None
    assert repr(get_path(data, "a.b.5.c")) == "MISSING"
    assert repr(get_path(data, "a.z")) == "MISSING"


def test_templates():
    assert template_fields('{{ a }} and {{ b.c | lower }} {{ "{{" }} {{ _props.p }} {{ _record["x-y"] }}') == [
        "a", "b.c", "x-y"]
    for bad in ("{{ a", "{{ a b }}", "{{ }}", "{{ a | nope }}", "{{ a * 2 }}"):
        with pytest.raises(ValueError):
            template_fields(bad)

    def render(template, **scope):
        return MAPPING_TEMPLATES.template(template).render(scope, required=True, text=to_text)

    assert render("{{ n }} / {{ flag }} / {{ items }} / {x} {{ '{{' }}", n=250000.0, flag=True,
                  items=["x", "y"]) == "250000 / yes / x, y / {x} {{"
    assert render("value {{ empty }}", empty="") is None
    assert render("value {{ missing }}") is None
    # every transform is a filter
    assert render('{{ email | domain_from_email }} {{ stage | map_values({"mql": "MQL", "*": None}) }}',
                  email="a@acme.io", stage="mql") == "acme.io MQL"
    assert render('{{ amount | minor_to_major(cur) }} {{ tags | join("; ") }} {{ when | parse_date("date") }}',
                  amount=1999, cur="usd", tags=["a", "b"], when="2024-05-01T10:00:00Z") == "19.99 a; b 2024-05-01"
    assert render('{{ csv | split(";") | join("+") }} {{ n | number }}', csv="a; b", n="1,200") == "a+b 1200"
    assert render("{{ email | domain_from_email }}", email="a@gmail.com") is None  # free mail: no value


def test_mapping_template_errors_name_line_and_position():
    text = CONTACT_MAPPING.replace("{{ title }} at", "{{ title at")
    with pytest.raises(ValidationFailed) as info:
        load(text)
    (problem,) = problems_of(info.value)
    assert problem["line"] == 21 and problem["location"] == "objects.contact.memories[0].template"
    assert problem["message"].startswith("'{{' is not closed by '}}' at column 27 of template '{{ first }}")


# -- legacy (version 1) templates --------------------------------------------------------------------


@pytest.mark.parametrize(("legacy", "new"), [
    ("{first} {last}", "{{ first }} {{ last }}"),
    ("Moved to {@stage}.", "Moved to {{ _props.stage }}."),
    ("portal:{_event.portal_id}", "portal:{{ _event.portal_id }}"),
    ("{a.b.0} {first-name} {x.y-z}", '{{ a.b[0] }} {{ _record["first-name"] }} {{ x["y-z"] }}'),
    ("{{literal}} {{{{", '{literal} {{ "{{" }}'),
    ("{{{a}}}", '{{ "{" }}{{ a }}}'),
])
def test_legacy_templates_translate(legacy, new):
    assert translate(legacy) == new
    record = {"first": "A", "last": "L", "a": {"b": ["0th"]}, "first-name": "F", "x": {"y-z": "YZ"},
              "_event": {"portal_id": 7}, "_props": {"stage": "S"}}
    old_meaning = legacy_render(legacy, record)
    scope = {**record, "_record": record}
    assert MAPPING_TEMPLATES.template(new).render(scope, required=True, text=to_text) == old_meaning


def legacy_render(template, record):
    """What version 1 rendered (the former ``transforms.render``), kept here as the reference."""
    import re

    out, pos = [], 0
    for m in re.finditer(r"\{\{|\}\}|\{([^{}]*)\}|[{}]", template):
        out.append(template[pos:m.start()])
        pos = m.end()
        if m.group(0) in ("{{", "}}"):
            out.append(m.group(0)[0])
            continue
        name = m.group(1).strip()
        value = record["_props"].get(name[1:]) if name.startswith("@") else get_path(record, name)
        out.append(to_text(value))
    out.append(template[pos:])
    return "".join(out)


def test_legacy_mapping_loads_warns_and_maps_like_version_2(tmp_path):
    legacy, current = load(LEGACY_CONTACT_MAPPING), load(CONTACT_MAPPING)
    assert legacy == current  # translated on load
    record = {"email": "ann@acme.com", "first": "Ann", "last": "Lee", "title": "CTO", "company": "Acme",
              "stage": "mql", "change": "stage", "team": "emea", "id": 1}
    assert apply_mapping(legacy, "contact", record) == apply_mapping(current, "contact", record)
    path = tmp_path / "legacy.yaml"
    path.write_text(LEGACY_CONTACT_MAPPING)
    (warning,) = lint_mapping_file(path)
    assert warning.severity == "warning" and warning.line == 1 and "memrelay mappings upgrade" in warning.message
    assert str(warning).startswith(f"{path}:1: warning: version:")
    # a mapping without a version is version 1 too (files written before versions existed)
    unversioned = LEGACY_CONTACT_MAPPING.replace("version: 1\n", "")
    assert load(unversioned) == current


def test_legacy_mapping_errors_keep_their_line():
    with pytest.raises(ValidationFailed) as info:
        load(LEGACY_CONTACT_MAPPING.replace("{title} at", "{title at"))
    (problem,) = problems_of(info.value)
    assert problem["line"] == 21 and problem["location"] == "objects.contact.memories[0]"
    assert problem["message"].startswith("unbalanced '{'")


def test_upgrade_rewrites_only_templates_and_keeps_comments():
    text = "# my mapping\n" + LEGACY_CONTACT_MAPPING.replace("tags: [crm,", "tags: [crm,  # kept\n      ")
    upgraded = upgrade_text(text)
    assert upgraded.startswith("# my mapping\nversion: 2\n") and "# kept" in upgraded
    assert load(upgraded) == load(CONTACT_MAPPING)
    assert "{{ _props.stage }}" in upgraded and "{@stage}" not in upgraded
    with pytest.raises(ValueError, match="not a version 1"):
        upgrade_text(upgraded)


def test_mappings_cli_lint_warns_and_upgrade_rewrites(tmp_path):
    from click.testing import CliRunner

    from memrelay.cli.event_commands import mappings_group

    path = tmp_path / "legacy.yaml"
    path.write_text(LEGACY_CONTACT_MAPPING)
    lint = CliRunner().invoke(mappings_group, ["lint", str(path)])
    assert lint.exit_code == 0 and "warning: version" in lint.output and f"{path}: ok" in lint.output
    upgrade = CliRunner().invoke(mappings_group, ["upgrade", str(path)])
    assert upgrade.exit_code == 0 and "upgraded to version 2" in upgrade.output
    assert load(path.read_text()) == load(CONTACT_MAPPING) and lint_mapping_file(path) == []
    again = CliRunner().invoke(mappings_group, ["upgrade", str(path)])
    assert again.exit_code == 1 and "not upgraded" in again.output


# -- shipped default mappings ------------------------------------------------------------------------


STARTER_PROPERTIES = {
    "contact": {"email", "first_name", "last_name", "job_title", "phone", "company_name", "website_url",
                "lifecycle_stage", "lead_source", "city", "country"},
    "company": {"name", "domain", "industry", "employee_count", "annual_revenue", "technologies", "city", "country"},
    "deal": {"deal_name", "amount", "currency", "stage", "close_date", "pipeline", "owner"},
}  # fmt: skip


@pytest.mark.parametrize("path", default_mapping_files(), ids=lambda p: p.parent.name)
def test_default_mapping_files_are_valid_and_use_starter_properties(path):
    assert lint_mapping_file(path) == []
    spec = load_mapping(path)
    for name, obj in spec.objects.items():
        unknown = set(obj.properties) - STARTER_PROPERTIES[obj.entity_type]
        assert not unknown, f"{path.name} {name}: {unknown}"
        for prop in obj.properties:
            PropertySpec(propertyName=prop)  # the engine accepts the name


def test_every_connector_has_a_loadable_default_mapping():
    for name in connector_names():
        assert load_default_mapping(name).objects
    assert {p.parent.name for p in default_mapping_files()} >= {
        "hubspot", "salesforce", "stripe", "typeform", "forms",
    }  # fmt: skip


def test_hubspot_event_through_default_mapping(make_source):
    hubspot = get_connector("hubspot")
    body = json.dumps(
        [{"eventId": 1, "subscriptionId": 2, "portalId": 3, "occurredAt": 1717243200000, "objectId": 55,
          "subscriptionType": "contact.propertyChange", "propertyName": "lifecyclestage", "propertyValue": "customer"}]
    ).encode()  # fmt: skip
    (event,) = hubspot.parse(deliver(make_source("hubspot"), body, ""))
    mapped = map_event(load_default_mapping("hubspot"), event)
    assert mapped.keys == {"hubspot_contact_id": "55"}
    assert mapped.properties == {"lifecycle_stage": "customer"}
    assert mapped.memories == ["Lifecycle stage changed to customer."]
    assert mapped.source_timestamp == event.occurred_at


def test_hubspot_fetched_deal_through_default_mapping():
    record = {"id": "9", "dealname": "Acme renewal", "amount": "250000", "deal_currency_code": "EUR",
              "dealstage": "closedwon", "closedate": "1735603200000", "pipeline": "default",
              "hs_lastmodifieddate": "2024-12-01T00:00:00Z"}  # fmt: skip
    mapped = apply_mapping(load_default_mapping("hubspot"), "deal", record)
    assert mapped.keys == {"primary": "hubspot-deal-9", "hubspot_deal_id": "9"}
    assert mapped.properties["amount"] == 250000 and mapped.properties["stage"] == "closed_won"
    assert mapped.properties["close_date"] == "2024-12-31"
    assert mapped.memories == ["Deal Acme renewal is at stage closed_won."]
    assert mapped.source_timestamp == datetime(2024, 12, 1, tzinfo=UTC)


def test_stripe_invoice_through_default_mapping(make_source):
    event = {
        "id": "evt_1", "type": "invoice.paid", "created": 1717243200,
        "data": {"object": {"id": "in_1", "object": "invoice", "customer": "cus_1", "customer_email": "Ann@Acme.com",
                            "amount_paid": 1999, "currency": "usd", "status": "paid", "number": "INV-7"}},
    }  # fmt: skip
    (parsed,) = get_connector("stripe").parse(deliver(make_source("stripe"), json.dumps(event).encode(), ""))
    mapped = map_event(load_default_mapping("stripe"), parsed)
    assert mapped.keys == {
        "primary": "ann@acme.com", "email": "ann@acme.com", "website_url": "acme.com", "stripe_customer_id": "cus_1",
    }  # fmt: skip
    assert mapped.properties == {"email": "ann@acme.com", "lifecycle_stage": "Customer"}
    assert mapped.memories == ["Paid invoice INV-7 for 19.99 USD."]
    assert mapped.tags == ["stripe"]


def test_salesforce_lead_through_default_mapping(make_source):
    lead = notification(
        "04l1",
        "Lead",
        "<sf:Id>00Q1</sf:Id><sf:Email>Cy@Initech.com</sf:Email><sf:FirstName>Cy</sf:FirstName>"
        "<sf:LastName>Ng</sf:LastName><sf:Company>Initech</sf:Company><sf:Title>VP Eng</sf:Title>"
        "<sf:Website>https://initech.com</sf:Website><sf:LastModifiedDate>2024-02-03T04:05:06Z</sf:LastModifiedDate>",
    )
    (event,) = get_connector("salesforce").parse(deliver(make_source("salesforce"), envelope(lead), "text/xml"))
    mapped = map_event(load_default_mapping("salesforce"), event)
    assert mapped.entity_type == "contact"
    assert mapped.keys["website_url"] == "initech.com" and mapped.keys["salesforce_lead_id"] == "00Q1"
    assert mapped.properties["company_name"] == "Initech"
    assert mapped.properties["lifecycle_stage"] == "Lead"
    assert "Cy Ng is VP Eng at Initech." in mapped.memories
    assert mapped.source_timestamp == datetime(2024, 2, 3, 4, 5, 6, tzinfo=UTC)


def test_typeform_response_through_default_mapping(make_source):
    (event,) = get_connector("typeform").parse(deliver(make_source("typeform"), TYPEFORM_BODY, ""))
    mapped = map_event(load_default_mapping("typeform"), event)
    assert mapped.keys == {
        "primary": "ann.lee@acme.com",
        "email": "ann.lee@acme.com",
        "website_url": "acme.com",
    }
    assert mapped.properties["first_name"] == "Ann"
    assert mapped.properties["lead_source"] == "newsletter"
    assert 'Said in the form "Book a demo": We are migrating off MySQL this quarter.' in mapped.memories
    assert mapped.tags == ["typeform", "form:lT4Z3j"]


def test_webflow_submission_through_default_mapping(make_source):
    (event,) = get_connector("webflow").parse(deliver(make_source("webflow"), WEBFLOW_BODY, ""))
    mapped = map_event(load_default_mapping("webflow"), event)
    assert mapped.properties["first_name"] == "Zaphod" and mapped.properties["last_name"] == "Beeblebrox"
    assert mapped.properties["phone"] == 15550000000
    assert mapped.properties["lead_source"] == "Web form"
    assert mapped.keys["website_url"] == "heartofgold.ai"


LEGACY_HUBSPOT_MAPPING = """\
connector: hubspot
objects:
  contact:
    entity_type: contact
    keys:
      custom: {hubspot_contact_id: id}
    properties:
      job_title: {source: jobtitle, transform: [strip, {template: "{value} ({_event.type})"}]}
    memories:
      - template: "Job title is now {@job_title}."
        when: {_event.property_name: jobtitle}
    tags: ["portal:{_event.portal_id}"]
"""


def test_a_stored_source_with_a_legacy_mapping_keeps_working(engine, make_source):
    """A source saved before version 2 (mapping text in SQL, no version key) maps events as it did."""
    from memrelay.engine.ingest.pipeline import mapping_for

    org = engine.tenancy.get_or_create_org("legacy-mapping").id
    created = engine.sources.create(org, connector="hubspot", secret="s", mapping_yaml=LEGACY_HUBSPOT_MAPPING)
    mapping = mapping_for(engine.sources.get(org, created["id"]))
    body = json.dumps([{"eventId": 1, "subscriptionId": 2, "portalId": 3, "occurredAt": 1717243200000,
                        "objectId": 55, "subscriptionType": "contact.propertyChange", "propertyName": "jobtitle",
                        "propertyValue": " CTO "}]).encode()
    (event,) = get_connector("hubspot").parse(deliver(make_source("hubspot"), body, ""))
    mapped = map_event(mapping, event)
    assert mapped.properties == {"job_title": "CTO (contact.propertyChange)"}
    assert mapped.memories == ["Job title is now CTO (contact.propertyChange)."]
    assert mapped.tags == ["portal:3"]
