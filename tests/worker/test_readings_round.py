"""The workers' memory-readings round (worker/sweeper.py ``refresh_readings_round``): memories whose stored readings
are missing or stale get current ones, a batch at a time under the round's lease, from a cursor kept in Redis that a
later round (any worker, after a restart) resumes; a finished pass leaves the round idle until the reading code
changes. Real Services, real Redis (private and external), SQLite and PostgreSQL (its own schema: a pass covers every
memory of the database)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis

from memrelay.composition import Services
from memrelay.engine.core.settings import Settings
from memrelay.engine.domain import readings
from memrelay.engine.memory.recall import RecallRequest
from memrelay.engine.stores import memory_readings
from memrelay.queue import redis_keys
from memrelay.worker.periodic import Lease
from memrelay.worker.sweeper import refresh_readings_round
from tests.engine.test_memory_readings import CountingReads, _forget_text_readings
from tests.engine.test_refresh_readings import FACTS, memorize_facts, org_of, set_readings, stored

pytestmark = pytest.mark.own_database
ROUND = "memory-readings"


def cursor(conn: redis.Redis) -> Any:
    raw = conn.get(redis_keys.readings_cursor())
    return None if raw is None else json.loads(raw)


def next_period(conn: redis.Redis) -> None:
    """As when the round's period has passed."""
    conn.delete(redis_keys.pace(ROUND))


def test_a_pass_resumes_from_its_cursor_and_leaves_memories_primable_by_recall(
        backend: str, redis_backend: str, engine: Services, settings: Settings,
        monkeypatch: pytest.MonkeyPatch) -> None:
    ids = memorize_facts(engine, "round-resume")
    set_readings(engine, dict.fromkeys(ids))  # as memories written before readings existed
    before = stored(engine, ids)
    conn = redis.Redis.from_url(str(settings.redis_url))
    read = memory_readings.text_readings
    texts_read: list[str] = []

    def lease_taken_during_the_first_batch(text: str) -> dict[str, Any]:
        """The real readings; during the first batch another worker takes the round's lease (this one's expired)."""
        if not texts_read:
            conn.delete(redis_keys.lock(ROUND))
            assert Lease(conn, ROUND, ttl_s=30).acquire()
        texts_read.append(text)
        return read(text)

    monkeypatch.setattr(memory_readings, "text_readings", lease_taken_during_the_first_batch)
    assert refresh_readings_round(engine, conn, batch=2)
    assert texts_read == [before[i][0] for i in ids[:2]]  # one batch, then the lost lease stopped the round
    assert cursor(conn) == [readings.READINGS_VERSION, ids[1]]
    assert [stored(engine, [i])[i][1] is None for i in ids] == [False, False, True, True, True]

    conn.delete(redis_keys.lock(ROUND))  # the other worker's round ended without getting to it
    assert not refresh_readings_round(engine, conn, batch=2)  # paced: once per period
    next_period(conn)
    assert refresh_readings_round(engine, conn, batch=2)  # resumes after the cursor, batch by batch to the end
    assert texts_read == [before[i][0] for i in ids]  # each text read once over the two rounds
    assert cursor(conn) == [readings.READINGS_VERSION, None]
    monkeypatch.undo()

    after = stored(engine, ids)
    for memory_id, (text, value, updated_at) in after.items():
        assert value == readings.text_readings(text)
        assert updated_at == before[memory_id][2]  # readings only: the row's stamp is unchanged

    org = org_of(engine, ids[0])

    def recall_as_a_new_process() -> list[str]:
        """Texts read (not primed) by org-wide and scoped recalls of a process meeting these memories first."""
        engine.recall.cache.clear()
        _forget_text_readings()
        reads.texts.clear()
        for i, question in enumerate(["What is the budget?", "Who is the decision maker?", "How big is the team?"]):
            for req in (RecallRequest(query=question, limit=3), RecallRequest(query=question, limit=3,
                                                                              email=f"m{i}@refresh.io")):
                assert engine.recall.smart_recall(org, req)["results"]
        return reads.texts

    reads = CountingReads(monkeypatch)
    assert not set(recall_as_a_new_process()) & set(FACTS)  # readings came from storage, not from the texts
    set_readings(engine, dict.fromkeys(ids))
    assert set(FACTS[:3]) <= set(recall_as_a_new_process())  # the control: without stored readings, texts are read


def test_a_finished_pass_is_idle_until_the_reading_code_changes(
        backend: str, redis_backend: str, engine: Services, settings: Settings,
        monkeypatch: pytest.MonkeyPatch) -> None:
    ids = memorize_facts(engine, "round-idle", FACTS[:3])
    stale = {**stored(engine, [ids[0]])[ids[0]][1], "v": "older-code"}
    set_readings(engine, {ids[0]: stale, ids[1]: None})
    conn = redis.Redis.from_url(str(settings.redis_url))

    assert refresh_readings_round(engine, conn)
    assert cursor(conn) == [readings.READINGS_VERSION, None]
    rows = stored(engine, ids)
    assert all(readings.is_current(text, value) for text, value, _ in rows.values())

    next_period(conn)
    set_readings(engine, {ids[2]: None})  # not something a finished pass looks for: new memories come with readings
    assert not refresh_readings_round(engine, conn)  # idle: one GET, no lease, no period taken
    assert not conn.exists(redis_keys.pace(ROUND)) and not conn.exists(redis_keys.lock(ROUND))
    assert stored(engine, [ids[2]])[ids[2]][1] is None

    monkeypatch.setattr(readings, "READINGS_VERSION", "next-code")  # a deploy with other reading code
    assert refresh_readings_round(engine, conn)  # a new pass from the beginning
    assert cursor(conn) == ["next-code", None]
    after = stored(engine, ids)
    for memory_id, (text, value, updated_at) in after.items():
        assert value["v"] == "next-code" and readings.is_current(text, value)
        assert updated_at == rows[memory_id][2]
    next_period(conn)
    assert not refresh_readings_round(engine, conn)


def test_an_unreadable_cursor_starts_a_new_pass(backend: str, engine: Services, settings: Settings) -> None:
    ids = memorize_facts(engine, "round-cursor", FACTS[:2])
    set_readings(engine, dict.fromkeys(ids))
    conn = redis.Redis.from_url(str(settings.redis_url))
    conn.set(redis_keys.readings_cursor(), b"not json")
    assert refresh_readings_round(engine, conn)
    assert cursor(conn) == [readings.READINGS_VERSION, None]
    assert all(value is not None for _, value, _ in stored(engine, ids).values())
