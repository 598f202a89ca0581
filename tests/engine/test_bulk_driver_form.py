"""The new-record fast path builds its rows in the driver's form (issue 16 item 1): each value JSON-encoded once
and its events' payloads spliced from that text, timestamps and booleans converted once per record. What it
stores must be byte for byte what the one-record path stores — payload text and key order (webhook bodies are
rendered from it), values orjson refuses (they fall back to ``json.dumps``), booleans, and memoised options."""

from __future__ import annotations

import gc
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import String, cast, select

from memrelay.composition import Services
from memrelay.engine.stores.db.models import OutboxEvent, PropertyHistory, PropertyValue
from memrelay.engine.stores.fast_insert import COPY_MIN_ROWS, json_text
from memrelay.engine.stores.identity import Identifiers
from memrelay.engine.stores.properties import Provenance

PROV = Provenance(
    source="crm",
    source_event_id="ev-1",
    source_ts=datetime(2026, 3, 1, tzinfo=UTC),
    actor="sync",
    confidence=0.75,
)
HUGE = 2**70  # orjson refuses integers beyond 64 bits: such a value takes the json.dumps fallback


def _props(i: int) -> dict[str, Any]:
    return {
        "job_title": f'Größe "{i}" ✓',
        "newsletter_opt_in": i % 2 == 0,
        "interests": [f"t{i}", {"n": [1, None]}],
        "lifecycle_stage": "Customer" if i % 2 else "lead",
    }


def _stored(engine: Services, org: str, record_id: str) -> dict[str, Any]:
    """Everything stored for one record, as the database holds it (JSON as text), without ids and times."""
    with engine.db.read() as s:
        events = [
            (kind, text)
            for kind, text in s.execute(
                select(OutboxEvent.event_type, cast(OutboxEvent.payload, String))
                .where(OutboxEvent.org_id == org)
                .order_by(OutboxEvent.id)
            )
            if json.loads(text).get("recordId") == record_id
        ]
        values = s.execute(
            select(
                PropertyValue.name,
                cast(PropertyValue.value, String),
                PropertyValue.value_text,
                PropertyValue.value_num,
                PropertyValue.source,
                PropertyValue.actor,
                PropertyValue.confidence,
                PropertyValue.version,
            )
            .where(PropertyValue.record_id == record_id)
            .order_by(PropertyValue.id)
        ).all()
        history = s.execute(
            select(
                PropertyHistory.name,
                cast(PropertyHistory.value, String),
                PropertyHistory.previous,
                PropertyHistory.applied,
                PropertyHistory.evidence,
                PropertyHistory.record_version,
                PropertyHistory.source_ts,
            )
            .where(PropertyHistory.record_id == record_id)
            .order_by(PropertyHistory.id)
        ).all()
    drop = ("recordId", "primaryKey", "keys", "createdAt")
    return {
        "events": [
            (kind, {k: v for k, v in json.loads(text).items() if k not in drop}, _key_order(text))
            for kind, text in events
        ],
        "event_text_canonical": all(
            text == json_text(json.loads(text)) for _, text in events if "createdAt" not in json.loads(text)
        ),
        "values": [tuple(v) for v in values],
        "history": [tuple(h) for h in history],
    }


def _key_order(text: str) -> list[str]:
    return [k for k in json.loads(text) if k not in ("recordId", "primaryKey", "keys", "createdAt")]


def test_bulk_rows_are_stored_as_the_one_record_path_stores_them(backend: str, engine: Services) -> None:
    org = engine.tenancy.create_org(f"bulk-df-{uuid.uuid4().hex[:8]}").id
    n = COPY_MIN_ROWS + 2  # PostgreSQL writes every table with COPY
    bulk = engine.records.upsert_many(
        org, [(Identifiers(type="contact", email=f"b{i}@acme.com"), _props(i), PROV) for i in range(n)]
    )
    for i in (0, 1):
        single = engine.records.upsert(
            org, Identifiers(type="contact", email=f"s{i}@acme.com"), _props(i), PROV
        )
        assert bulk[i]["version"] == single["version"] == 1
        b, s = _stored(engine, org, bulk[i]["recordId"]), _stored(engine, org, single["recordId"])
        assert b == s
        assert b["event_text_canonical"]
        assert [kind for kind, _, _ in b["events"]][1:] == ["memory.property.updated"] * 4 + [
            "memory.properties.bulk_updated"
        ]
    got = engine.records.get(org, Identifiers(type="contact", email="b1@acme.com"))["properties"]
    assert got["lifecycle_stage"]["value"] == "customer"  # the option, whatever the case it was written in
    assert got["newsletter_opt_in"]["value"] is False


