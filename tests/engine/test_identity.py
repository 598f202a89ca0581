"""Identity from the schema (issue 11): records are found by their entity type's declared primary key.

Written from Personize's multi-entity guide (reference/personize/004): a Deal is keyed by
``customKeyName: dealId`` with the primary contact's email as a secondary key; a Student by
``studentNumber`` with an email. Any key finds a record; a secondary key never merges two records
that have different primary keys; ambiguity is a 409 naming the candidates, never a silent pick.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from memrelay.composition import Services
from memrelay.engine.core.errors import Conflict, NotFound, ValidationFailed
from memrelay.engine.memory.memories import MemorizeRequest
from memrelay.engine.stores.db.migrate import upgrade
from memrelay.engine.stores.identity import Identifiers
from memrelay.engine.stores.properties import Provenance

EMAIL = "pat@acme.com"
_orgs = itertools.count()


def _org(engine: Services) -> str:
    return engine.tenancy.get_or_create_org(f"identity-{id(engine)}-{next(_orgs)}").id


def _deal(deal_id: str, **extra: Any) -> Identifiers:
    return Identifiers(type="Deal", customKeyName="dealId", customKeyValue=deal_id, email=EMAIL, **extra)


def _upsert(engine: Services, org: str, deal_id: str, stage: str) -> dict[str, Any]:
    return engine.records.upsert(org, _deal(deal_id), {"stage": stage}, Provenance())


def _memorize(engine: Services, org: str, deal_id: str, stage: str) -> dict[str, Any]:
    return engine.memories.memorize(org, MemorizeRequest.model_validate({
        "content": f"Deal {deal_id} moved forward; the buyer asked for a security review.",
        "type": "Deal", "customKeyName": "dealId", "customKeyValue": deal_id, "email": EMAIL,
        "tags": ["crm"]}))


def _batch(engine: Services, org: str, deal_id: str, stage: str) -> dict[str, Any]:
    [res] = engine.records.upsert_many(org, [(_deal(deal_id), {"stage": stage}, Provenance())])
    assert not isinstance(res, Exception), res
    return res


WRITERS = {"upsert": _upsert, "memorize": _memorize, "batch": _batch}


def _deal_keys(engine: Services, org: str, deal_id: str) -> dict[str, Any]:
    rec = engine.records.get(org, Identifiers(type="deal", customKeyName="dealId", customKeyValue=deal_id))
    return {"recordId": rec["recordId"], "primaryKey": rec["primaryKey"], **rec["keys"]}


@pytest.mark.parametrize(("first", "second"), list(itertools.product(WRITERS, repeat=2)))
def test_two_deals_with_one_contact_email_stay_two_records(engine: Services, first: str, second: str) -> None:
    org = _org(engine)
    a = WRITERS[first](engine, org, "D-100", "qualified")
    b = WRITERS[second](engine, org, "D-101", "presentation")
    assert a["recordId"] != b["recordId"]
    for writer in WRITERS.values():  # later writes in any order land on their own deal
        assert writer(engine, org, "D-100", "contract_sent")["recordId"] == a["recordId"]
        assert writer(engine, org, "D-101", "closed_won")["recordId"] == b["recordId"]
    d100, d101 = _deal_keys(engine, org, "D-100"), _deal_keys(engine, org, "D-101")
    assert d100 == {"recordId": a["recordId"], "primaryKey": "custom:dealId:D-100",
                    "customKeys": {"dealId": "D-100"}, "email": EMAIL}
    assert d101 == {"recordId": b["recordId"], "primaryKey": "custom:dealId:D-101",
                    "customKeys": {"dealId": "D-101"}, "email": EMAIL}


def test_a_second_deal_is_created_not_merged(engine: Services) -> None:
    org = _org(engine)
    assert _upsert(engine, org, "D-100", "qualified")["created"] is True
    second = _upsert(engine, org, "D-101", "qualified")
    assert second["created"] is True and second["primaryKey"] == "custom:dealId:D-101"
    assert _upsert(engine, org, "D-101", "presentation")["created"] is False


def test_two_deals_in_one_batch_stay_two_records(engine: Services) -> None:
    org = _org(engine)
    res = engine.records.upsert_many(org, [(_deal("D-100"), {"stage": "qualified"}, Provenance()),
                                           (_deal("D-101"), {"stage": "presentation"}, Provenance()),
                                           (_deal("D-100"), {"amount": 5000}, Provenance())])
    assert [r["created"] for r in res] == [True, True, False]
    assert res[0]["recordId"] == res[2]["recordId"] != res[1]["recordId"]
    assert _deal_keys(engine, org, "D-101")["customKeys"] == {"dealId": "D-101"}


def test_the_shared_secondary_key_is_ambiguous_and_names_both_deals(engine: Services) -> None:
    org = _org(engine)
    a, b = _upsert(engine, org, "D-100", "qualified"), _upsert(engine, org, "D-101", "qualified")
    with pytest.raises(Conflict) as err:
        engine.records.get(org, Identifiers(type="deal", email=EMAIL))
    assert {c["recordId"] for c in err.value.details["candidates"]} == {a["recordId"], b["recordId"]}
    assert err.value.details["key"] == "email"
    with pytest.raises(Conflict):  # a write by the shared key alone is ambiguous too: never a silent pick
        engine.records.upsert(org, Identifiers(type="deal", email=EMAIL), {"stage": "closed_lost"}, Provenance())
    [res] = engine.records.upsert_many(org, [(Identifiers(type="deal", email=EMAIL), {"stage": "closed_lost"},
                                              Provenance())])
    assert isinstance(res, Conflict)
    for deal in ("D-100", "D-101"):
        rec = engine.records.get(org, Identifiers(type="deal", customKeys={"dealId": deal}))
        assert rec["properties"]["stage"]["value"] == "qualified"


def test_a_record_named_by_a_secondary_key_adopts_its_primary_key(engine: Services) -> None:
    org = _org(engine)
    early = engine.records.upsert(org, Identifiers(type="deal", email=EMAIL), {"stage": "qualified"}, Provenance())
    later = _upsert(engine, org, "D-100", "presentation")
    assert later["recordId"] == early["recordId"] and later["primaryKey"] == "custom:dealId:D-100"
    other = _upsert(engine, org, "D-101", "qualified")  # D-100 holds the email now; D-101 is a new deal
    assert other["recordId"] != early["recordId"]


def test_a_contact_is_keyed_by_email_and_found_by_its_company_website(engine: Services) -> None:
    org = _org(engine)
    a = engine.records.upsert(org, Identifiers(type="Contact", email="ann@acme.com", website_url="https://acme.com"),
                              {"job_title": "CTO"}, Provenance())
    b = engine.records.upsert(org, Identifiers(type="Contact", email="bob@acme.com", website_url="acme.com"),
                              {"job_title": "CFO"}, Provenance())
    assert a["recordId"] != b["recordId"] and b["primaryKey"] == "email:bob@acme.com"
    with pytest.raises(Conflict):  # two contacts carry that website
        engine.records.get(org, Identifiers(type="contact", website_url="acme.com"))
    company = engine.records.upsert(org, Identifiers(type="company", website_url="https://www.acme.com/"),
                                    {"name": "Acme"}, Provenance())
    assert company["primaryKey"] == "website_url:acme.com"
    assert engine.records.get(org, Identifiers(website_url="acme.com"))["recordId"] == company["recordId"]


def test_a_custom_entity_type_declares_its_primary_key(engine: Services) -> None:
    org = _org(engine)
    made = engine.collections.create_entity_type(org, "Student", primary_key_field="studentNumber",
                                                 secondary_keys=["email"])
    assert made["slug"] == "student" and made["name"] == "Student"  # name: the display label (Personize's)
    assert made["primaryKeyField"] == "studentNumber"
    ids = {"customKeyName": "studentNumber", "email": "alice@university.edu"}
    alice = engine.records.upsert(org, Identifiers(type="Student", customKeyValue="S-2024-1234", **ids), {},
                                  Provenance())
    twin = engine.records.upsert(org, Identifiers(type="Student", customKeyValue="S-2024-9999", **ids), {},
                                 Provenance())
    assert alice["primaryKey"] == "custom:studentNumber:S-2024-1234" and twin["recordId"] != alice["recordId"]
    by_number = engine.records.get(org, Identifiers(type="student", customKeyName="studentNumber",
                                                    customKeyValue="S-2024-1234"))
    assert by_number["recordId"] == alice["recordId"]


def test_entity_types_are_case_insensitive_on_reads(engine: Services) -> None:
    org = _org(engine)
    rec = engine.records.upsert(org, Identifiers(type="contact", email="sarah@initech.com"), {"job_title": "VP"},
                                Provenance())
    for spelling in ("Contact", "CONTACT", " contact "):
        assert engine.records.get(org, Identifiers(type=spelling, email="sarah@initech.com"))["recordId"] == \
            rec["recordId"]


def test_an_identifier_that_names_no_record_says_which_keys_were_tried(engine: Services) -> None:
    org = _org(engine)
    with pytest.raises(NotFound) as err:
        engine.records.get(org, Identifiers(type="Deal", customKeyName="dealId", customKeyValue="D-404",
                                            email="nobody@acme.com"))
    assert err.value.details["type"] == "deal"
    assert err.value.details["tried"] == [{"key": "dealId", "value": "D-404"},
                                          {"key": "email", "value": "nobody@acme.com"}]


def test_an_unknown_entity_type_lists_the_known_ones(engine: Services) -> None:
    org = _org(engine)
    with pytest.raises(ValidationFailed) as err:
        engine.records.get(org, Identifiers(type="Spaceship", email="x@acme.com"))
    assert {"contact", "company", "deal", "ticket"} <= set(err.value.details["known"])
    with pytest.raises(ValidationFailed) as err:
        engine.records.upsert(org, Identifiers(type="Spaceship", email="x@acme.com"), {}, Provenance())
    assert "contact" in err.value.details["known"]


def test_a_record_id_never_takes_another_deals_primary_key(engine: Services) -> None:
    org = _org(engine)
    a = _upsert(engine, org, "D-100", "qualified")
    with pytest.raises(Conflict):
        engine.records.upsert(org, Identifiers(type="deal", record_id=a["recordId"], customKeyName="dealId",
                                               customKeyValue="D-101"), {"stage": "qualified"}, Provenance())


# --- migration 0007: existing data re-derives its primary keys, conflicts are reported, not merged -----
LEGACY = [  # (record id, entity type, legacy primary key, keys)
    ("rec_a", "deal", "email:pat@acme.com", [("email", "pat@acme.com"), ("custom:dealId", "D-100")]),
    ("rec_b", "deal", "email:kim@acme.com", [("email", "kim@acme.com"), ("custom:dealId", "D-200"),
                                             ("custom:dealId", "D-201")]),  # two deals folded into one
    ("rec_c", "ticket", "email:pat@acme.com", [("email", "pat@acme.com"), ("custom:ticketId", "T-1")]),
    ("rec_d", "ticket", "website_url:acme.com", [("website_url", "acme.com"), ("custom:ticketId", "T-1")]),
    ("rec_e", "contact", "custom:hubspot_id:42", [("custom:hubspot_id", "42"), ("email", "lee@acme.com")]),
    ("rec_f", "deal", "email:solo@acme.com", [("email", "solo@acme.com")]),  # no dealId: left as it is
]


def _legacy_database(url: str) -> None:
    upgrade(url, "0006")
    eng = sa.create_engine(url)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with eng.begin() as conn:
        conn.execute(sa.text("INSERT INTO orgs (id, name, settings, created_at) VALUES ('org_1', 'o', '{}', :now)"),
                     {"now": now})
        for i, name in enumerate(("contact", "company", "deal", "ticket")):
            conn.execute(sa.text("INSERT INTO entity_types (id, org_id, name, description, system, created_at) "
                                 "VALUES (:id, 'org_1', :name, '', :system, :now)"),
                         {"id": f"et_{i}", "name": name, "system": name in ("contact", "company"), "now": now})
        for rid, et, pk, keys in LEGACY:
            conn.execute(sa.text("INSERT INTO records (id, org_id, entity_type, primary_key, version, created_at, "
                                 "updated_at) VALUES (:id, 'org_1', :et, :pk, 1, :now, :now)"),
                         {"id": rid, "et": et, "pk": pk, "now": now})
            for name, value in keys:
                conn.execute(sa.text("INSERT INTO record_keys (org_id, record_id, key_name, key_value) "
                                     "VALUES ('org_1', :rid, :n, :v)"), {"rid": rid, "n": name, "v": value})
    eng.dispose()


def _check_migrated(url: str) -> None:
    _legacy_database(url)
    upgrade(url, "head")
    eng = sa.create_engine(url)
    with eng.connect() as conn:
        pks = dict(conn.execute(sa.text("SELECT id, primary_key FROM records")).all())
        declared = {n: f for n, f in conn.execute(sa.text("SELECT name, primary_key_field FROM entity_types"))}
        audit = [json.loads(d) if isinstance(d, str) else d for (d,) in conn.execute(sa.text(
            "SELECT detail FROM audit_log WHERE action = 'identity.primary_key_conflict' ORDER BY id"))]
        keys = conn.execute(sa.text("SELECT count(*) FROM record_keys")).scalar()
    eng.dispose()
    assert declared == {"contact": "email", "company": "website_url", "deal": "dealId", "ticket": "ticketId"}
    assert pks == {"rec_a": "custom:dealId:D-100",  # re-derived from the declared key
                   "rec_b": "email:kim@acme.com",  # conflict: left alone
                   "rec_c": "email:pat@acme.com", "rec_d": "website_url:acme.com",  # conflict: left alone
                   "rec_e": "email:lee@acme.com",  # a contact is keyed by its email
                   "rec_f": "email:solo@acme.com"}
    assert keys == sum(len(k) for *_, k in LEGACY)  # nothing merged, nothing dropped
    assert [(a["reason"], a["recordIds"], a["values"]) for a in audit] == [
        ("one record carries several primary key values", ["rec_b"], ["D-200", "D-201"]),
        ("several records share one primary key value", ["rec_c", "rec_d"], ["T-1"]),
    ]


def test_migration_rederives_primary_keys_and_reports_conflicts_on_sqlite(tmp_path: Path) -> None:
    _check_migrated(f"sqlite:///{tmp_path / 'legacy.db'}")



def test_migration_rederives_primary_keys_and_reports_conflicts_on_postgresql(fresh_pg_schema: str) -> None:
    _check_migrated(fresh_pg_schema)
