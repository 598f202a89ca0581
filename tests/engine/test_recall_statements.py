"""Scoped recall's prebuilt statements (issue 16, scoped recall p50) answer exactly what the ORM reads they replace,
on both SQL backends: the records a key scopes a recall to (with their cache stamps, in the same statement), the
names the records go by (one statement), and the memories of the records missed by the entity cache (one
statement) — and a department key's access criteria still apply to each of them."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from memrelay.composition import Services
from memrelay.engine.core.access import AccessScope, access_scope
from memrelay.engine.memory.entity_vectors import STAMP_COLUMNS, EntityVectorCache, stamps_from, stamps_of
from memrelay.engine.memory.memories import MemorizeRequest
from memrelay.engine.memory.recall import subject_names
from memrelay.engine.stores.db.models import Record, RecordKey
from memrelay.engine.stores.identity import Identifiers, holders
from memrelay.engine.stores.properties import Provenance

DOMAIN = "orbis-metal.example"


def _org(engine: Services, name: str) -> str:
    return engine.tenancy.get_or_create_org(f"statements-{name}-{id(engine)}").id


def _memorize(engine: Services, org: str, text: str, **ids: Any) -> str:
    out = engine.memories.memorize(org, MemorizeRequest.model_validate({"content": text, **ids}))
    return str(out["recordId"])


@pytest.fixture()
def orbis(engine: Services) -> dict[str, Any]:
    """A company and two contacts carrying its website, a deleted contact carrying it too, and the same website
    in another org."""
    org = _org(engine, "orbis")
    company = _memorize(
        engine, org, "Orbis Metalworks makes metal parts in Gdansk.", website_url=DOMAIN, type="company"
    )
    ewa = _memorize(
        engine,
        org,
        "Ewa runs procurement.",
        email="ewa@orbis-metal.example",
        website_url=DOMAIN,
        type="contact",
    )
    jan = _memorize(
        engine,
        org,
        "Jan signs the contracts.",
        email="jan@orbis-metal.example",
        website_url=DOMAIN,
        type="contact",
    )
    gone = _memorize(
        engine, org, "Old contact.", email="old@orbis-metal.example", website_url=DOMAIN, type="contact"
    )
    engine.records.soft_delete(org, Identifiers(email="old@orbis-metal.example", type="contact"))
    engine.records.upsert(
        org,
        Identifiers(type="contact", email="ewa@orbis-metal.example"),
        {"first_name": "Ewa", "last_name": "Lis", "company_name": "Orbis Metalworks"},
        Provenance(source="crm"),
    )
    other = _org(engine, "other")
    _memorize(engine, other, "Another org's Orbis.", website_url=DOMAIN, type="company")
    return {"org": org, "company": company, "ewa": ewa, "jan": jan, "gone": gone}


CASES = [
    (Identifiers(website_url=DOMAIN), None),
    (Identifiers(website_url=DOMAIN), ["contact"]),
    (Identifiers(website_url=DOMAIN), ["company", "deal"]),
    (Identifiers(email="ewa@orbis-metal.example"), None),
    (Identifiers(email="old@orbis-metal.example"), None),
    (Identifiers(email="nobody@orbis-metal.example", website_url=DOMAIN), None),
]


def _reference(s: Any, org_id: str, ids: Identifiers, types: list[str] | None, limit: int) -> list[tuple[str, str]]:
    """What holders() must answer, written as a plain ORM query per key (the lookup recall used before)."""
    for name, value in ids.keys():
        if name == "record_id" and value.startswith("rec_"):
            rec = s.get(Record, value)
            ok = rec is not None and rec.org_id == org_id and rec.deleted_at is None \
                and (types is None or rec.entity_type in types)
            return [(rec.id, rec.entity_type)] if ok else []
        q = select(Record).join(RecordKey, RecordKey.record_id == Record.id).where(
            RecordKey.org_id == org_id, RecordKey.key_name == name, RecordKey.key_value == value,
            Record.org_id == org_id, Record.deleted_at.is_(None))
        if types is not None:
            q = q.where(Record.entity_type.in_(types))
        found = [(r.id, r.entity_type) for r in s.scalars(q.order_by(Record.created_at, Record.id).limit(limit))]
        if found:
            return found
    return []


@pytest.mark.parametrize(("ids", "types"), CASES)
def test_holders_are_the_records_holding_the_key(
    engine: Services, orbis: dict[str, Any], backend: str, ids: Identifiers, types: list[str] | None
) -> None:
    with engine.db.read() as s:
        expected = _reference(s, orbis["org"], ids, types, limit=10)
        got = holders(s, orbis["org"], ids, types, limit=10)
        assert [(h.id, h.entity_type) for h in got] == expected
        assert [h.extra for h in got] == [() for _ in got]
        assert [(h.id, h.entity_type) for h in holders(s, orbis["org"], ids, types, limit=2)] == expected[:2]


def test_holders_by_record_id_and_their_stamps(engine: Services, orbis: dict[str, Any], backend: str) -> None:
    org = orbis["org"]
    with engine.db.read() as s:
        for rid, live in ((orbis["ewa"], True), (orbis["gone"], False)):
            got = holders(s, org, Identifiers(record_id=rid), None, limit=10, columns=STAMP_COLUMNS)
            assert [h.id for h in got] == ([rid] if live else [])
        assert holders(s, org, Identifiers(record_id=orbis["ewa"]), ["company"], limit=10) == []
        assert holders(s, _org(engine, "other"), Identifiers(record_id=orbis["ewa"]), None, limit=10) == []
        scoped = holders(s, org, Identifiers(website_url=DOMAIN), None, limit=10, columns=STAMP_COLUMNS)
        read = stamps_of(s, org, [h.id for h in scoped])
        assert {h.id: stamps_from(h.extra) for h in scoped} == read
        ewa = read[orbis["ewa"]]
        assert ewa[0][0] == 1 and ewa[1][2] == 2  # one memory; two keys (email, website_url)
    _memorize(engine, org, "Ewa asked for a quote.", email="ewa@orbis-metal.example", type="contact")
    engine.records.upsert(
        org,
        Identifiers(type="contact", email="ewa@orbis-metal.example"),
        {"last_name": "Nowak"},
        Provenance(source="crm"),
    )
    with engine.db.read() as s:
        after = stamps_of(s, org, [orbis["ewa"], orbis["jan"]])
    # a memory write: a new generation
    assert after[orbis["ewa"]][0] != ewa[0] and after[orbis["ewa"]][0][0] == 2
    assert after[orbis["ewa"]][1] != ewa[1]  # a property write: new name stamp
    assert after[orbis["jan"]] == read[orbis["jan"]]


def test_subject_names_in_one_statement(engine: Services, orbis: dict[str, Any], backend: str) -> None:
    org = orbis["org"]
    with engine.db.read() as s:
        # properties first (by name), then each record's email (local part, domain label) and website label
        assert subject_names(s, [orbis["ewa"]]) == ["Orbis Metalworks", "orbis metal", "Ewa", "Lis", "ewa"]
        assert subject_names(s, [orbis["company"]]) == ["orbis metal"]
        assert subject_names(s, [orbis["jan"], orbis["company"]]) == ["orbis metal", "jan"]
    # a custom key names nothing; the record's first email does (as its keys render)
    engine.records.upsert(
        org,
        Identifiers(type="contact", email="jan@orbis-metal.example", customKeys={"crmId": "J-1"}),
        {},
        Provenance(source="crm"),
    )
    with engine.db.read() as s:
        assert subject_names(s, [orbis["jan"]]) == ["orbis metal", "jan"]


def test_lookup_many_loads_each_missed_record_once(
    engine: Services, orbis: dict[str, Any], backend: str
) -> None:
    org, emb = orbis["org"], engine.embedder
    cache = EntityVectorCache()
    ids = [orbis["company"], orbis["ewa"], orbis["jan"]]
    with engine.db.read() as s:
        first = cache.lookup_many(s, org, ids, embedder=emb.name, dim=emb.dim)
        again = cache.lookup_many(s, org, ids, embedder=emb.name, dim=emb.dim)
    assert [ev.rows[0]["recordId"] for ev, _ in first] == ids
    assert all(a[0] is b[0] for a, b in zip(first, again, strict=True))  # served from the cache
    assert [len(ev.rows) for ev, _ in first] == [1, 1, 1]
    _memorize(
        engine,
        org,
        "Jan is on leave in March.",
        email="jan@orbis-metal.example",
        type="contact",
        tags=["hr", "leave"],
        metadata={"source": {"system": "hris"}, "days": 10},
    )
    with engine.db.read() as s:
        third = cache.lookup_many(s, org, ids, embedder=emb.name, dim=emb.dim)
        single, _ = cache.lookup(s, org, orbis["jan"], embedder=emb.name, dim=emb.dim)
    assert third[0][0] is first[0][0] and third[1][0] is first[1][0]  # untouched records stay cached
    jan = third[2][0].rows
    assert {r["text"] for r in jan} == {"Jan signs the contracts.", "Jan is on leave in March."}
    assert [r["memoryId"] for r in jan] == sorted(r["memoryId"] for r in jan)  # in memory id order, as ever
    assert single is third[2][0]
    leave = next(
        r for r in jan if r["text"] == "Jan is on leave in March."
    )  # JSON columns decoded, both backends
    assert leave["tags"] == ["hr", "leave"] and leave["metadata"] == {
        "source": {"system": "hris"},
        "days": 10,
    }
    assert next(r for r in jan if r is not leave)["tags"] == [] and leave["staleTopics"] == ()


def test_department_criteria_apply_to_the_scoped_statements(
    engine: Services, orbis: dict[str, Any], backend: str
) -> None:
    org = orbis["org"]
    companies = AccessScope.of(entity_types=["company"]).for_org(org)
    with access_scope(companies), engine.db.read() as s:
        assert [h.id for h in holders(s, org, Identifiers(website_url=DOMAIN), None, limit=10)] == [
            orbis["company"]
        ]
        assert holders(s, org, Identifiers(record_id=orbis["ewa"]), None, limit=10) == []
        assert subject_names(s, [orbis["ewa"]]) == []  # a contact's properties and keys are out of scope
        [(ev, _)] = EntityVectorCache().lookup_many(
            s, org, [orbis["ewa"]], embedder=engine.embedder.name, dim=engine.embedder.dim
        )
        assert ev.rows == []
