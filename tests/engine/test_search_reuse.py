"""A typed search's page statement is built once per query shape and reused with the next search's values bound
(issue 16 item 2): a reused statement answers exactly what a freshly built one answers for every value, never a
previous search's values, and a value the builders refuse is refused on the reused path too, on both databases."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from memrelay.composition import Services
from memrelay.engine.core.errors import ValidationFailed
from memrelay.engine.stores import search
from memrelay.engine.stores.identity import Identifiers
from memrelay.engine.stores.properties import Provenance
from memrelay.engine.stores.search import Condition, Group, SearchQuery, search_page

STAGES = ["lead", "customer", "opportunity"]


def _load(engine: Services, n: int) -> str:
    org = engine.tenancy.create_org(f"reuse-{uuid.uuid4().hex[:8]}").id
    engine.records.upsert_many(
        org,
        [
            (
                Identifiers(type="contact", email=f"u{i}@acme.com"),
                {
                    "lifecycle_stage": STAGES[i % 3],
                    "city": f"City{i % 5}",
                    "job_title": "CTO" if i % 4 == 0 else "Engineer",
                },
                Provenance(source="test"),
            )
            for i in range(n)
        ],
    )
    engine.records.upsert_many(
        org,
        [
            (
                Identifiers(type="company", website_url=f"https://c{i}.example"),
                {"name": f"Co {i}", "employee_count": i * 10, "founded": f"{1990 + i % 30}-01-01"},
                Provenance(source="test"),
            )
            for i in range(n)
        ],
    )
    return org


def _c(prop: str, op: str, value: Any = None) -> Condition:
    return Condition(property=prop, operator=op, value=value)


# each shape with two value sets: the second search reuses the statement the first one built
CASES: list[tuple[str, Identifiers, list[Any], list[Any]]] = [
    (
        "EQ",
        Identifiers(type="contact"),
        [_c("lifecycle_stage", "EQ", "lead")],
        [_c("lifecycle_stage", "EQ", "customer")],
    ),
    (
        "AND",
        Identifiers(type="contact"),
        [_c("city", "EQ", "City1"), _c("job_title", "EQ", "CTO")],
        [_c("city", "EQ", "City2"), _c("job_title", "EQ", "Engineer")],
    ),
    (
        "number GT",
        Identifiers(type="company"),
        [_c("employee_count", "GT", 150)],
        [_c("employee_count", "GT", 20)],
    ),
    (
        "date GTE",
        Identifiers(type="company"),
        [_c("founded", "GTE", "2015-06-01")],
        [_c("founded", "GTE", "1995-01-01")],
    ),
    (
        "IN",
        Identifiers(type="contact"),
        [_c("lifecycle_stage", "IN", ["lead", "customer"])],
        [_c("lifecycle_stage", "IN", ["opportunity", "nobody"])],
    ),
    (
        "CONTAINS",
        Identifiers(type="contact"),
        [_c("city", "CONTAINS", "ty3")],
        [_c("city", "CONTAINS", "ty4")],
    ),
    (
        "NEQ",
        Identifiers(type="contact"),
        [_c("lifecycle_stage", "NEQ", "lead")],
        [_c("lifecycle_stage", "NEQ", "customer")],
    ),
    (
        "key EQ",
        Identifiers(type="contact"),
        [_c("email", "EQ", "U3@acme.com")],
        [_c("email", "EQ", "u7@acme.com")],
    ),
    (
        "key IN",
        Identifiers(type="contact"),
        [_c("email", "IN", ["u1@acme.com", "u2@acme.com"])],
        [_c("email", "IN", ["u5@acme.com", "u9@acme.com"])],
    ),
    ("identifier", Identifiers(type="contact", email="u4@acme.com"), [], []),
]


def _ids(engine: Services, org: str, ident: Identifiers, conditions: list[Any]) -> tuple[list[str], int]:
    groups = [Group(conditions=conditions)] if conditions else []
    with engine.db.read() as s:
        found = search_page(
            s, engine.collections, org, SearchQuery(identifiers=ident, groups=groups, limit=7)
        )
    return [r.primary_key for r in found.rows], found.total


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_a_reused_statement_answers_like_a_fresh_one(
    backend: str, engine: Services, case: Any, monkeypatch: pytest.MonkeyPatch
):
    _, ident, first, second = case
    if not first:  # an identifier lookup: the second search asks for another record
        second_ident = Identifiers(type="contact", email="u6@acme.com")
    else:
        second_ident = ident
    org = _load(engine, 40)
    fresh = {}
    for label, i, conds in (("first", ident, first), ("second", second_ident, second)):
        # no facts, no statement: built for this search alone
        monkeypatch.setattr(search, "_FACTS", search._FactsCache())
        fresh[label] = _ids(engine, org, i, conds)
    monkeypatch.setattr(search, "_FACTS", search._FactsCache())
    _ids(engine, org, ident, first)  # reads the facts
    assert _ids(engine, org, ident, first) == fresh["first"]  # builds the shape's statement
    assert _ids(engine, org, second_ident, second) == fresh["second"]  # reuses it with the second values
    assert _ids(engine, org, ident, first) == fresh["first"]
    assert fresh["first"] != fresh["second"]
    [facts] = search._FACTS._items.values()
    assert len(facts.pages) == 1  # one statement served both value sets


def test_a_value_the_builder_refuses_is_refused_on_a_reused_statement(backend: str, engine: Services):
    org = _load(engine, 10)
    for _ in range(3):  # facts, then the built statement, then reuse
        assert _ids(engine, org, Identifiers(type="company"), [_c("employee_count", "GT", 5)])[1] > 0
    with pytest.raises(ValidationFailed):
        _ids(engine, org, Identifiers(type="company"), [_c("employee_count", "GT", "many")])
    for _ in range(3):  # CONTAINS on a number reads its text, but the value must still be a number
        assert _ids(engine, org, Identifiers(type="company"), [_c("employee_count", "CONTAINS", 5)])[1] > 0
    with pytest.raises(ValidationFailed):
        _ids(engine, org, Identifiers(type="company"), [_c("employee_count", "CONTAINS", "many")])


def test_each_shape_gets_its_own_statement(backend: str, engine: Services):
    """Page, page size, list length and operator are part of the shape: each answers its own rows."""
    org = _load(engine, 30)
    contact = Identifiers(type="contact")

    def page(s: Any, condition: Condition, limit: int, offset: int = 0) -> Any:
        q = SearchQuery(identifiers=contact, limit=limit, offset=offset, groups=[Group(conditions=[condition])])
        return search_page(s, engine.collections, org, q)

    for _ in range(2):
        with engine.db.read() as s:
            a = page(s, _c("lifecycle_stage", "EQ", "lead"), 3)
            b = page(s, _c("lifecycle_stage", "EQ", "lead"), 3, offset=3)
            c = page(s, _c("lifecycle_stage", "IN", ["lead", "customer", "opportunity"]), 50)
        assert len(a.rows) == 3 and len(b.rows) == 3 and not {r.id for r in a.rows} & {r.id for r in b.rows}
        assert a.total == b.total == 10 and c.total == 30


def test_page_records_carry_every_column_as_the_orm_loads_them(backend: str, engine: Services):
    """The page's records are read as plain columns and handed out as detached ``Record`` objects: every
    attribute equals what the ORM loads for that id."""
    from sqlalchemy import inspect, select

    from memrelay.engine.stores.db.models import Record

    org = _load(engine, 12)
    for _ in range(3):
        with engine.db.read() as s:
            found = search_page(
                s, engine.collections, org, SearchQuery(identifiers=Identifiers(type="contact"), limit=20)
            )
    assert found.rows
    columns = [c.key for c in Record.__table__.columns]
    with engine.db.read() as s:
        loaded = {r.id: r for r in s.scalars(select(Record).where(Record.id.in_([r.id for r in found.rows])))}
        for r in found.rows:
            assert inspect(r).detached
            assert {c: getattr(r, c) for c in columns} == {c: getattr(loaded[r.id], c) for c in columns}


def test_postgresql_runs_a_kept_statement_as_its_sql_text(backend: str, engine: Services):
    """On PostgreSQL a kept page statement also holds its SQL text and build-time values (``driver``), run with
    ``exec_driver_sql`` — except a statement with an expanding parameter (an IN over keys), which SQLAlchemy
    expands per execution; SQLite always runs the statement itself. Either way the answers are the fresh ones
    (test_a_reused_statement_answers_like_a_fresh_one covers every shape)."""
    org = _load(engine, 12)
    contact = Identifiers(type="contact")
    for conds in ([_c("lifecycle_stage", "EQ", "lead")], [_c("email", "IN", ["u1@acme.com", "u2@acme.com"])]):
        for _ in range(2):
            _ids(engine, org, contact, conds)
    forms = {shape[2][0][1][0][1]: built.driver for key, facts in search._FACTS._items.items() if key[0] == org
             for shape, built in facts.pages.items()}  # by operator (EQ and IN: facts of their own custom keys)
    assert set(forms) == {"EQ", "IN"}
    if engine.db.dialect == "postgresql":
        assert forms["EQ"] is not None and forms["IN"] is None
        sql, bound = forms["EQ"]
        assert sql.startswith("SELECT records.id") and "g0c0p" in bound
    else:
        assert forms == {"EQ": None, "IN": None}
