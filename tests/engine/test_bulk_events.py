"""Events and history of the new-record fast path of bulk writes (issue 16 item 1): the rows are built as tuples,
not dicts, but a bulk load emits the same events, in the same order, as one write per record; a record written
twice in one batch keeps its writes' order in events and history; event ids stay unique and sort by time."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from memrelay.composition import Services
from memrelay.engine.stores.db.models import OutboxEvent, PropertyHistory
from memrelay.engine.stores.fast_insert import COPY_MIN_ROWS
from memrelay.engine.stores.identity import Identifiers
from memrelay.engine.stores.properties import Provenance

PROV = Provenance(
    source="crm", source_event_id="ev-9", source_ts=datetime(2026, 2, 1, tzinfo=UTC), actor="sync"
)


def _props(i: int) -> dict[str, Any]:
    return {
        "job_title": f"Title {i}",
        "city": f"City{i}",
        "newsletter_opt_in": i % 2 == 0,
        "interests": [f"t{i}"],
    }


def _events(engine: Services, org: str) -> list[tuple[int, str, str, dict[str, Any]]]:
    with engine.db.read() as s:
        return [
            (r.id, r.public_id, r.event_type, r.payload)
            for r in s.scalars(select(OutboxEvent).where(OutboxEvent.org_id == org).order_by(OutboxEvent.id))
        ]


def _shape(
    events: list[tuple[int, str, str, dict[str, Any]]], record_id: str
) -> list[tuple[str, dict[str, Any]]]:
    """One record's events in order, without what differs between two records (ids, keys, times)."""
    drop = {"recordId", "primaryKey", "keys", "createdAt"}
    return [
        (kind, {k: v for k, v in data.items() if k not in drop})
        for _, _, kind, data in events
        if data.get("recordId") == record_id
    ]


def test_a_bulk_load_emits_what_one_write_per_record_emits_in_the_same_order(backend: str, engine: Services):
    org = engine.tenancy.create_org(f"bulk-ev-{uuid.uuid4().hex[:8]}").id
    n = COPY_MIN_ROWS + 4  # PostgreSQL writes every table with COPY
    bulk = engine.records.upsert_many(
        org, [(Identifiers(type="contact", email=f"b{i}@acme.com"), _props(i), PROV) for i in range(n)]
    )
    single = engine.records.upsert(org, Identifiers(type="contact", email="s3@acme.com"), _props(3), PROV)
    events = _events(engine, org)
    b3 = _shape(events, bulk[3]["recordId"])
    assert b3 == _shape(events, single["recordId"])
    assert [kind for kind, _ in b3] == ["record.created"] + ["memory.property.updated"] * 4 + [
        "memory.properties.bulk_updated"
    ]
    assert b3[1][1] == {
        "type": "contact",
        "version": 1,
        "source": "crm",
        "sourceEventId": "ev-9",
        "changedProperties": list(_props(3)),
        "propertyName": "job_title",
        "value": "Title 3",
        "previous": None,
    }
    # a batch's record.created events come first (in item order), then each record's changes, in item order
    order = [(kind == "record.created", data["recordId"]) for _, _, kind, data in events][: 6 * n]
    assert order == [(True, r["recordId"]) for r in bulk] + [
        (False, r["recordId"]) for r in bulk for _ in range(5)
    ]
    ids = [public for _, public, _, _ in events]
    assert len(set(ids)) == len(ids) and all(re.fullmatch(r"evt_[0-9a-f]{24}", i) for i in ids)
    later = engine.records.upsert_many(
        org, [(Identifiers(type="contact", email=f"c{i}@acme.com"), _props(i), PROV) for i in range(3)]
    )
    newest = [
        public for _, public, _, data in _events(engine, org) if data["recordId"] == later[0]["recordId"]
    ]
    assert min(newest) > max(ids[: 6 * n])  # a later batch's ids sort after an earlier batch's (time first)


def test_a_record_written_twice_in_one_batch_keeps_the_order_of_its_writes(backend: str, engine: Services):
    org = engine.tenancy.create_org(f"bulk-twice-{uuid.uuid4().hex[:8]}").id
    n = COPY_MIN_ROWS
    items = [(Identifiers(type="contact", email=f"r{i}@acme.com"), _props(i), PROV) for i in range(n)]
    items.insert(
        5, (Identifiers(type="contact", email="r2@acme.com"), {"job_title": "Second", "city": "City2"}, PROV)
    )
    out = engine.records.upsert_many(org, items)
    twice = out[2]["recordId"]
    assert (
        out[5]["recordId"] == twice and out[2]["version"] == 1 and out[5]["version"] == 2
    )  # a bump per change
    assert out[5]["updated"] == ["job_title"] and out[5]["unchanged"] == ["city"]
    got = engine.records.get(org, Identifiers(type="contact", email="r2@acme.com"))["properties"]
    assert got["job_title"]["value"] == "Second" and got["job_title"]["version"] == 2
    assert got["city"]["value"] == "City2" and got["interests"]["value"] == ["t2"]
    kinds = [
        (kind, data.get("propertyName"), data.get("value"))
        for kind, data in _shape(_events(engine, org), twice)
    ]
    assert kinds == [
        ("record.created", None, None),
        ("memory.property.updated", "job_title", "Title 2"),
        ("memory.property.updated", "city", "City2"),
        ("memory.property.updated", "newsletter_opt_in", True),
        ("memory.property.updated", "interests", ["t2"]),
        ("memory.properties.bulk_updated", None, None),
        ("memory.property.updated", "job_title", "Second"),
    ]
    with engine.db.read() as s:
        hist = s.execute(
            select(PropertyHistory.name, PropertyHistory.value, PropertyHistory.previous)
            .where(PropertyHistory.record_id == twice, PropertyHistory.name == "job_title")
            .order_by(PropertyHistory.id)
        ).all()
    assert [tuple(h) for h in hist] == [("job_title", "Title 2", None), ("job_title", "Second", "Title 2")]
