"""Scoped recall caches the record's names and their vector basis with the record's vectors (issue 16, scoped
recall p50): the names are read and embedded once per record, and read again when a write changes them — a
property write (name, company) or a new key (website) — so a cached recall always scores like an uncached one."""

from __future__ import annotations

from typing import Any

import pytest

from memrelay.engine.memory import recall as recall_module
from memrelay.engine.stores.identity import Identifiers
from memrelay.engine.stores.properties import Provenance
from tests.engine.test_memories import memorize, recall

EMAIL = "e.lis@nordpost.example"
QUESTION = "Where is Orbis Metalworks based?"
FACTS = (
    "At Orbis Metalworks, 9 KAMs.",
    "At Orbis Metalworks, his father still comes in on Fridays.",
    "Orbis Metalworks is a family-owned metal parts manufacturer in Gdansk, founded in 1994.",
)


def _explained(api: Any, engine: Any, *, cached: bool) -> dict[str, tuple[float, float]]:
    """memory text -> (subjectFreeCosine, score) of the scoped recall, with or without the names cache."""
    engine.recall.subject_cache = cached
    try:
        out = recall(api, QUESTION, email=EMAIL, limit=10, explain=True)["results"]
    finally:
        engine.recall.subject_cache = True
    return {r["text"]: (round(r["explain"]["subjectFreeCosine"], 6), round(r["score"], 6)) for r in out}


@pytest.fixture()
def lis(api: Any, engine: Any) -> None:
    engine.records.upsert(
        api.org_id, Identifiers(type="contact", email=EMAIL), {"first_name": "Ewa"}, Provenance(source="crm")
    )
    for text in FACTS:
        memorize(api, text, email=EMAIL, type="contact", timestamp="2026-01-05T12:00:00Z")


def _count_name_reads(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    calls: list[list[str]] = []
    real = recall_module.subject_names

    def counting(s: Any, record_ids: list[str]) -> list[str]:
        calls.append(list(record_ids))
        return real(s, record_ids)

    monkeypatch.setattr(recall_module, "subject_names", counting)
    return calls


def test_names_are_read_once_and_again_after_a_property_write(
    api: Any, engine: Any, lis: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _count_name_reads(monkeypatch)
    before = _explained(api, engine, cached=True)
    assert _explained(api, engine, cached=True) == before
    assert len(calls) == 1  # the second recall used the cached names
    assert _explained(api, engine, cached=False) == before

    # the company name is a property: writing it changes the names (no memory is written)
    engine.records.upsert(
        api.org_id,
        Identifiers(type="contact", email=EMAIL),
        {"company_name": "Orbis Metalworks"},
        Provenance(source="crm"),
    )
    after = _explained(api, engine, cached=True)
    assert after == _explained(api, engine, cached=False)
    assert after != before  # "Orbis Metalworks" is now the record's own name, stripped from the question
    n = len(calls)
    assert _explained(api, engine, cached=True) == after
    assert len(calls) == n


def test_a_new_key_changes_the_names(api: Any, engine: Any, lis: None) -> None:
    before = _explained(api, engine, cached=True)
    # the website's host label ("orbis-metalworks") becomes one of the record's names
    engine.records.upsert(
        api.org_id,
        Identifiers(type="contact", email=EMAIL, website_url="https://www.orbis-metalworks.example"),
        {},
        Provenance(source="crm"),
    )
    after = _explained(api, engine, cached=True)
    assert after == _explained(api, engine, cached=False)
    assert after != before


def _embedded_texts(engine: Any, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The batches recall sends to its embedder from now on (appended as they are sent)."""
    texts: list[list[str]] = []
    emb = engine.recall.embedder
    real = emb.embed

    def counting(batch: list[str]) -> Any:
        texts.append(list(batch))
        return real(batch)

    monkeypatch.setattr(emb, "embed", counting)
    return texts


def test_a_question_without_the_names_is_embedded_once(
    api: Any, engine: Any, lis: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    recall(api, "pricing for the analytics product", email=EMAIL, limit=5)  # names cached
    texts = _embedded_texts(engine, monkeypatch)
    recall(api, "Which city are they in?", email=EMAIL, limit=5)
    assert texts == [["Which city are they in?"]]
    recall(api, "Where is Ewa based?", email=EMAIL, limit=5)  # the name is stripped: the rest is embedded
    assert texts[1:] == [["Where is Ewa based?"], ["Where is based?"]]


def test_a_repeated_question_is_embedded_once_and_scores_the_same(
    api: Any, engine: Any, lis: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The question's vector (and its name-free form's) is kept for the next recall asking it, of this record or
    another; the answer is the one an uncached recall gives."""
    question = "Where is Ewa based?"
    engine.recall.questions.clear()
    first = _scored(api, question)
    texts = _embedded_texts(engine, monkeypatch)
    assert _scored(api, question) == first and texts == []  # both vectors cached
    recall(api, "Which city are they in?", email=EMAIL, limit=5)
    assert texts == [["Which city are they in?"]]  # another question misses
    engine.recall.questions.clear()
    assert _scored(api, question) == first and texts[1:] == [[question], ["Where is based?"]]


def _scored(api: Any, question: str) -> dict[str, tuple[float, dict[str, Any]]]:
    out = recall(api, question, email=EMAIL, limit=10, explain=True)["results"]
    return {r["text"]: (r["score"], r["explain"]) for r in out}


def test_unchanged_memories_keep_their_text_analysis_across_a_write(
    api: Any, engine: Any, lis: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write reloads the record's cached memories; the unchanged ones take over what scoring derived from their
    text, only the new one is analysed — and the recall scores exactly as on an empty cache."""
    question = "Who decides on the purchase, and what database do they use?"
    _scored(api, question)  # cached and analysed
    analysed: list[str] = []
    real = recall_module.statement_topics

    def counting(text: str) -> Any:
        analysed.append(text)
        return real(text)

    monkeypatch.setattr(recall_module, "statement_topics", counting)
    memorize(api, "Ewa's team moved the warehouse from Oracle to PostgreSQL last month.", email=EMAIL,
             type="contact", timestamp="2026-02-01T12:00:00Z")
    after_write = _scored(api, question)
    assert analysed and all("PostgreSQL" in t for t in analysed)  # the new memory only
    engine.recall.cache.clear()
    analysed.clear()
    assert _scored(api, question) == after_write
    assert len(analysed) > 1  # an empty cache analyses every memory again


def test_a_memory_whose_text_changed_is_analysed_again() -> None:
    from memrelay.engine.memory.entity_vectors import carry_text_memos

    old = [{"memoryId": "m1", "text": "Uses Oracle.", "_topics": frozenset({"database"}), "_outdated": {1: 2}},
           {"memoryId": "m2", "text": "Team of 40.", "_topics": frozenset({"team_size"})}]
    new = [{"memoryId": "m1", "text": "Uses Oracle."}, {"memoryId": "m2", "text": "Team of 45."},
           {"memoryId": "m3", "text": "Budget is $50k."}]
    assert carry_text_memos(old, new, ("_topics",)) == 1
    assert new[0] == {"memoryId": "m1", "text": "Uses Oracle.", "_topics": frozenset({"database"})}  # no _outdated
    assert "_topics" not in new[1] and "_topics" not in new[2]
