"""Round trips of a search (issue 16 item 2): a typed search reads its org's facts (type, schema stamp, keys,
soft deletes) once per process in a statement of their own; from then on it is ONE statement — the page's
records, the count and a live reading of the facts' stamp. A soft delete, a new custom key, a new entity type
or a schema change (by any process: the stamp is read from the database) is seen by the very next search,
which discards the page built on stale facts and runs again on fresh ones, on both databases."""

from __future__ import annotations

import uuid
from typing import Any

from memrelay.composition import Services
from memrelay.engine.stores.identity import Identifiers
from memrelay.engine.stores.properties import Provenance
from memrelay.engine.stores.search import Condition, Group, SearchPage, SearchQuery, search_page

STAGES = ["lead", "customer", "opportunity"]


def _load(engine: Services, n: int) -> tuple[str, list[dict[str, Any]]]:
    """An org with ``n`` contacts; the rows come back in record id (= result) order."""
    from sqlalchemy import select

    from memrelay.engine.stores.db.models import Record

    org = engine.tenancy.create_org(f"stmts-{uuid.uuid4().hex[:8]}").id
    rows = [
        {
            "email": f"u{i}@acme.com",
            "lifecycle_stage": STAGES[i % 3],
            "job_title": "CTO" if i % 4 == 0 else "Engineer",
        }
        for i in range(n)
    ]
    engine.records.upsert_many(
        org,
        [
            (
                Identifiers(type="contact", email=r["email"]),
                {k: v for k, v in r.items() if k != "email"},
                Provenance(source="test"),
            )
            for r in rows
        ],
    )
    with engine.db.read() as s:
        ids = dict(
            s.execute(select(Record.primary_key, Record.id).where(Record.org_id == org)).all()
        )
    return org, sorted(rows, key=lambda r: ids["email:" + r["email"]])


