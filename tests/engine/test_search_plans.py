"""Search plans (issue 16 item 2): EXPLAIN on SQLite and PostgreSQL shows index use for property EQ and a
page that does not read the whole table; the bounded count says when it stopped."""

from __future__ import annotations

import uuid
from typing import Any

from memrelay.composition import Services
from memrelay.engine.stores.identity import Identifiers
from memrelay.engine.stores.properties import Provenance
from memrelay.engine.stores.search import Condition, Group, SearchQuery, search_page

STAGES = ["lead", "customer", "opportunity"]


def _load(engine: Services, n: int) -> str:
    org = engine.tenancy.create_org(f"plans-{uuid.uuid4().hex[:8]}").id
    items = [(Identifiers(type="contact", email=f"u{i}@acme.com"),
              {"lifecycle_stage": STAGES[i % 3], "job_title": "CTO" if i % 4 == 0 else "Engineer",
               "city": f"City{i % 5}"}, Provenance(source="test")) for i in range(n)]
    engine.records.upsert_many(org, items)
    with engine.db.engine.begin() as c:
        c.exec_driver_sql("ANALYZE")
    return org


def _query(groups: list[Group], limit: int = 5, offset: int = 0) -> SearchQuery:
    return SearchQuery(identifiers=Identifiers(type="contact"), groups=groups, limit=limit, offset=offset)


def _eq(prop: str, value: str) -> Condition:
    return Condition(property=prop, operator="EQ", value=value)


def _captured_plans(engine: Services, org: str, q: SearchQuery) -> list[str]:
    """The EXPLAIN output of every statement a search runs that reads property_values."""
    from sqlalchemy import event

    stmts: list[tuple[str, Any]] = []

    def grab(conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        if "property_values" in statement and not statement.startswith("EXPLAIN"):
            stmts.append((statement, params))

    event.listen(engine.db.read_engine, "before_cursor_execute", grab)
    try:
        with engine.db.read() as s:
            search_page(s, engine.collections, org, q)
    finally:
        event.remove(engine.db.read_engine, "before_cursor_execute", grab)
    assert stmts
    plans = []
    with engine.db.read_engine.connect() as c:
        for statement, params in stmts:
            prefix = "EXPLAIN QUERY PLAN " if engine.db.dialect == "sqlite" else "EXPLAIN "
            rows = c.exec_driver_sql(prefix + statement, params).all()
            plans.append("\n".join(str(r[-1]) for r in rows))
    return plans


def test_eq_on_a_property_is_read_from_an_index_and_the_page_is_bounded(backend: str, engine: Services):
    org = _load(engine, 300)
    plans = _captured_plans(engine, org, _query([Group(conditions=[_eq("lifecycle_stage", "customer")])]))
    page_plan = plans[0]
    if engine.db.dialect == "sqlite":
        assert "INDEX ix_props" in page_plan, page_plan
        assert "SCAN property_values" not in page_plan and "USE TEMP B-TREE FOR ORDER BY" not in page_plan, page_plan
    else:
        assert "Index" in page_plan and "ix_props" in page_plan, page_plan
        assert "Seq Scan on property_values" not in page_plan and "Limit" in page_plan, page_plan


def test_an_and_is_driven_by_one_index_and_probes_the_other(backend: str, engine: Services):
    org = _load(engine, 300)
    q = _query([Group(conditions=[_eq("job_title", "CTO"), _eq("lifecycle_stage", "customer")])])
    plans = _captured_plans(engine, org, q)
    for plan in plans:
        assert "Seq Scan on property_values" not in plan and "SCAN property_values" not in plan, plan
    with engine.db.read() as s:
        found = search_page(s, engine.collections, org, q.model_copy(update={"limit": 500}))
    # i % 4 == 0 and i % 3 == 1: i in {4, 16, 28, ...}: every 12th from 4
    assert found.total == len(range(4, 300, 12)) and found.total_is_exact and not found.has_more


def test_the_bounded_count_stops_at_its_cap_and_says_so(backend: str, engine: Services):
    org = _load(engine, 120)
    q = _query([Group(logic="OR", conditions=[_eq("city", "City1"), _eq("job_title", "CTO")])], limit=10, offset=10)
    with engine.db.read() as s:
        exact = search_page(s, engine.collections, org, q, count_limit=None)
        bounded = search_page(s, engine.collections, org, q, count_limit=25)
        wide = search_page(s, engine.collections, org, q, count_limit=1000)
    expected = [i for i in range(120) if i % 5 == 1 or i % 4 == 0]
    assert exact.total == len(expected) == wide.total and exact.total_is_exact and wide.total_is_exact
    assert bounded.total == 25 and not bounded.total_is_exact and bounded.has_more
    assert [r.primary_key for r in bounded.rows] == [r.primary_key for r in exact.rows]
    with engine.db.read() as s:
        everything = search_page(s, engine.collections, org, q.model_copy(update={"offset": 0, "limit": 500}))
    assert sorted(r.primary_key for r in everything.rows) == sorted(f"email:u{i}@acme.com" for i in expected)
    assert [r.id for r in everything.rows] == sorted(r.id for r in everything.rows)  # creation (id) order
    assert [r.id for r in exact.rows] == [r.id for r in everything.rows][10:20]


def test_negations_and_soft_deletes_page_limit_first_like_the_exact_answer(backend: str, engine: Services):
    org = _load(engine, 60)
    for i in (2, 7, 17):
        engine.records.soft_delete(org, Identifiers(type="contact", email=f"u{i}@acme.com"))
    q = _query([Group(conditions=[Condition(property="lifecycle_stage", operator="NEQ", value="lead"),
                                  _eq("city", "City2")])], limit=3)
    with engine.db.read() as s:
        exact = search_page(s, engine.collections, org, q, count_limit=None)
        capped = search_page(s, engine.collections, org, q, count_limit=2)
    live = {f"email:u{i}@acme.com" for i in range(60) if i % 3 != 0 and i % 5 == 2 and i not in (2, 7, 17)}
    with engine.db.read() as s:
        everything = search_page(s, engine.collections, org, q.model_copy(update={"limit": 500}), count_limit=None)
    assert {r.primary_key for r in everything.rows} == live and exact.total == len(live) > 4
    assert [r.id for r in exact.rows] == sorted(r.id for r in everything.rows)[:3]
    # the cap is never below one past the page: 4 here, so more pages are still announced
    assert [r.id for r in capped.rows] == [r.id for r in exact.rows] and capped.total == 4 and not capped.total_is_exact
    assert capped.has_more