def test_a_value_orjson_refuses_is_stored_as_the_one_record_path_stores_it(
    backend: str, engine: Services
) -> None:
    org = engine.tenancy.create_org(f"bulk-df-{uuid.uuid4().hex[:8]}").id
    props = {"job_title": "Engineer", "interests": ["big", HUGE]}
    bulk = engine.records.upsert_many(
        org,
        [(Identifiers(type="contact", email=f"h{i}@acme.com"), props, PROV) for i in range(COPY_MIN_ROWS)],
    )
    single = engine.records.upsert(org, Identifiers(type="contact", email="s@acme.com"), props, PROV)
    b, s = _stored(engine, org, bulk[0]["recordId"]), _stored(engine, org, single["recordId"])
    assert b == s
    got = engine.records.get(org, Identifiers(type="contact", email="h0@acme.com"))["properties"]
    assert got["interests"]["value"] == ["big", HUGE]
    hist = engine.records.history(org, Identifiers(type="contact", email="h0@acme.com"))["items"]
    assert {h["propertyName"]: h["value"] for h in hist} == props


def test_a_batch_mixing_new_and_existing_records_keeps_every_write_in_order(
    backend: str, engine: Services
) -> None:
    org = engine.tenancy.create_org(f"bulk-df-{uuid.uuid4().hex[:8]}").id
    engine.records.upsert_many(
        org, [(Identifiers(type="contact", email=f"m{i}@acme.com"), _props(i), PROV) for i in range(3)]
    )
    later = Provenance(source="crm", source_ts=datetime(2026, 4, 1, tzinfo=UTC))
    items = [
        (
            Identifiers(type="contact", email="m0@acme.com"),
            {"job_title": "Changed", "newsletter_opt_in": False},
            later,
        ),
        (Identifiers(type="contact", email="new@acme.com"), _props(7), later),
        (Identifiers(type="contact", email="m1@acme.com"), {"newsletter_opt_in": True}, later),
    ]
    out = engine.records.upsert_many(org, items)
    assert [r["created"] for r in out] == [False, True, False]
    assert out[0]["updated"] == ["job_title", "newsletter_opt_in"] and out[2]["updated"] == [
        "newsletter_opt_in"
    ]
    for email, flag in (("m0@acme.com", False), ("new@acme.com", False), ("m1@acme.com", True)):
        got = engine.records.get(org, Identifiers(type="contact", email=email))["properties"]
        assert got["newsletter_opt_in"]["value"] is flag
    with engine.db.read() as s:
        rows = s.execute(
            select(PropertyHistory.record_id, PropertyHistory.name, PropertyHistory.applied)
            .where(PropertyHistory.org_id == org, PropertyHistory.source_ts == later.source_ts)
            .order_by(PropertyHistory.id)
        ).all()
    ids = [r["recordId"] for r in out]
    assert [(rid, name) for rid, name, _ in rows] == [
        (ids[0], "job_title"),
        (ids[0], "newsletter_opt_in"),
        *[(ids[1], n) for n in _props(7)],
        (ids[2], "newsletter_opt_in"),
    ]
    assert all(applied is True for _, _, applied in rows)


def test_the_collector_paused_during_a_bulk_write_resumes_as_it_was(backend: str, engine: Services) -> None:
    org = engine.tenancy.create_org(f"bulk-df-{uuid.uuid4().hex[:8]}").id
    items = [
        (Identifiers(type="contact", email=f"g{i}@acme.com"), {"job_title": "A"}, PROV) for i in range(3)
    ]
    assert gc.isenabled()
    engine.records.upsert_many(org, items)
    assert gc.isenabled()
    gc.disable()
    try:
        engine.records.upsert_many(org, items)
        assert not gc.isenabled()  # a caller that disabled it keeps it disabled
    finally:
        gc.enable()
