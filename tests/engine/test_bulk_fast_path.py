"""Bulk writes at database speed (issue 16 item 1): the set-based path (records, keys, values, history and
events as driver-level executemany / COPY, no per-row ORM object) stores exactly what the one-record path
stores, keeps provenance, stale-write protection, history and events, and bumps a record's version once per
batch — on SQLite and PostgreSQL (COPY above ``COPY_MIN_ROWS`` rows)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from memrelay.composition import Services
from memrelay.engine.stores.db.models import OutboxEvent, PropertyHistory, PropertyValue, Record, RecordKey
from memrelay.engine.stores.fast_insert import COPY_MIN_ROWS
from memrelay.engine.stores.identity import Identifiers
from memrelay.engine.stores.properties import Provenance

PROPS = [{"propertyName": "title_text", "type": "text"}, {"propertyName": "score", "type": "number"},
         {"propertyName": "active", "type": "boolean"}, {"propertyName": "labels", "type": "array"},
         {"propertyName": "stage", "type": "options", "options": ["lead", "customer"]},
         {"propertyName": "renewal", "type": "date"}]
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _values(i: int) -> dict[str, Any]:
    return {"title_text": f"Größe \"{i}\" — naïve ✓", "score": i + 0.5, "active": i % 2 == 0,
            "labels": [f"l{i}", {"nested": [1, 2, None]}], "stage": "customer" if i % 3 else "lead",
            "renewal": "2027-03-03"}


def _org(engine: Services) -> str:
    org = engine.tenancy.create_org(f"bulk-{uuid.uuid4().hex[:8]}").id
    engine.collections.create(org, name="Fast", entity_type="widget", properties=PROPS)
    return org


def _rendered(engine: Services, org: str, key: str) -> dict[str, Any]:
    return engine.records.get(org, Identifiers(type="widget", customKeys={"sku": key}))


def test_bulk_and_single_writes_store_the_same_thing(backend: str, engine: Services) -> None:
    org = _org(engine)
    n = COPY_MIN_ROWS + 6  # enough rows for PostgreSQL's COPY on every table
    prov = Provenance(source="crm", source_event_id="ev-1", source_ts=T0, actor="loader", confidence=0.9)
    out = engine.records.upsert_many(org, [(Identifiers(type="widget", customKeys={"sku": f"b{i}"}),
                                            _values(i), prov) for i in range(n)])
    assert all(r["created"] and r["version"] == 1 for r in out)
    for i in (0, 1, n - 1):  # the one-record path, same values and provenance, for comparison
        engine.records.upsert(org, Identifiers(type="widget", customKeys={"sku": f"s{i}"}), _values(i), prov)
        bulk, single = _rendered(engine, org, f"b{i}"), _rendered(engine, org, f"s{i}")
        strip = ("updatedAt",)
        assert {k: {f: v for f, v in p.items() if f not in strip} for k, p in bulk["properties"].items()} == \
            {k: {f: v for f, v in p.items() if f not in strip} for k, p in single["properties"].items()}
        assert bulk["version"] == single["version"] == 1
        assert bulk["properties"]["title_text"]["sourceTimestamp"] == "2026-01-01T00:00:00Z"
        hist = engine.records.history(org, Identifiers(type="widget", customKeys={"sku": f"b{i}"}))["items"]
        assert sorted(h["propertyName"] for h in hist) == sorted(p["propertyName"] for p in PROPS)
        assert all(h["applied"] and h["previous"] is None and h["source"] == "crm" and h["recordVersion"] == 1
                   for h in hist)
    with engine.db.read() as s:
        ids = list(s.scalars(select(Record.id).where(Record.org_id == org)))
        assert len(ids) == n + 3
        assert s.scalar(select(func.count()).select_from(RecordKey).where(RecordKey.org_id == org)) >= n + 3
        assert s.scalar(select(func.count()).select_from(PropertyValue).where(PropertyValue.org_id == org)) == \
            (n + 3) * len(PROPS)
        assert s.scalar(select(func.count()).select_from(PropertyHistory).where(PropertyHistory.org_id == org)) == \
            (n + 3) * len(PROPS)
        events = {e for (e,) in s.execute(select(OutboxEvent.event_type).where(OutboxEvent.org_id == org))}
        assert "record.created" in events


def test_a_second_batch_bumps_each_record_once_and_respects_older_sources(backend: str, engine: Services) -> None:
    org = _org(engine)
    n = COPY_MIN_ROWS + 2
    first = Provenance(source="crm", source_ts=T0)
    engine.records.upsert_many(org, [(Identifiers(type="widget", customKeys={"sku": f"k{i}"}), _values(i), first)
                                     for i in range(n)])
    newer, older = Provenance(source="crm", source_ts=T0 + timedelta(days=1)), \
        Provenance(source="crm", source_ts=T0 - timedelta(days=1))
    items = []
    for i in range(n):  # three changed properties from a newer source, then an older source in the same batch
        items.append((Identifiers(type="widget", customKeys={"sku": f"k{i}"}),
                      {"score": 1000 + i, "stage": "lead", "title_text": f"new {i}"}, newer))
        items.append((Identifiers(type="widget", customKeys={"sku": f"k{i}"}), {"score": -1}, older))
    out = engine.records.upsert_many(org, items)
    assert [r["version"] for r in out[::2]] == [2] * n  # one bump per record for its three changes
    assert all(r["stale"] == ["score"] for r in out[1::2])
    got = _rendered(engine, org, "k5")
    assert got["version"] == 2 and got["properties"]["score"]["value"] == 1005
    assert got["properties"]["score"]["sourceTimestamp"] == "2026-01-02T00:00:00Z"
    assert got["properties"]["renewal"]["value"] == "2027-03-03"  # untouched values stay
    hist = engine.records.history(org, Identifiers(type="widget", customKeys={"sku": "k5"}),
                                  property_name="score")["items"]
    assert [(h["value"], h["applied"], h["reason"]) for h in hist] == [
        (-1, False, "older_source_timestamp"), (1005, True, None), (5.5, True, None)]
