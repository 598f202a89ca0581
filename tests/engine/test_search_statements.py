"""Round trips of a search (issue 16 item 2): a typed search reads its org's facts (type, schema stamp, keys,
soft deletes) in one statement and the page's records with the count in a second (a third reads the
soft-deleted ids when the type has any); nothing is cached, so a
soft delete, a new custom key or a schema change is seen by the very next search on both databases."""

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
            s.execute(select(Record.primary_key, Record.id).where(Record.org_id == org)).tuples().all()
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


def test_a_typed_search_takes_two_statements_and_pages_like_the_data(backend: str, engine: Services):
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
    }
    _search(engine, org, _q([_eq("lifecycle_stage", "lead")]))  # parse and cache the schema once
    for name, (conditions, logic, wanted) in shapes.items():
        expected = [r["email"] for r in rows if wanted(r)]  # upsert order is creation (id) order
        for offset in (0, 5, len(expected) - 2, len(expected) + 3):
            for cap in (10_000, None, 3):
                found, statements = _search(
                    engine, org, _q(conditions, logic, offset=offset), count_limit=cap
                )
                past_the_end = 0 < len(expected) <= offset  # an empty later page counts on its own
                assert len(statements) == (3 if past_the_end else 2), (name, offset, statements)
                assert _emails(engine, found) == expected[offset : offset + 5], (name, offset)
                assert found.has_more == (len(expected) > offset + 5), (name, offset)
                bound = len(expected) if cap is None else max(cap, offset + 6)
                assert found.total == min(len(expected), bound), (name, offset, cap)
                assert found.total_is_exact == (len(expected) < bound or cap is None), (name, offset, cap)


def test_a_soft_delete_is_seen_by_the_next_search(backend: str, engine: Services):
    org, rows = _load(engine, 12)
    q = _q([_eq("lifecycle_stage", "customer")], limit=50)
    before, _ = _search(engine, org, q)
    customers = [r["email"] for r in rows if r["lifecycle_stage"] == "customer"]
    assert _emails(engine, before) == customers
    engine.records.soft_delete(org, Identifiers(type="contact", email=customers[0]))
    after, statements = _search(engine, org, q)
    assert _emails(engine, after) == customers[1:] and after.total == len(customers) - 1
    assert len(statements) == 3  # facts, the soft-deleted ids, the page (and count)


def test_custom_keys_and_schema_changes_are_seen_without_a_cache(backend: str, engine: Services):
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
    assert len(statements) == 2
    declared = engine.collections.create_entity_type(org, "student", primary_key_field="studentNumber")
    assert declared
    nobody, _ = _search_or_error(engine, org, _q([_eq("studentNumber", "S-1")]))
    assert isinstance(nobody, SearchPage) and nobody.rows == [] and nobody.total == 0


def _search_or_error(engine: Services, org: str, q: SearchQuery) -> tuple[SearchPage | str, list[str]]:
    from memrelay.engine.core.errors import ValidationFailed

    try:
        return _search(engine, org, q)
    except ValidationFailed as exc:
        assert "unknown property" in str(exc)
        return "unknown", []
