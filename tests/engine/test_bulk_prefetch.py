"""The bulk write's identity prefetch (issue 16 item 1): one lookup per key value, whatever the planner's statistics.

On PostgreSQL the prefetch joins the chunk's key values laterally (each value an index lookup on
``ix_record_keys_lookup``, each key found a primary-key lookup on ``records``): with ``key_value IN (...)`` and a
``record_keys`` table not yet analysed (filled by the load itself), the planner checked the list as a filter over
every key of the org, once per chunk, so a load slowed down as it grew."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import event

from memrelay.composition import Services
from memrelay.engine.stores.identity import Identifiers
from memrelay.engine.stores.properties import Provenance

N = 620  # more than one 500-value chunk


def _items(org_tag: str, n: int, title: str) -> list[tuple[Identifiers, dict[str, Any], Provenance]]:
    return [(Identifiers(type="contact", email=f"p{i}-{org_tag}@acme.com"), {"job_title": f"{title} {i}"},
             Provenance(source="test")) for i in range(n)]


def test_a_second_load_finds_every_record_the_first_created(backend: str, engine: Services):
    tag = uuid.uuid4().hex[:8]
    org = engine.tenancy.create_org(f"prefetch-{tag}").id
    first = engine.records.upsert_many(org, _items(tag, N, "Engineer"))
    assert all(r["created"] for r in first)
    # the second batch names the same records (in another order, plus new ones), one by a second key too
    again = _items(tag, N + 5, "CTO")[::-1]
    again[0] = (Identifiers(type="contact", email=f"p{N + 4}-{tag}@acme.com", website_url="https://acme.com"),
                again[0][1], again[0][2])
    second = engine.records.upsert_many(org, again)
    by_email = {ids.email: r for (ids, _, _), r in zip(again, second, strict=True)}
    for i, r in enumerate(first):
        got = by_email[f"p{i}-{tag}@acme.com"]
        assert (got["recordId"], got["created"], got["version"], got["updated"]) == (r["recordId"], False, 2,
                                                                                    ["job_title"])
    assert sum(r["created"] for r in second) == 5
    rec = engine.records.get(org, Identifiers(email=f"p7-{tag}@acme.com"))
    assert rec["properties"]["job_title"]["value"] == "CTO 7"
    third = engine.records.upsert_many(org, [(Identifiers(type="contact", website_url="https://acme.com"),
                                              {"city": "Berlin"}, Provenance(source="test"))])
    assert third[0]["recordId"] == by_email[f"p{N + 4}-{tag}@acme.com"]["recordId"]


def test_the_prefetch_looks_each_value_up_in_the_key_index(backend: str, engine: Services):
    tag = uuid.uuid4().hex[:8]
    org = engine.tenancy.create_org(f"prefetch-plan-{tag}").id
    engine.records.upsert_many(org, _items(tag, 50, "Engineer"))
    stmts: list[tuple[str, Any]] = []

    def grab(conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        if "record_keys" in statement and "key_value" in statement and statement.lstrip().startswith("SELECT"):
            stmts.append((statement, params))

    event.listen(engine.db.engine, "before_cursor_execute", grab)
    try:
        engine.records.upsert_many(org, _items(tag, 60, "CTO"))
    finally:
        event.remove(engine.db.engine, "before_cursor_execute", grab)
    assert len(stmts) == 1
    if engine.db.dialect == "sqlite":  # the IN list is an index lookup per value already
        with engine.db.engine.connect() as c:
            plan = "\n".join(str(r[-1]) for r in c.exec_driver_sql("EXPLAIN QUERY PLAN " + stmts[0][0], stmts[0][1]))
        assert "ix_record_keys_lookup (org_id=? AND key_name=? AND key_value=?)" in plan, plan
        assert "SCAN" not in plan, plan
        return
    with engine.db.engine.connect() as c:
        plan = "\n".join(r[0] for r in c.exec_driver_sql("EXPLAIN " + stmts[0][0], stmts[0][1]))
    assert "FROM unnest(" in stmts[0][0]
    assert "Function Scan on unnest" in plan, plan
    assert "ix_record_keys_lookup" in plan and "key_value = v.key_value" in plan.replace("(key_value)::text", "key_value"), plan
    assert "records_pkey" in plan and "Seq Scan" not in plan and "Join Filter" not in plan, plan
