"""Refreshing stored memory readings (engine/stores/memory_readings.py): memories without readings or with readings
of other reading code get current ones, batch by batch by id; nothing else of the row changes, current readings are
left alone, and a memory whose text changed after it was read keeps what its editor wrote. On SQLite and
PostgreSQL (``backend``; its own schema: a pass covers every memory of the database)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select, update

from memrelay.composition import Services
from memrelay.engine.domain import readings
from memrelay.engine.memory.memories import MemorizeRequest
from memrelay.engine.stores import memory_readings
from memrelay.engine.stores.db.models import Memory
from memrelay.engine.stores.memory_readings import refresh_readings
from memrelay.engine.stores.properties import Provenance

FACTS = ["Acme runs PostgreSQL on AWS and their budget is $250,000 for 2027.",
         "Priya Nair is the decision maker; she moved the renewal to March.",
         "The team grew to 85 engineers in Berlin after the Series B.",
         "Globex switched their CRM from Salesforce to HubSpot last quarter.",
         "Initech's headquarters moved to Austin, Texas in 2025."]

pytestmark = pytest.mark.own_database


def memorize_facts(engine: Services, org_name: str, facts: list[str] = FACTS) -> list[str]:
    """One verbatim memory per fact, each about its own contact; their ids in id order."""
    org = engine.tenancy.create_org(org_name).id
    ids: list[str] = []
    for i, fact in enumerate(facts):
        ids += engine.memories.memorize(org, MemorizeRequest(content=fact, email=f"m{i}@refresh.io", type="contact",
                                                             verbatim=True))["memoryIds"]
    assert len(ids) == len(facts)
    return sorted(ids)


def stored(engine: Services, ids: list[str]) -> dict[str, tuple[str, Any, datetime]]:
    """memory id -> (text, readings, updated_at)."""
    with engine.db.read() as s:
        return {r.id: (r.text, r.readings, r.updated_at)
                for r in s.execute(select(Memory.id, Memory.text, Memory.readings, Memory.updated_at)
                                   .where(Memory.id.in_(ids)))}


def set_readings(engine: Services, values: dict[str, Any]) -> None:
    """As memories written before readings existed (None) or by other reading code; ``updated_at`` untouched."""
    with engine.db.session() as s:
        for memory_id, value in values.items():
            s.execute(update(Memory).where(Memory.id == memory_id).values(readings=value))


def org_of(engine: Services, memory_id: str) -> str:
    with engine.db.read() as s:
        org = s.scalar(select(Memory.org_id).where(Memory.id == memory_id))
    assert org is not None
    return org


def test_missing_and_stale_readings_are_refreshed_batch_by_batch_and_current_ones_left_alone(
        backend: str, engine: Services) -> None:
    ids = memorize_facts(engine, "refresh-batches")
    before = stored(engine, ids)
    null, stale, deleted, current, marked = ids
    set_readings(engine, {null: None, stale: {**before[stale][1], "v": "older-code"}, deleted: None,
                          # current readings, told apart from any rewrite by a key text_readings never writes
                          marked: {**before[marked][1], "untouched": True}})
    engine.memories.delete(org_of(engine, deleted), [deleted])
    before = stored(engine, ids)

    assert refresh_readings(engine.db, after_id="", limit=2) == (stale, 2)  # null and stale
    assert stored(engine, [deleted])[deleted][1] is None  # not scanned yet
    assert refresh_readings(engine.db, after_id=stale, limit=2) == (current, 1)  # the soft-deleted one (restorable)
    assert refresh_readings(engine.db, after_id=current, limit=2) == (None, 0)  # the end: one row, current
    assert refresh_readings(engine.db, after_id="", limit=10) == (None, 0)  # nothing left to refresh

    after = stored(engine, ids)
    for memory_id, (text, value, updated_at) in after.items():
        assert readings.is_current(text, value)
        assert updated_at == before[memory_id][2]  # the org-wide index and entity cache stamps are untouched
    for memory_id in (null, stale, deleted):
        assert after[memory_id][1] == readings.text_readings(after[memory_id][0])
    assert after[current][1] == before[current][1]
    assert after[marked][1]["untouched"] is True  # current readings are not rewritten


def test_a_memory_edited_between_read_and_write_keeps_its_editors_readings(
        backend: str, engine: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = memorize_facts(engine, "refresh-edit", FACTS[:3])
    by_sql, by_api, untouched = ids
    set_readings(engine, dict.fromkeys(ids))
    org = org_of(engine, by_sql)
    edited = {by_sql: "Acme now runs MySQL on GCP and their budget is $400,000.",
              by_api: "Priya Nair left; Tom Berg is the decision maker now."}
    read = readings.text_readings
    edits: list[str] = []

    def readings_meanwhile_edited(text: str) -> dict[str, Any]:
        """The real readings; the first time, two editors commit new texts before the refresh writes."""
        if not edits:
            edits.append(text)
            with engine.db.session() as s:  # an editor writing a text with its readings (as memorize does)
                s.execute(update(Memory).where(Memory.id == by_sql).values(text=edited[by_sql],
                                                                           readings=read(edited[by_sql])))
            engine.memories.update_text(org, by_api, edited[by_api], Provenance(source="test", actor="editor"))
        return read(text)

    monkeypatch.setattr(memory_readings, "text_readings", readings_meanwhile_edited)
    assert refresh_readings(engine.db, after_id="", limit=10) == (None, 1)  # only the memory nobody edited
    monkeypatch.undo()

    rows = stored(engine, ids)
    for memory_id in (by_sql, by_api):  # each editor's text with its own readings, not those of the text it replaced
        assert rows[memory_id] == (edited[memory_id], read(edited[memory_id]), rows[memory_id][2])
    assert readings.is_current(*rows[untouched][:2])
    assert refresh_readings(engine.db, after_id="", limit=10) == (None, 0)  # nothing left stale
