"""Backfill memory templates as a batch (``memorize_many``) gives what one memorize per record gives.

Two orgs sync the same fake HubSpot contacts, one through the batch path and one through the per-record path;
their memories (text, tags, provenance, dedup counts, supersession), property values and events must match.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import numpy as np
from sqlalchemy import select

from memrelay.composition import Services
from memrelay.engine.adapters.vector_index import from_blobs
from memrelay.engine.core.errors import MemrelayError
from memrelay.engine.ingest.backfill import Backfill
from memrelay.engine.memory.batch import memorize_many
from memrelay.engine.memory.memories import MemorizeRequest
from memrelay.engine.stores.db.models import Memory, OutboxEvent, PropertyValue, Record
from tests.connectors.fake_hubspot import BASE_TIME, FakeHubSpot, iso, make_contacts


def _org(engine: Services) -> str:
    return engine.tenancy.get_or_create_org(f"bf-{uuid.uuid4().hex[:8]}").id


def _source(engine: Services, org_id: str, fake: FakeHubSpot) -> str:
    return engine.sources.create(org_id, connector="hubspot", secret="s",
                                 config={"api_base": fake.url, "access_token": fake.token,
                                         "sync_objects": ["contact"]})["id"]


def _state(engine: Services, org_id: str) -> dict[str, Any]:
    """The org's memories, values and events, keyed by the records' primary keys (ids differ per org)."""
    with engine.db.read() as s:
        pk = dict(s.execute(select(Record.id, Record.primary_key).where(Record.org_id == org_id)).all())
        mems = list(s.scalars(select(Memory).where(Memory.org_id == org_id)))
        by_id = {m.id: m for m in mems}
        memories = sorted(
            (pk[m.record_id], m.text, tuple(m.tags or []), m.source, m.topic, m.seen_count, m.index_state != "deleted",
             by_id[m.superseded_by].text if m.superseded_by else None,
             tuple((p["source"], p["timestamp"], p.get("eventId"), str(p.get("span"))) for p in m.provenance))
            for m in mems)
        vectors = {(pk[m.record_id], m.text): v for m, v in zip(mems, from_blobs([m.embedding for m in mems],
                                                                              engine.embedder.dim), strict=True)}
        values = sorted((pk[v.record_id], v.name, str(v.value), v.source, v.source_event_id, v.confidence)
                        for v in s.scalars(select(PropertyValue).where(PropertyValue.org_id == org_id)))
        events = Counter((e.event_type, e.payload.get("change")) for e in
                         s.scalars(select(OutboxEvent).where(OutboxEvent.org_id == org_id)))
    return {"memories": memories, "vectors": vectors, "values": values, "events": events}


def test_batch_backfill_writes_the_same_memories_as_one_memorize_per_record(backend: str, engine: Services):
    fake = FakeHubSpot(contacts=make_contacts(120)).start()
    orgs = {True: _org(engine), False: _org(engine)}
    sources = {batch: _source(engine, org, fake) for batch, org in orgs.items()}
    try:
        for batch, src in sources.items():
            summary = Backfill(engine.sources, engine.records, engine.memories, batch=batch).sync_source(src)
            assert (summary.created, summary.memories, summary.errors) == (120, 120, 0)
        later = BASE_TIME + timedelta(days=30)  # contacts 1..10 were promoted: a newer, contradicting fact
        for i in range(1, 11):
            props = fake.objects["contacts"][str(i)]["properties"]
            props.update(jobtitle="Chief Technology Officer", lastmodifieddate=iso(later + timedelta(minutes=i)))
            fake.objects["contacts"][str(i)]["updatedAt"] = props["lastmodifieddate"]
        summaries = {}
        for batch, src in sources.items():
            again = Backfill(engine.sources, engine.records, engine.memories, batch=batch).sync_source(src, full=True)
            summaries[batch] = (again.created, again.updated, again.unchanged, again.memories, again.errors)
        assert summaries[True] == summaries[False] and summaries[True][3:] == (10, 0)
    finally:
        fake.stop()
    batch, single = _state(engine, orgs[True]), _state(engine, orgs[False])
    assert len(batch["memories"]) == 130
    assert batch["memories"] == single["memories"]
    assert batch["values"] == single["values"]
    assert batch["events"] == single["events"]
    for key, vector in single["vectors"].items():
        assert float(np.dot(vector, batch["vectors"][key])) > 0.999
    assert sum("works as Chief Technology Officer" in m[1] for m in batch["memories"]) == 10


def test_memorize_many_matches_memorize_per_request_with_one_embedder_call(backend: str, engine: Services):
    def requests(org_id: str) -> list[MemorizeRequest]:
        rec = engine.records.upsert(org_id, _ids("ana@acme.example"), {"first_name": "Ana"},
                                    _prov())["recordId"]
        ts = BASE_TIME.isoformat()
        later = (BASE_TIME + timedelta(days=3)).isoformat()
        body = [
            {"content": "Ana works as VP Engineering at Acme. Acme runs on PostgreSQL.", "email": "ana@acme.example",
             "type": "contact", "timestamp": ts, "tags": ["crm"], "sourceEventId": "e1"},
            {"content": "Ana works as VP Engineering at Acme.", "identifiers": {"type": "contact", "record_id": rec},
             "timestamp": ts, "sourceEventId": "e2"},  # a duplicate of the first request's first fact
            {"content": "Acme moved its database to MySQL.", "email": "ana@acme.example", "type": "contact",
             "timestamp": later, "sourceEventId": "e3"},  # supersedes "runs on PostgreSQL"
            {"content": "Bo Li joined Initech as CFO.", "email": "bo@initech.example", "type": "contact",
             "timestamp": ts, "verbatim": True},
            {"content": "No type for this one.", "email": "x@nowhere.example", "type": "no_such_type"},  # an error
            {"content": "Cy asked about pricing.", "email": "cy@hooli.example", "type": "contact",
             "messages": [{"role": "user", "content": "What does the Pro plan cost?", "name": "Cy"}]},
        ]
        return [MemorizeRequest.model_validate(b) for b in body]

    org_batch, org_single = _org(engine), _org(engine)
    # the schema's own vectors are embedded once per process (cached per schema, whichever call comes first)
    engine.memories.memorize(_org(engine), MemorizeRequest(content="Dee runs on Oracle.", email="dee@x.example",
                                                           type="contact"))
    many = memorize_many(engine.memories, org_batch, requests(org_batch))
    singles: list[Any] = []
    for req in requests(org_single):
        try:
            singles.append(engine.memories.memorize(org_single, req))
        except MemrelayError as exc:
            singles.append(exc)

    assert many.embed_calls == 1 and many.batched == 4
    assert [type(r).__name__ for r in many.results] == [type(r).__name__ for r in singles]
    assert isinstance(many.results[4], MemrelayError) and many.results[4].code == singles[4].code
    ok = [r for r in singles if isinstance(r, dict)]
    assert many.memories_created == sum(r["memoriesCreated"] for r in ok)
    assert many.duplicates_skipped == sum(r["duplicatesSkipped"] for r in ok) >= 1
    assert many.superseded == sum(len(r["superseded"]) for r in ok) >= 1
    batch, single = _state(engine, org_batch), _state(engine, org_single)
    assert batch["memories"] == single["memories"]
    assert batch["values"] == single["values"]
    assert batch["events"] == single["events"]


def _ids(email: str) -> Any:
    from memrelay.engine.stores.identity import Identifiers

    return Identifiers(type="contact", email=email)


def _prov() -> Any:
    from memrelay.engine.stores.properties import Provenance

    return Provenance(source="test", source_ts=BASE_TIME)
