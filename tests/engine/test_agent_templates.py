"""Agent specs use the shared template language; saved legacy specs are migrated (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from memrelay.composition import Services
from memrelay.engine.core.errors import ValidationFailed
from memrelay.engine.guidance.agents import AgentCreate, AgentRun, render, variables_in
from memrelay.engine.stores.db.migrate import upgrade

SMS = {"channel": "sms", "useGuidelines": False}
LEGACY_SPECS = {
    "plain": {**SMS, "instructions": [{"prompt": "Write an SMS about {{input}} for {{ name }}."}]},
    "literal": {**SMS, "instructions": [{"prompt": "Reply with {{ customer.first_name }} kept as is, about {{input}}."}],
                "context": "Brace {{{input}}} and a stray {{ never closed"},
}


def test_agents_use_filters_and_report_bad_templates_with_a_position(engine: Services) -> None:
    org = engine.tenancy.get_or_create_org("agent-templates").id
    agent = engine.agents.create(org, AgentCreate(name="filters", spec={
        **SMS, "instructions": [{"prompt": "Write to {{ name | upper }} about {{ input }} ({{ len(tags) }} tags)."}]}))
    assert agent["variables"] == ["input", "name", "tags"]
    request = engine.agents.prompt_request(org, agent["id"], AgentRun(input="renewal", variables={
        "name": "Dana", "tags": ["a", "b"]}))
    assert request.instructions[0].prompt == "Write to DANA about renewal (2 tags)."
    with pytest.raises(ValidationFailed) as err:
        engine.agents.create(org, AgentCreate(name="bad", spec={**SMS, "instructions": [{"prompt": "Hi {{ name"}]}))
    assert err.value.code == "template_invalid" and err.value.details["column"] == 4


def _at_0005_with_legacy_agents(url: str) -> None:
    upgrade(url, "0005")
    eng = sa.create_engine(url)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with eng.begin() as conn:
        conn.execute(sa.text("INSERT INTO orgs (id, name, settings, created_at) VALUES ('org_1', 'o', '{}', :now)"),
                     {"now": now})
        agents = sa.table("agents", *(sa.column(c) for c in ("id", "org_id", "name", "description", "version",
                                                             "created_at", "updated_at")), sa.column("spec", sa.JSON))
        for name, spec in LEGACY_SPECS.items():
            conn.execute(agents.insert().values(id=f"agt_{name}", org_id="org_1", name=name, description="",
                                                spec=spec, version=1, created_at=now, updated_at=now))
    eng.dispose()


def _specs(url: str) -> dict[str, dict]:
    eng = sa.create_engine(url)
    with eng.connect() as conn:
        rows = conn.execute(sa.text("SELECT name, spec FROM agents")).all()
    eng.dispose()
    return {name: spec if isinstance(spec, dict) else json.loads(spec) for name, spec in rows}


def _check_migrated(url: str) -> None:
    _at_0005_with_legacy_agents(url)
    upgrade(url, "head")
    specs = _specs(url)
    assert specs["plain"] == LEGACY_SPECS["plain"]  # only {{name}} variables: untouched
    literal = specs["literal"]
    assert variables_in(literal) == {"input"}  # as before: the only variable
    filled = render(literal, {"input": "renewal"})
    assert filled["instructions"][0]["prompt"] == "Reply with {{ customer.first_name }} kept as is, about renewal."
    assert filled["context"] == "Brace {renewal} and a stray {{ never closed"


def test_legacy_agent_specs_are_migrated_on_sqlite(tmp_path: Path) -> None:
    _check_migrated(f"sqlite:///{tmp_path / 'legacy.db'}")



def test_legacy_agent_specs_are_migrated_on_postgresql(fresh_pg_schema: str) -> None:
    _check_migrated(fresh_pg_schema)
