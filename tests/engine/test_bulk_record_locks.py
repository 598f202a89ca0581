"""Bulk writers and erasures take the record's lock (issue 16): a bulk write whose record is erased meanwhile
answers 404 for it and writes nothing for it (instead of failing the chunk on the foreign key); an erasure waits
for a writer holding the record and then deletes what that writer committed. Values, history and keys keep their
foreign keys to the record on both databases."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest
from sqlalchemy import func, inspect, select, text

from memrelay.composition import Services
from memrelay.engine.core.errors import NotFound
from memrelay.engine.stores import bulk_write
from memrelay.engine.stores.db.models import PropertyHistory, PropertyValue, RecordKey
from memrelay.engine.stores.identity import Identifiers
from memrelay.engine.stores.properties import Provenance, lock_record, write_properties

PROV = Provenance(source="crm")


def _rows_of(engine: Services, record_id: str) -> dict[str, int]:
    with engine.db.read() as s:
        return {
            t.__tablename__: s.scalar(select(func.count()).select_from(t).where(t.record_id == record_id))
            or 0
            for t in (PropertyValue, PropertyHistory, RecordKey)
        }


def test_values_history_and_keys_keep_their_foreign_keys_to_the_record(engine: Services) -> None:
    referring = {
        t
        for t in ("property_values", "property_history", "record_keys")
        if any(fk["referred_table"] == "records" for fk in inspect(engine.db.engine).get_foreign_keys(t))
    }
    assert referring == {"property_values", "property_history", "record_keys"}


def test_a_bulk_write_to_a_record_erased_meanwhile_answers_404_and_writes_nothing_for_it(
    backend: str, engine: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend != "postgres":
        pytest.skip("SQLite's write transaction excludes a concurrent erasure")
    org = engine.tenancy.create_org(f"locks-{uuid.uuid4().hex[:8]}").id
    first = engine.records.upsert_many(
        org,
        [(Identifiers(type="contact", email=f"e{i}@acme.com"), {"job_title": "A"}, PROV) for i in range(3)],
    )
    victim = first[1]["recordId"]
    prefetch = bulk_write.prefetch_keys

    def erase_after_prefetch(*args: Any) -> Any:  # another transaction erases a record the chunk just read
        index = prefetch(*args)
        engine.records.erase(org, Identifiers(type="contact", email="e1@acme.com"))
        return index

    monkeypatch.setattr(bulk_write, "prefetch_keys", erase_after_prefetch)
    out = engine.records.upsert_many(
        org,
        [
            (Identifiers(type="contact", email=f"e{i}@acme.com"), {"job_title": "B", "city": "Paris"}, PROV)
            for i in range(3)
        ],
    )
    assert isinstance(out[1], NotFound)
    assert [out[0]["version"], out[2]["version"]] == [2, 2]
    assert _rows_of(engine, victim) == {"property_values": 0, "property_history": 0, "record_keys": 0}
    assert (
        engine.records.get(org, Identifiers(type="contact", email="e0@acme.com"))["properties"]["city"][
            "value"
        ]
        == "Paris"
    )


def test_an_erasure_waits_for_a_writer_and_deletes_what_it_committed(backend: str, engine: Services) -> None:
    if backend != "postgres":
        pytest.skip("SQLite's write transaction excludes a concurrent erasure")
    org = engine.tenancy.create_org(f"locks-{uuid.uuid4().hex[:8]}").id
    rid = engine.records.upsert(
        org, Identifiers(type="contact", email="w@acme.com"), {"job_title": "A"}, PROV
    )["recordId"]
    wrote, release = threading.Event(), threading.Event()
    erased: list[dict[str, Any]] = []

    def writer() -> None:  # holds the record locked with a new value written, until released
        with engine.db.session() as s:
            rec = lock_record(s, rid)
            write_properties(s, rec, {"city": "Lyon"}, engine.collections.schema_for(s, org, "contact"), PROV)
            wrote.set()
            release.wait(30)

    def eraser() -> None:
        erased.append(engine.records.erase(org, Identifiers(type="contact", email="w@acme.com")))

    w = threading.Thread(target=writer)
    w.start()
    assert wrote.wait(30)
    e = threading.Thread(target=eraser)
    e.start()
    deadline = time.monotonic() + 30
    with engine.db.engine.connect() as c:  # until the erasure waits on the writer's row lock
        while (
            not c.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()"
                )
            ).scalar()
            and time.monotonic() < deadline
        ):
            time.sleep(0.02)
    release.set()
    w.join(30)
    e.join(30)
    assert erased and erased[0]["records"] == 1 and erased[0]["properties"] == 2
    assert _rows_of(engine, rid) == {"property_values": 0, "property_history": 0, "record_keys": 0}


def test_merge_and_erase_leave_no_row_behind(backend: str, engine: Services) -> None:
    org = engine.tenancy.create_org(f"locks-{uuid.uuid4().hex[:8]}").id
    out = engine.records.upsert_many(
        org,
        [
            (
                Identifiers(type="contact", email=f"m{i}@acme.com"),
                {"job_title": f"T{i}", "city": "Oslo"},
                PROV,
            )
            for i in range(2)
        ],
    )
    keep, gone = out[0]["recordId"], out[1]["recordId"]
    merged = engine.records.merge(
        org,
        Identifiers(type="contact", email="m0@acme.com"),
        [Identifiers(type="contact", email="m1@acme.com")],
        PROV,
    )
    assert merged["merged"]["records"] == 1
    assert _rows_of(engine, gone) == {"property_values": 0, "property_history": 0, "record_keys": 0}
    assert _rows_of(engine, keep)["property_history"] == 4  # the merged record's history moved with it
    erased = engine.records.erase(org, Identifiers(type="contact", email="m1@acme.com"))  # its key moved too
    assert erased["records"] == 1 and erased["history"] == 4
    assert _rows_of(engine, keep) == {"property_values": 0, "property_history": 0, "record_keys": 0}