def _search(
    engine: Services,
    org: str,
    q: SearchQuery,
    count_limit: int | None = 10_000,
) -> tuple[SearchPage, list[str]]:
    from sqlalchemy import event

    seen: list[str] = []

    def grab(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        seen.append(statement)

    event.listen(engine.db.read_engine, "before_cursor_execute", grab)
    try:
        with engine.db.read() as s:
            found = search_page(s, engine.collections, org, q, count_limit=count_limit)
    finally:
        event.remove(engine.db.read_engine, "before_cursor_execute", grab)
    return found, [st for st in seen if st.lstrip().upper().startswith("SELECT")]


def _q(
    conditions: list[Condition], logic: str = "AND", limit: int = 5, offset: int = 0, type_: str = "contact"
) -> SearchQuery:
    return SearchQuery(
        identifiers=Identifiers(type=type_),
        groups=[Group(logic=logic, conditions=conditions)],
        limit=limit,
        offset=offset,
    )


def _eq(prop: str, value: str) -> Condition:
    return Condition(property=prop, operator="EQ", value=value)


def _emails(engine: Services, page: SearchPage) -> list[str]:
    return [r.primary_key.removeprefix("email:") for r in page.rows]


def test_a_typed_search_takes_one_statement_once_its_facts_are_known(backend: str, engine: Services):
    org, rows = _load(engine, 40)
    shapes = {
        "EQ": ([_eq("lifecycle_stage", "customer")], "AND", lambda r: r["lifecycle_stage"] == "customer"),
        "AND": (
            [_eq("lifecycle_stage", "lead"), _eq("job_title", "CTO")],
            "AND",
            lambda r: r["lifecycle_stage"] == "lead" and r["job_title"] == "CTO",
        ),
        "OR": (
            [_eq("lifecycle_stage", "opportunity"), _eq("job_title", "CTO")],
            "OR",
            lambda r: r["lifecycle_stage"] == "opportunity" or r["job_title"] == "CTO",
        ),
        "NEQ": (
            [Condition(property="job_title", operator="NEQ", value="CTO")],
            "AND",
            lambda r: r["job_title"] != "CTO",
        ),
        "nothing": ([_eq("lifecycle_stage", "churned")], "AND", lambda r: False),
    }
    known: set[frozenset[str]] = set()  # the facts are per org, type and the conditions' properties
    for name, (conditions, logic, wanted) in shapes.items():
        expected = [r["email"] for r in rows if wanted(r)]  # upsert order is creation (id) order
        for offset in (0, 5, len(expected) - 2, len(expected) + 3):
            for cap in (10_000, None, 3):
                found, statements = _search(
                    engine, org, _q(conditions, logic, offset=max(0, offset)), count_limit=cap
                )
                props = frozenset(c.property for c in conditions)
                first = props not in known
                known.add(props)
                assert len(statements) == (2 if first else 1), (name, offset, statements)
                offset = max(0, offset)
                assert _emails(engine, found) == expected[offset : offset + 5], (name, offset)
                assert found.has_more == (len(expected) > offset + 5), (name, offset)
                bound = len(expected) if cap is None else max(cap, offset + 6)
                assert found.total == min(len(expected), bound), (name, offset, cap)
                assert found.total_is_exact == (len(expected) < bound or cap is None), (name, offset, cap)


def test_a_soft_delete_is_seen_by_the_next_search(backend: str, engine: Services):
    org, rows = _load(engine, 12)
    q = _q([_eq("lifecycle_stage", "customer")], limit=50)
    before, first = _search(engine, org, q)
    _, warm = _search(engine, org, q)
    customers = [r["email"] for r in rows if r["lifecycle_stage"] == "customer"]
    assert _emails(engine, before) == customers and (len(first), len(warm)) == (2, 1)
    engine.records.soft_delete(org, Identifiers(type="contact", email=customers[0]))
    after, statements = _search(engine, org, q)
    assert _emails(engine, after) == customers[1:] and after.total == len(customers) - 1
    # the page on cached facts (its stamp says a record is now soft-deleted: discarded), the fresh facts,
    # the soft-deleted ids, the page
    assert len(statements) == 4
    again, statements = _search(engine, org, q)
    assert _emails(engine, again) == customers[1:] and len(statements) == 2  # the soft-deleted ids, the page


def test_custom_keys_and_entity_types_are_seen_by_the_next_search(backend: str, engine: Services):
    org, rows = _load(engine, 6)
    unknown, _ = _search_or_error(engine, org, _q([_eq("loyaltyCode", "D-1")]))
    assert unknown == "unknown"  # no type declares loyaltyCode and no record holds it
    engine.records.upsert(
        org,
        Identifiers(
            type="contact", email=rows[2]["email"], customKeyName="loyaltyCode", customKeyValue="D-1"
        ),
        {},
        Provenance(source="test"),
    )
    found, statements = _search_or_error(engine, org, _q([_eq("loyaltyCode", "D-1")]))
    assert isinstance(found, SearchPage) and _emails(engine, found) == [rows[2]["email"]]
    assert len(statements) == 2  # the cached facts said "unknown": checked against fresh facts, then the page
    nobody, _ = _search_or_error(engine, org, _q([_eq("studentNumber", "S-1")]))
    assert nobody == "unknown"
    engine.collections.create_entity_type(org, "student", primary_key_field="studentNumber")
    nobody, statements = _search_or_error(engine, org, _q([_eq("studentNumber", "S-1")]))
    assert isinstance(nobody, SearchPage) and nobody.rows == [] and nobody.total == 0 and len(statements) == 2


def test_a_schema_change_is_never_answered_from_the_stale_schema(backend: str, engine: Services):
    """A property whose type changes from text to number: the search after the change compares numbers (the
    page built on the cached text schema is read, its stamp no longer matches, and it is discarded)."""
    org = engine.tenancy.create_org(f"stmts-{uuid.uuid4().hex[:8]}").id
    created = engine.collections.create(org, name="Scores", entity_type="contact",
                                        properties=[{"propertyName": "score", "type": "text"}])
    items = [(Identifiers(type="contact", email=f"s{i}@acme.com"), {"score": str(v)}, Provenance(source="test"))
             for i, v in enumerate((5, 10, 40))]
    engine.records.upsert_many(org, items)
    q = _q([Condition(property="score", operator="GT", value="9")], limit=50)
    as_text, _ = _search(engine, org, q)
    assert _emails(engine, as_text) == []  # as text, "5", "10" and "40" all sort before "9"
    engine.collections.update(org, created["collectionId"],
                              properties=[{"propertyName": "score", "type": "number"}])
    engine.records.upsert_many(org, items)  # values written again: now with their numbers
    as_number, statements = _search(engine, org, q)
    assert sorted(_emails(engine, as_number)) == ["s1@acme.com", "s2@acme.com"]
    assert len(statements) == 3  # the stale page (discarded), the fresh facts, the page
    _, statements = _search(engine, org, q)
    assert len(statements) == 1


def _search_or_error(engine: Services, org: str, q: SearchQuery) -> tuple[SearchPage | str, list[str]]:
    from memrelay.engine.core.errors import ValidationFailed

    try:
        return _search(engine, org, q)
    except ValidationFailed as exc:
        assert "unknown property" in str(exc)
        return "unknown", []


def test_the_org_types_stamp_does_not_depend_on_the_plan(backend: str, engine: Services):
    """The stamp's aggregate of the org's types is the same whichever way PostgreSQL reads ``entity_types`` (an
    index scan in name order, a sequential scan in insertion order): a page statement run as a generic prepared
    plan must read the stamp its facts statement read, or every search re-reads the facts."""
    import pytest
    from sqlalchemy import select

    from memrelay.engine.stores.search import _stamp_columns

    if backend != "postgres":
        pytest.skip("SQLite plans this subquery one way")
    org, _ = _load(engine, 3)
    stamp = select(_stamp_columns(org, "contact", (), ordered=True)[0])
    unordered = select(_stamp_columns(org, "contact", (), ordered=False)[0])
    read: dict[tuple[str, bool], Any] = {}
    for scan, settings in (("index", ("enable_seqscan",)), ("seq", ("enable_indexscan", "enable_bitmapscan",
                                                                    "enable_indexonlyscan"))):
        with engine.db.engine.connect() as c:
            for setting in settings:
                c.exec_driver_sql(f"SET LOCAL {setting} = off")
            read[(scan, True)] = c.execute(stamp).scalar()
            read[(scan, False)] = c.execute(unordered).scalar()
    assert read[("index", True)] == read[("seq", True)]
    assert len(read[("index", True)].split(";")) > 2
    # what the order fixes: the two scans return the org's types in different orders
    assert read[("index", False)] != read[("seq", False)]
