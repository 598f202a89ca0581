"""Migration 0010 on an existing database: entity types gain display columns, existing orgs' starter
collections gain Personize's standard-schema properties (never overriding the org's own definitions), with a
new collection version each; what the migration adds is what a new org is seeded with."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from memrelay.engine.domain.starter_schema import STARTER_COLLECTIONS
from memrelay.engine.stores.db.migrate import upgrade

NOW = datetime(2026, 1, 1, tzinfo=UTC)
OLD_CONTACT = [{"propertyName": "email", "type": "text", "description": "Email."},
               {"propertyName": "company_name", "type": "text", "description": "Employer."}]
ORG_OWN_COMPANY = {"propertyName": "company", "type": "number", "description": "The org's own meaning."}


def _collection(conn: Any, cid: str, org: str, name: str, entity_type: str, props: list[dict[str, Any]]) -> None:
    conn.execute(sa.text(
        "INSERT INTO collections (id, org_id, name, entity_type, description, properties, tags, version, "
        "created_at, updated_at) VALUES (:id, :org, :name, :et, '', :props, '[]', 1, :now, :now)"),
        {"id": cid, "org": org, "name": name, "et": entity_type, "props": json.dumps(props), "now": NOW})


def _props(conn: Any, cid: str) -> dict[str, dict[str, Any]]:
    raw = conn.execute(sa.text("SELECT properties FROM collections WHERE id = :id"), {"id": cid}).scalar_one()
    items = json.loads(raw) if isinstance(raw, str) else raw
    return {p["propertyName"]: p for p in items}


def _check_migrated(url: str) -> None:
    upgrade(url, "0009")
    eng = sa.create_engine(url)
    with eng.begin() as conn:
        for org in ("org_a", "org_b"):
            conn.execute(sa.text("INSERT INTO orgs (id, name, settings, created_at) VALUES (:id, :id, '{}', :now)"),
                         {"id": org, "now": NOW})
        conn.execute(sa.text("INSERT INTO entity_types (id, org_id, name, description, system, created_at) "
                             "VALUES ('et_1', 'org_a', 'contact', '', true, :now)"), {"now": NOW})
        _collection(conn, "col_a", "org_a", "Contact", "contact", OLD_CONTACT)
        _collection(conn, "col_a2", "org_a", "Signals", "contact", [ORG_OWN_COMPANY])
        _collection(conn, "col_b", "org_b", "Contact", "contact", OLD_CONTACT)
        _collection(conn, "col_b_co", "org_b", "Company", "company", [])
        _collection(conn, "col_b_other", "org_b", "Partners", "partner", [])
    upgrade(url, "head")
    with eng.begin() as conn:
        a, b = _props(conn, "col_a"), _props(conn, "col_b")
        assert {"mobile_phone", "full_name", "linkedin_url", "pain_points", "plan_tier"} <= set(a)
        assert "company" not in a and _props(conn, "col_a2")["company"] == ORG_OWN_COMPANY  # the org's wins
        assert b["company"]["type"] == "text" and b["email"]["description"] == "Email."  # kept as it was
        assert b["pain_points"]["updateMode"] == "append"
        assert {"company_name", "website", "technology_stack"} <= set(_props(conn, "col_b_co"))
        assert _props(conn, "col_b_other") == {}
        versions = conn.execute(sa.text(
            "SELECT collection_id, version, actor FROM collection_versions ORDER BY collection_id")).all()
        assert [tuple(v) for v in versions] == [("col_a", 2, "migration:0010"), ("col_b", 2, "migration:0010"),
                                                ("col_b_co", 2, "migration:0010")]
        assert conn.execute(sa.text("SELECT version FROM collections WHERE id = 'col_b_other'")).scalar_one() == 1
        row = conn.execute(sa.text("SELECT label, plural_label, icon, color, identifier_column FROM entity_types"))
        assert [tuple(r) for r in row] == [(None, None, None, None, None)]
    eng.dispose()
    seeded = {p["propertyName"]: p for c in STARTER_COLLECTIONS if c["name"] == "Contact" for p in c["properties"]}
    added = {n: p for n, p in b.items() if n not in ("email", "company_name")}
    assert all(seeded[n] == p for n, p in added.items())  # the migration adds what new orgs are seeded with


def test_migration_0010_on_sqlite(tmp_path: Path) -> None:
    _check_migrated(f"sqlite:///{tmp_path / 'legacy.db'}")


def test_migration_0010_on_postgresql(fresh_pg_schema: str) -> None:
    _check_migrated(fresh_pg_schema)
