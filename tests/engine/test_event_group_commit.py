"""Webhook accept without writer contention (issue 16 item 5): concurrent ``EventLog.record`` calls of one
process share write transactions (group commit), each caller still gets its own ids, duplicates are
attributed once, a call returns only once its rows are committed, and one bad request fails alone."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import func, select

from memrelay.composition import Services
from memrelay.engine.stores.db.models import InboundEvent
from memrelay.engine.stores.event_log import GroupCommit


def _event(key: str) -> dict[str, Any]:
    return {"connector": "hubspot", "dedup_key": key, "event_type": "contact.propertyChange",
            "object_type": "contact", "object_id": key, "occurred_at": None, "payload": {"k": key}}


def _source(engine: Services) -> tuple[str, str]:
    org = engine.tenancy.create_org("gc-org").id
    src = engine.sources.create(org, connector="hubspot", secret="s", config={"fetch": False})
    return org, src["id"]


def test_concurrent_records_share_transactions_and_keep_their_own_ids(backend: str, engine: Services) -> None:
    org, source = _source(engine)
    log = engine.events
    inner = log._group._write
    gate = threading.Event()

    def slow_first(rows: list[dict[str, Any]]) -> set[str]:
        if log._group.batches == 0:
            gate.wait(10)  # the first writer holds its turn until every other caller is queued
        return inner(rows)

    log._group._write = slow_first
    results: dict[int, tuple[list[str], int]] = {}
    enqueued: list[list[str]] = []

    def enqueue(ids: list[str]) -> None:  # one hook object: the gateway's enqueuer, one round trip per batch
        with engine.db.read() as s:  # runs after the commit
            assert s.scalar(select(func.count()).select_from(InboundEvent).where(InboundEvent.id.in_(ids))) == len(ids)
        enqueued.append(ids)

    def call(i: int) -> None:
        # callers 0..9 each send a new event; every caller also sends the shared "dup" event
        new_ids, dups = log.record(org, source, [_event(f"e{i}"), _event("dup")], after_commit=enqueue)
        assert set(new_ids) <= {i for batch in enqueued for i in batch}  # enqueued before the caller returns
        with engine.db.read() as s:  # returned means committed: visible to another transaction
            assert s.scalar(select(func.count()).select_from(InboundEvent).where(InboundEvent.id.in_(new_ids))) \
                == len(new_ids)
        results[i] = (new_ids, dups)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(10)]
    threads[0].start()
    time.sleep(0.3)
    for t in threads[1:]:
        t.start()
    deadline = time.monotonic() + 10
    while len(log._group._queue) < 9 and time.monotonic() < deadline:
        time.sleep(0.01)
    gate.set()
    for t in threads:
        t.join(30)
    assert len(results) == 10
    assert log._group.batches == 2  # the first caller alone, then the nine that queued behind it, together
    assert sum(len(ids) for ids, _ in results.values()) == 11  # ten own events + the shared one, once
    assert sum(d for _, d in results.values()) == 9  # the shared event is a duplicate for nine callers
    all_ids = [i for ids, _ in results.values() for i in ids]
    assert len(set(all_ids)) == 11
    assert len(enqueued) == 2 and sorted(i for batch in enqueued for i in batch) == sorted(all_ids)
    with engine.db.read() as s:
        assert s.scalar(select(func.count()).select_from(InboundEvent).where(InboundEvent.source_id == source)) == 11


def test_a_failing_request_fails_alone_in_a_shared_batch() -> None:
    calls: list[list[str]] = []

    def write(rows: list[dict[str, Any]]) -> set[str]:
        calls.append([r["id"] for r in rows])
        if any(r["id"] == "bad" for r in rows):
            raise ValueError("bad row")
        return {r["id"] for r in rows}

    group = GroupCommit(write)
    batch = [group_pending(["a"]), group_pending(["bad"]), group_pending(["c"])]
    group._run(batch)
    assert calls == [["a", "bad", "c"], ["a"], ["bad"], ["c"]]  # shared try, then each on its own
    assert batch[0].stored == {"a"} and batch[2].stored == {"c"}
    assert isinstance(batch[1].error, ValueError) and all(p.done for p in batch)
    with pytest.raises(ValueError):
        group.submit([{"id": "bad"}])


def group_pending(ids: list[str]) -> Any:
    from memrelay.engine.stores.event_log import _Pending

    return _Pending([{"id": i} for i in ids])
