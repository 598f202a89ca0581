"""Backfill's batch path: memories pushed to the vector index once per sync (or per ``PUSH_EVERY``), never lost;
facts extracted once; new memory rows written set-based in their final state."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from memrelay.composition import Services
from memrelay.engine.core.util import utcnow
from memrelay.engine.domain.extraction import proactive, standard
from memrelay.engine.ingest import backfill
from memrelay.engine.ingest.backfill import Backfill
from memrelay.engine.memory.batch import memorize_many
from memrelay.engine.memory.memories import MemorizeRequest
from memrelay.engine.stores.db.models import Memory, OutboxEvent
from tests.connectors.fake_hubspot import FakeHubSpot, make_contacts


def _org(engine: Services) -> str:
    return engine.tenancy.get_or_create_org(f"bfi-{uuid.uuid4().hex[:8]}").id


def _sync(engine: Services, org_id: str, n: int) -> Any:
    fake = FakeHubSpot(contacts=make_contacts(n)).start()
    try:
        src = engine.sources.create(
            org_id,
            connector="hubspot",
            secret="s",
            config={"api_base": fake.url, "access_token": fake.token, "sync_objects": ["contact"]},
        )["id"]
        return Backfill(engine.sources, engine.records, engine.memories, batch=True).sync_source(src)
    finally:
        fake.stop()


def _memories(engine: Services, org_id: str) -> dict[str, str]:
    with engine.db.read() as s:
        return dict(s.execute(select(Memory.id, Memory.index_state).where(Memory.org_id == org_id)).all())


def _pushes(engine: Services, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Sizes of the index pushes (calls of the memory index's after-commit sync that carry memories)."""
    sizes: list[int] = []
    index = engine.memories.index
    real = index.sync_after_commit

    def counting(*, index: Any = (), tombstones_of: str | None = None, flush_now: bool = True) -> bool:
        if index:
            sizes.append(len(index))
        return real(index=index, tombstones_of=tombstones_of, flush_now=flush_now)

    monkeypatch.setattr(index, "sync_after_commit", counting)
    return sizes


def test_a_batch_backfill_pushes_its_memories_to_the_index_once(
    backend: str, engine: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = _org(engine)
    pushes = _pushes(engine, monkeypatch)
    summary = _sync(engine, org, 230)  # several CRM pages
    assert (summary.records, summary.memories, summary.errors) == (230, 230, 0)
    assert summary.pages > 1
    assert pushes == [230]  # one push for the whole sync, not one per page
    states = _memories(engine, org)
    assert len(states) == 230 and set(states.values()) == {"indexed"}
    assert engine.index.vector_index.ids(engine.index.current_collection(), org) == set(states)


def test_a_long_backfill_pushes_every_push_every_memories(
    backend: str, engine: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backfill, "PUSH_EVERY", 50)
    org = _org(engine)
    pushes = _pushes(engine, monkeypatch)
    _sync(engine, org, 230)
    assert len(pushes) > 1 and sum(pushes) == 230 and all(n >= 50 for n in pushes[:-1])
    assert set(_memories(engine, org).values()) == {"indexed"}


def test_memories_of_a_backfill_whose_index_push_fails_stay_pending_until_reconcile(
    backend: str, engine: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = _org(engine)
    vector_index = engine.index.vector_index

    def down(*_: Any, **__: Any) -> int:
        raise ConnectionError("milvus is down")

    monkeypatch.setattr(vector_index, "upsert", down)
    summary = _sync(engine, org, 120)
    assert (summary.memories, summary.errors) == (120, 0)  # the SQL commit is the truth: nothing failed
    assert set(_memories(engine, org).values()) == {"pending"}
    monkeypatch.undo()
    assert engine.index.reconcile(org_id=org)["indexed"] == 120
    states = _memories(engine, org)
    assert set(states.values()) == {"indexed"}
    assert engine.index.vector_index.ids(engine.index.current_collection(), org) == set(states)


def test_memorize_many_extracts_the_facts_of_each_request_once(
    backend: str, engine: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = proactive.extract_facts

    def counting(content: str, **kw: Any) -> Any:
        calls.append(content)
        return real(content, **kw)

    monkeypatch.setattr("memrelay.engine.memory.batch.extract_facts", counting)
    monkeypatch.setattr(standard, "extract_facts", counting)
    org = _org(engine)
    reqs = [
        MemorizeRequest(
            content=f"Person {i} works as VP Sales at Firm{i}. Firm{i} runs on PostgreSQL.",
            email=f"p{i}@firm{i}.example",
            type="contact",
        )
        for i in range(3)
    ]
    many = memorize_many(engine.memories, org, reqs)
    assert many.batched == 3 and many.memories_created >= 3
    assert sorted(calls) == sorted(r.content for r in reqs)


def test_facts_handed_to_the_offline_extraction_give_what_it_extracts_itself() -> None:
    content = "I'm Sarah Chen, VP of Engineering at TechFlow. We run on PostgreSQL and have 40 engineers."
    ts = utcnow()
    specs = engine_specs()
    own = standard.extract(content, specs, ts, "Sarah Chen", entity_type="contact")
    facts = proactive.extract_facts(content, subject="Sarah Chen", ts=ts, entity_type="contact")
    handed = standard.extract(content, specs, ts, "Sarah Chen", entity_type="contact", facts=facts)
    assert own == handed and own.facts


def engine_specs() -> list[Any]:
    from memrelay.engine.core.properties_types import PropertySpec, PropertyType

    return [
        PropertySpec(propertyName="job_title", type=PropertyType.TEXT, description="Job title"),
        PropertySpec(propertyName="first_name", type=PropertyType.TEXT, description="First name"),
    ]


def test_memories_deduplicated_and_superseded_within_one_call_are_written_in_their_final_state(
    backend: str,
    engine: Services,
) -> None:
    org = _org(engine)
    t0 = utcnow() - timedelta(days=10)
    body = [
        ("Ana's company runs on PostgreSQL.", t0),
        ("Ana's company runs on PostgreSQL.", t0 + timedelta(days=1)),
        ("Ana's company moved its database to MySQL.", t0 + timedelta(days=5)),
    ]
    reqs = [
        MemorizeRequest(
            content=text,
            email="ana@acme.example",
            type="contact",
            timestamp=ts.isoformat(),
            sourceEventId=f"e{i}",
        )
        for i, (text, ts) in enumerate(body)
    ]
    many = memorize_many(engine.memories, org, reqs)
    assert many.batched == 3 and many.duplicates_skipped == 1
    with engine.db.read() as s:
        mems = {m.text: m for m in s.scalars(select(Memory).where(Memory.org_id == org))}
        events = [
            (e.event_type, e.payload.get("change"), e.payload.get("memoryId"))
            for e in s.scalars(
                select(OutboxEvent)
                .where(OutboxEvent.org_id == org, OutboxEvent.event_type == "memory.updated")
                .order_by(OutboxEvent.id)
            )
        ]
    old, new = mems["Ana's company runs on PostgreSQL."], mems["Ana's company moved its database to MySQL."]
    assert len(mems) == 2
    assert old.seen_count == 2 and [p.get("eventId") for p in old.provenance] == ["e0", "e1"]
    assert old.superseded_by == new.id and new.superseded_by is None and many.superseded == 1
    assert events == [
        ("memory.updated", "created", old.id),
        ("memory.updated", "seen_again", old.id),
        ("memory.updated", "superseded", old.id),
        ("memory.updated", "created", new.id),
    ]
