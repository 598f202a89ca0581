"""A memory's readings (engine/domain/readings.py): taken from its text when it is written, stored with it, and read
back by recall instead of reading the text again — only while they belong to that text and to this reading code."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, update

from memrelay.composition import Services
from memrelay.engine.domain import readings, semantics
from memrelay.engine.memory.memories import MemorizeRequest
from memrelay.engine.memory.recall import RecallRequest
from memrelay.engine.stores.db.models import Memory
from memrelay.engine.stores.properties import Provenance

FACTS = ["Acme runs PostgreSQL on AWS and their budget is $250,000 for 2027.",
         "Priya Nair is the decision maker; she moved the renewal to March.",
         "The team grew to 85 engineers in Berlin after the Series B."]


def _forget_text_readings() -> None:
    """As a process that has not read these texts: nothing primed, nothing cached."""
    for reading in (semantics.statement_answers, semantics.value_kinds):
        reading.primed.clear()
        if hasattr(reading.read, "cache_clear"):  # not while CountingReads stands in for it
            reading.read.cache_clear()
    semantics.topic_label.cache_clear()
    semantics.statement_topics.cache_clear()
    semantics.topic_values.cache_clear()


class CountingReads:
    """Counts the texts the two primable readings read from scratch (not primed, not cached)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.texts: list[str] = []
        for reading in (semantics.statement_answers, semantics.value_kinds):
            original = reading.read.__wrapped__

            def read(text: str, original: Any = original) -> Any:
                self.texts.append(text)
                return original(text)

            monkeypatch.setattr(reading, "read", read)


def _memorize(engine: Services, org: str) -> list[str]:
    ids: list[str] = []
    for i, fact in enumerate(FACTS):
        ids += engine.memories.memorize(org, MemorizeRequest(content=fact, email=f"r{i}@readings.io", type="contact",
                                                             verbatim=True))["memoryIds"]
    return ids


def test_a_memory_is_written_with_the_readings_of_its_text(backend: str, engine: Services) -> None:
    org = engine.tenancy.create_org("readings-written").id
    ids = _memorize(engine, org)
    with engine.db.read() as s:
        rows = s.execute(select(Memory.text, Memory.readings).where(Memory.id.in_(ids))).all()
    assert len(rows) == 3
    for text, stored in rows:
        assert stored["v"] == readings.READINGS_VERSION
        answers = semantics.answer_topics(text)
        assert stored["answers"] == {k: [sorted(v.current), sorted(v.former)] for k, v in answers.items()}
        kinds, people = semantics._read_value_kinds(text)
        assert (stored["kinds"], stored["people"]) == (sorted(kinds), sorted(people))
    budget = next(stored for text, stored in rows if "budget" in text)
    assert "amount:budget" in budget["answers"] and "=money" in budget["kinds"]


def test_an_edited_memory_is_stored_with_the_readings_of_its_new_text(backend: str, engine: Services) -> None:
    org = engine.tenancy.create_org("readings-edited").id
    memory_id = _memorize(engine, org)[0]
    new_text = "Acme moved from PostgreSQL to MySQL on GCP in 2027."
    engine.memories.update_text(org, memory_id, new_text, Provenance(source="api"))
    with engine.db.read() as s:
        stored = s.scalar(select(Memory.readings).where(Memory.id == memory_id))
    assert readings.is_current(new_text, stored)
    assert stored == readings.text_readings(new_text)


def test_recall_reads_stored_readings_instead_of_the_texts_and_ranks_the_same(
        backend: str, engine: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    org = engine.tenancy.create_org("readings-recall").id
    _memorize(engine, org)
    questions = ["What is the budget?", "Who is the decision maker?", "How big is the engineering team?"]

    def ranked() -> list[list[tuple[str, float]]]:
        """Org-wide recalls (candidates re-read from SQL) and scoped ones (the record's memories, entity cache)."""
        out = []
        for i, q in enumerate(questions):
            for req in (RecallRequest(query=q, limit=3), RecallRequest(query=q, limit=3, email=f"r{i}@readings.io")):
                res = engine.recall.smart_recall(org, req)["results"]
                assert res
                out.append([(r["memoryId"], round(r["score"], 9)) for r in res])
        return out

    _forget_text_readings()
    reads = CountingReads(monkeypatch)
    with_readings = ranked()
    assert not set(reads.texts) & set(FACTS)  # every memory's readings came from its row

    with engine.db.session() as s:  # memories written before readings existed
        s.execute(update(Memory).where(Memory.org_id == org).values(readings=None))
    engine.recall.cache.clear()
    _forget_text_readings()
    reads.texts.clear()
    assert ranked() == with_readings
    assert set(FACTS) <= set(reads.texts)  # read from the texts, as before


def test_readings_of_another_text_or_of_other_reading_code_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    _forget_text_readings()
    text, other = FACTS[0], FACTS[1]
    stored = readings.text_readings(text)
    _forget_text_readings()
    assert not readings.prime(other, stored)  # taken from another text
    assert not readings.prime(text, {**stored, "v": "older-code"})  # taken by other reading code
    assert not readings.prime(text, {"v": readings.READINGS_VERSION})  # malformed
    assert other not in semantics.statement_answers.primed and text not in semantics.statement_answers.primed
    assert readings.prime(text, stored)
    reads = CountingReads(monkeypatch)
    assert semantics.statement_answers(text) == semantics.answer_topics(text)
    assert semantics.value_kinds(text) == semantics._read_value_kinds(text)
    assert reads.texts == []
