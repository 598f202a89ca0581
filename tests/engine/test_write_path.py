"""The structured write path read with fewer statements must decide exactly as before: concurrent first
writes of one record, live holders before deleted ones, the deleted-record refusal, and schemas changed by
another process (another ``Collections`` instance, its own cache)."""

from __future__ import annotations

import threading
import uuid

import pytest

from memrelay.composition import Services
from memrelay.engine.core.errors import Conflict, MemrelayError, NotFound, ValidationFailed
from memrelay.engine.stores.collections import Collections
from memrelay.engine.stores.identity import Identifiers
from memrelay.engine.stores.properties import Provenance

PROV = Provenance(source="test")


def _org(engine: Services) -> str:
    return engine.tenancy.get_or_create_org(f"write-path-{uuid.uuid4().hex[:8]}").id


def test_concurrent_first_writes_of_one_record_create_it_once(engine: Services, backend: str) -> None:
    org = _org(engine)
    ids = Identifiers(type="contact", email="race-new@x.io")
    results: list[dict[str, object]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def write(i: int) -> None:
        start.wait()
        try:
            results.append(engine.records.upsert(org, ids, {"first_name": f"N{i}"}, PROV))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len({r["recordId"] for r in results}) == 1
    assert sum(1 for r in results if r["created"]) == 1
    assert engine.records.get(org, ids)["recordId"] == results[0]["recordId"]


def test_a_deleted_holder_of_the_identity_key_yields_to_a_live_holder_of_another_key(
        engine: Services, backend: str) -> None:
    org = _org(engine)
    engine.collections.create_entity_type(org, "thing")  # no declared primary key: the most specific key is it
    by_ref = Identifiers(type="thing", customKeys={"ref": "1"})
    by_email = Identifiers(type="thing", email="thing@x.io")
    both = Identifiers(type="thing", customKeys={"ref": "1"}, email="thing@x.io")
    gone = engine.records.upsert(org, by_ref, {}, PROV)["recordId"]
    engine.records.soft_delete(org, by_ref)
    live = engine.records.upsert(org, by_email, {}, PROV)["recordId"]

    assert engine.records.upsert(org, both, {}, PROV)["recordId"] == live

    engine.records.soft_delete(org, by_email)  # now both holders of ref 1 (it was attached to the live one) are deleted
    with pytest.raises(Conflict) as ambiguous:
        engine.records.upsert(org, both, {}, PROV)
    assert {c["recordId"] for c in ambiguous.value.details["candidates"]} == {gone, live}
    with pytest.raises(NotFound) as refused:
        engine.records.upsert(org, by_email, {}, PROV)
    assert refused.value.details["recordId"] == live  # the deleted holder is named, never silently recreated


def test_a_schema_or_type_changed_by_another_process_is_seen_by_the_next_write(engine: Services,
                                                                               backend: str) -> None:
    org = _org(engine)
    other = Collections(engine.db)  # another process: its own cache
    ids = Identifiers(type="contact", email="schema@x.io")
    with pytest.raises(MemrelayError):
        engine.records.upsert(org, ids, {"shoe_size": 42}, PROV)  # not a property of contacts yet
    other.create(org, name=f"Extra {uuid.uuid4().hex[:4]}", entity_type="contact",
                 properties=[{"propertyName": "shoe_size", "type": "number"}])
    assert engine.records.upsert(org, ids, {"shoe_size": 42}, PROV)["updated"] == ["shoe_size"]

    other.create_entity_type(org, "gadget")
    gadget = Identifiers(type="gadget", customKeys={"sku": "G-1"})
    engine.records.upsert(org, gadget, {}, PROV)
    other.set_entity_type_archived(org, "gadget", True)
    with pytest.raises(ValidationFailed):
        engine.records.upsert(org, gadget, {}, PROV)

