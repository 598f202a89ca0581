"""The per-process cache of big records' live memories (``memory_store.LivePoolCache``): a memorize into a record
holding many memories reads them from SQL only when the record's memory generation changed since this process
last wrote it; dedup and supersession decide exactly as on a fresh read, also after another process's write, and
nothing is cached from a transaction that rolled back or ran under a department-restricted key. On both databases:
a memory delete racing a memorize waits for the record's lock, so it is never counted in the generation a pool read
before it is cached under."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from memrelay.composition import Services
from memrelay.engine.core.access import AccessScope, access_scope
from memrelay.engine.memory.memories import MemorizeRequest
from memrelay.engine.stores import memory_store
from memrelay.engine.stores.db.models import Memory, Record
from memrelay.engine.stores.identity import Identifiers
from memrelay.engine.stores.memory_store import LivePoolCache, NewMemory, store_memories
from tests.engine.test_memorize_write_path import _many_memories, statements

POOL_READ = "SELECT memories.id, memories.record_id, memories.text, memories.ts, memories.embedding FROM memories"
WHO = Identifiers(type="contact", email="big@acme.com")


def note(i: int) -> str:
    return f"Account note {i}: the team owns {i * 7 + 3} dashboards in region {i}."  # as _many_memories writes them


def memorize(engine: Services, org: str, text: str, **kw: object) -> dict[str, object]:
    return engine.memories.memorize(org, MemorizeRequest(content=text, verbatim=True, identifiers=WHO, **kw))


def pool_reads(log: list[str]) -> int:
    return sum(1 for s in log if s.startswith(POOL_READ))


@pytest.fixture
def big(engine: Services) -> tuple[str, list[str]]:
    """An org whose contact holds 80 memories (above the cache's 64), the cache empty."""
    org = engine.tenancy.create_org(f"big-{uuid.uuid4().hex[:8]}").id
    ids = _many_memories(engine, org, WHO.email or "", 80)
    engine.memories.pool_cache.clear()
    return org, ids


def test_a_big_record_is_read_once_then_served_from_the_cache(backend, engine, big):
    org, ids = big
    with statements(engine) as log:
        first = memorize(engine, org, "Mara prefers a call on Tuesday mornings.")
    assert first["memoriesCreated"] == 1 and pool_reads(log) == 1
    assert len(engine.memories.pool_cache) == 1
    with statements(engine) as log:  # the memory the last call added is in the cached pool: a restatement merges
        again = memorize(engine, org, "Mara prefers a call on Tuesday mornings.", source="crm")
        old = memorize(engine, org, note(5))
    assert again["duplicateOf"] == first["memoryIds"] and old["duplicateOf"] == [ids[5]]
    assert pool_reads(log) == 0
    with statements(engine) as log:
        other = memorize(engine, org, "Mara's team renewed for 40 seats.")
    assert other["memoriesCreated"] == 1 and pool_reads(log) == 0


def test_a_write_by_another_process_is_seen(backend, engine, settings, big):
    """Another process (its own services, its own cache) adds a memory and deletes one: this process's cached pool
    no longer matches the record's generation, so it reads the memories again and decides on the current ones."""
    org, ids = big
    memorize(engine, org, "Mara prefers a call on Tuesday mornings.")
    assert len(engine.memories.pool_cache) == 1
    other = Services(settings)
    try:
        theirs = other.memories.memorize(org, MemorizeRequest(content="Mara moved the kickoff to May 4.",
                                                              verbatim=True, identifiers=WHO))
        other.memories.delete(org, [ids[9]])
    finally:
        other.close()
    with statements(engine) as log:
        seen = memorize(engine, org, "Mara moved the kickoff to May 4.")
    assert seen["duplicateOf"] == theirs["memoryIds"] and pool_reads(log) == 1
    gone = memorize(engine, org, note(9))  # the deleted memory is not live any more: stored anew
    assert gone["memoriesCreated"] == 1 and gone["duplicateOf"] == []


def test_nothing_is_kept_from_a_transaction_that_rolls_back(backend, engine, big):
    org, _ = big
    record_id = memorize(engine, org, "Mara prefers a call on Tuesday mornings.")["recordId"]
    cache = engine.memories.pool_cache
    assert len(cache) == 1
    emb = engine.embedder
    text = "Mara asked for the SOC 2 report."
    with pytest.raises(RuntimeError), engine.db.session() as s:
        rec = s.get_one(Record, record_id)
        out = store_memories(s, [NewMemory(rec, text, emb.embed([text])[0], rec.created_at)], embedder=emb.name,
                             dim=emb.dim, pool_cache=cache)
        assert out.created
        raise RuntimeError("abort")
    assert len(cache) == 0  # taken by the rolled-back transaction, not put back
    stored = memorize(engine, org, text)  # the rolled-back memory never existed: stored now, not a duplicate
    assert stored["memoriesCreated"] == 1
    with engine.db.read() as s:
        assert s.scalar(select(Memory.id).where(Memory.org_id == org, Memory.text == text)) == stored["memoryIds"][0]


def test_a_department_restricted_write_neither_reads_nor_fills_the_cache(engine, big):
    org, ids = big
    with access_scope(AccessScope.of(entity_types=["contact"]).for_org(org)):
        out = memorize(engine, org, note(3))
    assert out["duplicateOf"] == [ids[3]] and len(engine.memories.pool_cache) == 0


def test_the_cache_keeps_at_most_its_row_budget_oldest_first(engine, big):
    """Pools are held up to ``max_rows`` rows of vectors: caching a second big record drops the first (least
    recently used), whose next memorize reads its memories from SQL again."""
    org, _ = big
    engine.memories.pool_cache = cache = LivePoolCache(min_size=64, max_rows=200)
    other = Identifiers(type="contact", email="other@acme.com")
    _many_memories(engine, org, other.email or "", 70)
    assert len(cache) == 1  # the other record's 70 memories
    memorize(engine, org, "Mara prefers a call on Tuesday mornings.")  # 81 live memories, 160 rows of capacity
    assert len(cache) == 1  # 70 + 160 > 200: the other record's pool (least recently used) is dropped
    engine.memories.memorize(org, MemorizeRequest(content="Omar prefers email.", verbatim=True, identifiers=other))
    assert len(cache) == 1  # and now the big record's
    with statements(engine) as log:
        memorize(engine, org, "Mara asked for the SOC 2 report.")
    assert pool_reads(log) == 1


@pytest.mark.parametrize("change", ["delete", "restore"])
def test_a_delete_or_restore_racing_a_memorize_waits_and_the_cached_pool_is_not_stale(backend, engine, big,
                                                                                     monkeypatch, change):
    """Another transaction deletes (or restores) one of the record's memories while a memorize holds the record
    (after reading its pool, before its generation read). It waits for the memorize's commit, so the generation the
    pool is cached under does not count it: the next memorize sees the change — a restatement of the deleted memory
    is stored anew, one of the restored memory merges into it. (Were it not to wait, it would commit in between, the
    stale pool would be cached under a generation that includes it, and the restatement would bump the deleted
    memory, or be stored as a duplicate of the restored one.)"""
    org, ids = big
    if change == "restore":
        engine.memories.delete(org, [ids[9]])
    act = engine.memories.delete if change == "delete" else engine.memories.cancel_deletion
    real = memory_store.generations
    racing: list[threading.Thread] = []

    def generations_with_a_racing_change(s: Any, org_id: str, record_ids: list[str]) -> Any:
        if not racing:  # the first call: the memorize's generation read after its writes
            racing.append(threading.Thread(target=act, args=(org, [ids[9]])))
            racing[0].start()
            racing[0].join(2.0)  # a change that did not wait for the record's lock has committed by now
        return real(s, org_id, record_ids)

    monkeypatch.setattr(memory_store, "generations", generations_with_a_racing_change)
    memorize(engine, org, "Mara prefers a call on Tuesday mornings.")
    racing[0].join(30)
    assert not racing[0].is_alive()
    monkeypatch.setattr(memory_store, "generations", real)
    with engine.db.read() as s:
        deleted = s.scalar(select(Memory.deleted_at).where(Memory.id == ids[9])) is not None
    assert deleted == (change == "delete")
    again = memorize(engine, org, note(9))
    if change == "delete":
        assert again["memoriesCreated"] == 1 and again["duplicateOf"] == []
    else:
        assert again["memoriesCreated"] == 0 and again["duplicateOf"] == [ids[9]]
