"""Single memorize's write path (issue 16): the same results as the step-by-step writes it replaces, with
fewer statements — current values read once, no second read of a record a write already holds, the type and
its schema in one query, subject and company of a record from one read."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, select

from memrelay.composition import Services
from memrelay.engine.domain.extraction import ExtractedValue
from memrelay.engine.memory.memories import MemorizeRequest, describe_record, subject_of
from memrelay.engine.stores.db.models import OutboxEvent, PropertyHistory, PropertyValue, Record
from memrelay.engine.stores.identity import Identifiers
from memrelay.engine.stores.memory_store import company_of
from memrelay.engine.stores.properties import Provenance, write_properties

TS = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)


@contextmanager
def statements(engine: Services) -> Iterator[list[str]]:
    """Every SQL statement (and BEGIN/COMMIT) the engine runs inside the block, flattened to one line."""
    log: list[str] = []

    def on_exec(conn: Any, cur: Any, stmt: str, *_: Any) -> None:
        log.append(" ".join(stmt.split()))

    def on_begin(_conn: Any) -> None:
        log.append("BEGIN WRITE")

    def on_commit(_conn: Any) -> None:
        log.append("COMMIT")

    engines = {engine.db.engine, engine.db.read_engine}  # SQLite: separate engines for writes and reads
    for e in engines:
        event.listen(e, "before_cursor_execute", on_exec)
    event.listen(engine.db.engine, "begin", on_begin)
    event.listen(engine.db.engine, "commit", on_commit)
    try:
        yield log
    finally:
        for e in engines:
            event.remove(e, "before_cursor_execute", on_exec)
        event.remove(engine.db.engine, "begin", on_begin)
        event.remove(engine.db.engine, "commit", on_commit)


def first_write_transaction(log: list[str]) -> tuple[list[str], list[str]]:
    """The statements before the first write transaction, and those of it (up to its COMMIT)."""
    begin = log.index("BEGIN WRITE")
    return log[:begin], log[begin + 1:log.index("COMMIT", begin)]


def test_values_at_several_confidences_are_written_as_write_properties_would(engine):
    org = engine.tenancy.create_org("conf").id
    ids = {n: Identifiers(type="contact", email=f"{n}@conf.example") for n in ("one", "steps")}
    for i in ids.values():  # an existing value, so both writes read it and one level replaces it
        engine.records.upsert(org, i, {"job_title": "Engineer"}, Provenance(source="crm", source_ts=TS))
    values = [ExtractedValue("job_title", "Head of Growth", 0.9, "", "t"),
              ExtractedValue("first_name", "Ana", 0.9, "", "t"),
              ExtractedValue("last_name", "Lopez", 0.6, "", "t"),
              ExtractedValue("job_title", "VP Growth", 0.6, "", "t")]  # the same property at a second level
    req = MemorizeRequest(content="x", email="one@conf.example", source="memorize", sourceEventId="ev-1")
    later = TS.replace(day=11)
    with engine.db.session() as s:
        rec = engine.records.get_or_create(s, org, ids["one"])
        written = engine.memories._write_values(s, rec, values, later, req)
    with engine.db.session() as s:  # the reference: one write_properties per confidence level, in order
        rec = engine.records.get_or_create(s, org, ids["steps"])
        schema = engine.collections.schema_for(s, org, "contact")
        for conf, batch in ((0.9, {"job_title": "Head of Growth", "first_name": "Ana"}),
                            (0.6, {"last_name": "Lopez", "job_title": "VP Growth"})):
            write_properties(s, rec, batch, schema, Provenance(source="memorize", source_event_id="ev-1",
                                                                source_ts=later, confidence=conf))
    assert [(w["name"], w["applied"]) for w in written] == [("job_title", True), ("first_name", True),
                                                            ("last_name", True), ("job_title", True)]

    def state(email: str) -> tuple[Any, ...]:
        with engine.db.read() as s:
            r = engine.records.get(org, Identifiers(type="contact", email=email))
            rid = r["recordId"]
            values = {pv.name: (pv.value, pv.confidence, pv.version, pv.source_event_id)
                      for pv in s.scalars(select(PropertyValue).where(PropertyValue.record_id == rid))}
            history = [(h.name, h.value, h.previous, h.applied, h.confidence, h.record_version) for h in
                       s.scalars(select(PropertyHistory).where(PropertyHistory.record_id == rid)
                                 .order_by(PropertyHistory.id))]
            events = sorted((e.event_type, e.payload.get("propertyName"), e.payload.get("version")) for e in
                            s.scalars(select(OutboxEvent).where(OutboxEvent.org_id == org)
                                      .where(OutboxEvent.event_type.like("memory.propert%")))
                            if e.payload.get("recordId") == rid)
            return r["version"], values, history, events

    one, steps = state("one@conf.example"), state("steps@conf.example")
    assert one == steps
    assert one[1]["job_title"][:2] == ("VP Growth", 0.6) and one[1]["first_name"][:2] == ("Ana", 0.9)


def test_memorize_on_a_known_record_reads_it_once_and_writes_in_one_transaction(api, engine):
    org = api.org_id
    engine.memories.memorize(org, MemorizeRequest(content="Ana Lopez is the Head of Growth at Acme.",
                                                  email="ana@acme.example", type="contact"))
    with statements(engine) as log:
        out = engine.memories.memorize(org, MemorizeRequest(content="Acme runs its billing on PostgreSQL.",
                                                            email="ana@acme.example", type="contact"))
    assert out["memoriesCreated"] == 1
    read, write = first_write_transaction(log)
    assert [s for s in write if s.startswith("INSERT INTO memories")]  # the memorize's own write transaction
    lookups = [s for s in write if s.startswith("SELECT records.") and "JOIN record_keys" in s]
    assert len(lookups) == 1  # the record is found by its key once in the write ...
    assert not [s for s in write if s.startswith("SELECT records.") and "WHERE records.id" in s]  # ... not re-read
    assert not [s for s in write if s.startswith("SELECT record_keys.key_name")]  # the one key it was found by
    assert len([s for s in write if s.startswith("SELECT entity_types.")]) == 1  # with its schema's stamp
    assert not [s for s in write if s.startswith("SELECT (SELECT count(*)")]  # no separate schema check
    assert not [s for s in read if "FROM property_values" in s][1:]  # subject and company: one read


def test_a_key_the_record_was_not_found_by_is_still_attached(api, engine):
    org = api.org_id
    first = engine.memories.memorize(org, MemorizeRequest(content="Bo leads payments.", email="bo@initech.example",
                                                          type="contact"))
    again = engine.memories.memorize(org, MemorizeRequest(content="Bo prefers email.", email="bo@initech.example",
                                                          website_url="initech.example", type="contact"))
    assert again["recordId"] == first["recordId"]
    keys = engine.records.get(org, Identifiers(type="contact", email="bo@initech.example"))["keys"]
    assert keys.get("website_url") == "initech.example"
    by_site = engine.memories.memorize(org, MemorizeRequest(content="Bo is based in Lyon.",
                                                            website_url="initech.example", type="contact"))
    assert by_site["recordId"] == first["recordId"]


def test_describe_record_matches_subject_of_and_company_of(api, engine):
    org = api.org_id
    prov = Provenance(source="crm", source_ts=TS)
    cases = [(Identifiers(type="contact", email="ana@acme.example"),
              {"first_name": "Ana", "last_name": "Lopez", "company_name": " Acme "}),
             (Identifiers(type="contact", email="kim@delta.example"), {"job_title": "CFO"}),
             (Identifiers(type="company", website_url="delta.example"), {"name": "Delta"})]
    for ids, props in cases:
        engine.records.upsert(org, ids, props, prov)
    with engine.db.read() as s:
        for ids, _ in cases:
            rec = s.scalar(select(Record).where(Record.org_id == org, Record.entity_type == ids.type,
                                                Record.primary_key.like(f"%{ids.email or ids.website_url}")))
            assert rec is not None
            assert describe_record(s, rec, ids) == (subject_of(s, rec, ids), company_of(s, rec))
        assert describe_record(s, None, cases[0][0]) == ("ana@acme.example", None)
        ana = s.scalar(select(Record).where(Record.org_id == org, Record.primary_key == "email:ana@acme.example"))
        assert describe_record(s, ana, cases[0][0]) == ("Ana Lopez", "Acme")


@contextmanager
def memory_rows_loaded() -> Iterator[list[str]]:
    """Ids of the :class:`Memory` rows the ORM builds inside the block (each with its JSON columns decoded)."""
    from memrelay.engine.stores.db.models import Memory

    loaded: list[str] = []

    def on_load(target: Any, _ctx: Any) -> None:
        loaded.append(target.id)

    event.listen(Memory, "load", on_load)
    try:
        yield loaded
    finally:
        event.remove(Memory, "load", on_load)


def _many_memories(engine: Services, org: str, email: str, n: int) -> list[str]:
    from memrelay.engine.memory.batch import memorize_many

    reqs = [MemorizeRequest(content=f"Account note {i}: the team owns {i * 7 + 3} dashboards in region {i}.",
                            verbatim=True, identifiers=Identifiers(type="contact", email=email))
            for i in range(n)]
    memorize_many(engine.memories, org, reqs)
    from memrelay.engine.stores.db.models import Memory

    with engine.db.read() as s:
        by_text = dict(s.execute(select(Memory.text, Memory.id).where(Memory.org_id == org)).all())
    return [by_text[r.content] for r in reqs]


def test_memorize_on_a_record_with_many_memories_loads_only_the_rows_it_changes(engine):
    """Dedup and supersession compare against every live memory of the record, but read only their ids, texts,
    times and vectors: a record's 120 memories are not each built as a full row on every memorize (that made a
    memorize on a record with 1,500 memories ~15x slower than on a new one)."""
    org = engine.tenancy.create_org("many").id
    ids = _many_memories(engine, org, "many@acme.com", 120)
    assert len(ids) == 120
    who = Identifiers(type="contact", email="many@acme.com")
    with memory_rows_loaded() as loaded:
        out = engine.memories.memorize(org, MemorizeRequest(content="Mara prefers a call on Tuesday mornings.",
                                                            verbatim=True, identifiers=who))
    assert out["memoriesCreated"] == 1 and loaded == []
    with memory_rows_loaded() as loaded:  # a restatement bumps exactly the memory it restates
        again = engine.memories.memorize(org, MemorizeRequest(content=f"Account note 7: the team owns {7 * 7 + 3} "
                                                              "dashboards in region 7.", verbatim=True,
                                                              identifiers=who, source="crm"))
    assert again["duplicateOf"] == [ids[7]] and loaded == [ids[7]]
    with engine.db.read() as s:
        from memrelay.engine.stores.db.models import Memory

        bumped = s.get_one(Memory, ids[7])
        assert bumped.seen_count == 2 and [p["source"] for p in bumped.provenance][-1] == "crm"


def test_a_replayed_batch_loads_the_rows_it_restates_in_one_query(engine):
    """Memorizing the same batch twice bumps every memory once more; the rows bumped are read together, not one
    query per memory."""
    from memrelay.engine.memory.batch import memorize_many

    org = engine.tenancy.create_org("replay").id
    ids = _many_memories(engine, org, "replay@acme.com", 30)
    reqs = [MemorizeRequest(content=f"Account note {i}: the team owns {i * 7 + 3} dashboards in region {i}.",
                            verbatim=True, identifiers=Identifiers(type="contact", email="replay@acme.com"))
            for i in range(30)]
    with statements(engine) as log, memory_rows_loaded() as loaded:
        out = memorize_many(engine.memories, org, reqs)
    assert out.duplicates_skipped == 30 and out.memories_created == 0
    assert sorted(loaded) == sorted(ids)
    full_reads = [s for s in log if s.startswith("SELECT memories.id, memories.org_id") and "memories.provenance" in s]
    assert len(full_reads) == 1, full_reads


def test_templated_notes_that_differ_in_a_number_stay_apart_and_restatements_merge(engine):
    """Notes made from one template are all close in meaning; only a restatement with the same numbers and names
    merges (facets compared before the text), within one batch and against stored memories."""
    from memrelay.engine.memory.batch import memorize_many

    org = engine.tenancy.create_org("templated").id
    who = Identifiers(type="contact", email="tpl@acme.com")

    def note(i: int) -> MemorizeRequest:
        return MemorizeRequest(content=f"Call logged with Dana: {i} open tickets, renewal risk {i % 4}.",
                               verbatim=True, identifiers=who)

    first = memorize_many(engine.memories, org, [note(i) for i in range(40)] + [note(3), note(17)])
    assert first.memories_created == 40 and first.duplicates_skipped == 2
    again = memorize_many(engine.memories, org, [note(i) for i in (5, 40, 5)])
    assert again.memories_created == 1 and again.duplicates_skipped == 2
    from memrelay.engine.stores.db.models import Memory

    with engine.db.read() as s:
        seen = dict(s.execute(select(Memory.text, Memory.seen_count).where(Memory.org_id == org)).all())
    assert len(seen) == 41
    assert seen[note(5).content] == 3 and seen[note(3).content] == 2 and seen[note(40).content] == 1


def test_a_batch_resolves_its_records_with_one_key_lookup(engine):
    """Batch memorize finds the records its requests name with one query per key name, not one per request,
    and each request still lands on its own record (the identity rules are the single path's)."""
    from memrelay.engine.memory.batch import memorize_many
    from memrelay.engine.stores.db.models import Memory

    org = engine.tenancy.create_org("resolve").id
    people = [Identifiers(type="contact", email=f"p{i}@resolve.example") for i in range(20)]
    memorize_many(engine.memories, org, [MemorizeRequest(content=f"Person {i} joined.", verbatim=True,
                                                         identifiers=who) for i, who in enumerate(people)])
    with engine.db.read() as s:
        owner = {m.text: m.record_id for m in s.scalars(select(Memory).where(Memory.org_id == org))}
        record_of = {i: owner[f"Person {i} joined."] for i in range(20)}
    reqs = [MemorizeRequest(content=f"Person {i} renewed for {i + 5} seats.", verbatim=True,
                            identifiers=Identifiers(type="contact", email=f"P{i}@Resolve.example"))  # case folds
            for i in range(20)]
    with statements(engine) as log:
        out = memorize_many(engine.memories, org, reqs)
    assert out.memories_created == 20 and all(r["recordId"] == record_of[i] for i, r in enumerate(out.results))
    one_by_one = [s for s in log if "record_keys.key_value = ?" in s]  # a lookup of one request's key
    assert one_by_one == [], one_by_one[:2]
    assert len([s for s in log if s.startswith("SELECT") and "FROM record_keys" in s]) <= 3  # set-based, any size
