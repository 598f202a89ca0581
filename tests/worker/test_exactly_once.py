"""Exactly once under many workers: fenced event leases, effect + completion + notification in one
transaction, fenced maintenance leases with deadlines, periodic index reconcile, and two ``memrelay worker``
processes with duplicate deliveries and a kill -9 mid-job. On SQLite and PostgreSQL (``backend``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from rq.job import Job
from sqlalchemy import func, select

from memrelay.composition import Services
from memrelay.engine.memory.memories import MemorizeRequest
from memrelay.engine.stores.db.models import InboundEvent, Memory, OutboxEvent, PropertyHistory, Record
from memrelay.engine.stores.event_log import EventLog
from memrelay.engine.stores.identity import Identifiers
from memrelay.engine.stores.properties import Provenance
from memrelay.queue import redis_keys
from memrelay.worker.context import JobContext
from memrelay.worker.jobs.events import process_event
from memrelay.worker.periodic import Lease, LeaseLost, run_round
from memrelay.worker.sweeper import reconcile_round
from tests.gateway.test_webhooks import HUBSPOT_SECRET, hs_event, send_hubspot
from tests.worker.test_worker_runtime import Workers, wait_for

PROV = Provenance(source="test", source_event_id="e1", actor="test")


@pytest.fixture
def two_workers(settings: Any, tmp_path: Path) -> Iterator[Workers]:
    w = Workers(settings, tmp_path)
    yield w
    w.stop_all()



def outbox_count(engine: Services, org_id: str, event_type: str) -> int:
    with engine.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(OutboxEvent).where(
            OutboxEvent.org_id == org_id, OutboxEvent.event_type == event_type)) or 0)


def history_count(engine: Services, org_id: str, name: str | None = None) -> int:
    """Property writes of the org (of property ``name`` when given) in its history."""
    with engine.db.read() as s:
        q = select(func.count()).select_from(PropertyHistory).join(
            Record, Record.id == PropertyHistory.record_id).where(Record.org_id == org_id)
        if name is not None:
            q = q.where(PropertyHistory.name == name)
        return int(s.scalar(q) or 0)


def logged_event(engine: Services, org_id: str, src: dict[str, Any], n: int = 1) -> list[str]:
    ids, _ = engine.events.record(org_id, src["id"], [
        {"connector": "hubspot", "dedup_key": f"k{i}", "event_type": "contact.propertyChange", "payload": {}}
        for i in range(n)])
    return ids


def test_a_stale_lease_holder_cannot_complete_fail_or_give_back(api, engine, backend):
    src = engine.sources.create(api.org_id, connector="hubspot", secret=HUBSPOT_SECRET)
    (event_id,) = logged_event(engine, api.org_id, src)
    expiring = EventLog(engine.db, lease_s=0)  # every lease is expired at once: the next claim takes over
    stale = expiring.claim(event_id)
    fresh = expiring.claim(event_id)
    assert stale is not None and fresh is not None and (stale.attempts, fresh.attempts) == (1, 2)
    with engine.db.unit_of_work() as s:
        assert not engine.events.complete(s, stale, {"by": "stale"})
    assert engine.events.fail(event_id, "boom", attempt=stale.attempts) == "stale"
    assert not engine.events.give_back(event_id, stale.attempts)
    row = engine.events.get(api.org_id, event_id)
    assert (row.status, row.attempts, row.last_error) == ("processing", 2, None)
    assert outbox_count(engine, api.org_id, "event.processed") == 0
    with engine.db.unit_of_work() as s:
        assert engine.events.complete(s, fresh, {"by": "fresh"})
    row = engine.events.get(api.org_id, event_id)
    assert (row.status, row.result) == ("processed", {"by": "fresh"})
    assert outbox_count(engine, api.org_id, "event.processed") == 1


def test_effect_completion_and_notification_commit_together_or_not_at_all(api, engine, backend):
    src = engine.sources.create(api.org_id, connector="hubspot", secret=HUBSPOT_SECRET)
    (event_id,) = logged_event(engine, api.org_id, src)
    ev = engine.events.claim(event_id)
    assert ev is not None
    ids = Identifiers(type="contact", email="ann@acme.com")
    with pytest.raises(RuntimeError), engine.db.unit_of_work() as s:  # a crash after effect + completion
        engine.records.upsert(api.org_id, ids, {"job_title": "CTO"}, PROV)
        engine.memories.memorize(api.org_id, MemorizeRequest(content="Moved the stack to Kubernetes.",
                                                             email="ann@acme.com", tags=["t"]))
        assert engine.events.complete(s, ev, {"ok": True})
        raise RuntimeError("killed before commit")
    assert engine.events.get(api.org_id, event_id).status == "processing"
    assert history_count(engine, api.org_id) == 0
    assert outbox_count(engine, api.org_id, "event.processed") == 0
    with engine.db.read() as s:
        assert s.scalar(select(func.count()).select_from(Memory).where(Memory.org_id == api.org_id)) == 0

    with engine.db.unit_of_work() as s:  # the same, committed: all of it is there, and the index follows
        engine.records.upsert(api.org_id, ids, {"job_title": "CTO"}, PROV)
        out = engine.memories.memorize(api.org_id, MemorizeRequest(content="Moved the stack to Kubernetes.",
                                                                   email="ann@acme.com", tags=["t"]))
        assert out["indexState"] == "pending"  # the Milvus write waits for the commit
        assert engine.events.complete(s, ev, {"ok": True})
    assert engine.events.get(api.org_id, event_id).status == "processed"
    assert history_count(engine, api.org_id, "job_title") == 1  # (memorize may add extracted properties)
    assert outbox_count(engine, api.org_id, "event.processed") == 1
    with engine.db.read() as s:
        (mem,) = s.scalars(select(Memory).where(Memory.org_id == api.org_id)).all()
    assert mem.index_state == "indexed"  # pushed to Milvus once the unit of work committed


def test_a_job_whose_lease_was_taken_over_rolls_its_effect_back(api, engine, settings, blocking_hubspot, backend):
    fake, entered, release = blocking_hubspot
    src = engine.sources.create(api.org_id, connector="hubspot", secret=HUBSPOT_SECRET,
                                config={"api_base": fake.url, "access_token": fake.token})
    r = send_hubspot(api.client, src, [hs_event(1, 2, "jobtitle", "Engineer 2", int(time.time() * 1000))])
    assert r.status_code == 202, r.json
    with engine.db.read() as s:
        (event_id,) = s.scalars(select(InboundEvent.id).where(InboundEvent.org_id == api.org_id)).all()
    engine.events.lease_s = 0  # this holder's lease expires at once
    ctx = JobContext(services=engine, redis=redis.Redis.from_url(str(settings.redis_url)))
    outcome: dict[str, Any] = {}
    job = threading.Thread(target=lambda: outcome.update(process_event(ctx, event_id)))
    job.start()
    assert entered.wait(60)  # the stale holder is fetching from HubSpot
    newer = EventLog(engine.db).claim(event_id)  # another worker takes the expired lease over
    assert newer is not None and newer.attempts == 2
    release.set()
    job.join(60)
    assert outcome == {"eventId": event_id, "skipped": "lease lost to a newer attempt"}
    assert history_count(engine, api.org_id) == 0  # its writes were rolled back with the refused completion
    assert outbox_count(engine, api.org_id, "event.processed") == 0
    row = engine.events.get(api.org_id, event_id)
    assert (row.status, row.attempts) == ("processing", 2)


def test_maintenance_leases_are_fenced_released_and_paced(settings):
    conn = redis.Redis.from_url(str(settings.redis_url))
    mine, theirs = Lease(conn, "t-fence", ttl_s=30), Lease(conn, "t-fence", ttl_s=30)
    assert mine.acquire() and not theirs.acquire()
    mine.check()  # still ours: renewed
    conn.delete(redis_keys.lock("t-fence"))  # the lease expired (e.g. this worker was paused past its TTL)
    assert theirs.acquire()
    with pytest.raises(LeaseLost):
        mine.check()
    assert not mine.release()  # compare-and-delete: the other worker's lease stays
    assert conn.exists(redis_keys.lock("t-fence"))
    assert theirs.release() and not conn.exists(redis_keys.lock("t-fence"))

    writes: list[str] = []

    def body(rnd: Any) -> None:
        rnd.guard()
        writes.append("first")
        conn.delete(redis_keys.lock("t-round"))  # lost mid-round ...
        assert Lease(conn, "t-round", ttl_s=30).acquire()  # ... and taken by another worker
        rnd.guard()
        writes.append("second")

    assert run_round(conn, "t-round", every_s=60, deadline_s=5, body=body)
    assert writes == ["first"]  # the write after the lease was lost never happened
    assert conn.exists(redis_keys.lock("t-round"))  # and the other worker's lease was left alone

    conn.delete(redis_keys.lock("t-round"))
    assert not run_round(conn, "t-round", every_s=60, deadline_s=5, body=body)  # paced: once per period
    assert not conn.exists(redis_keys.lock("t-round"))  # released even when the round does not run

    ran: list[bool] = []
    assert run_round(conn, "t-done", every_s=60, deadline_s=5, body=lambda rnd: ran.append(True))
    assert ran == [True] and not conn.exists(redis_keys.lock("t-done"))  # released at the end of the round

    def overrun(rnd: Any) -> None:
        rnd.deadline = time.monotonic() - 1  # past its deadline
        rnd.guard()
        writes.append("late")

    assert run_round(conn, "t-late", every_s=60, deadline_s=5, body=overrun)
    assert "late" not in writes


def test_periodic_reconcile_indexes_a_memory_left_pending(api, engine, settings, backend):
    out = engine.memories.memorize(api.org_id, MemorizeRequest(content="Runs Postgres on bare metal in Porto.",
                                                               email="ops@eta.com", tags=["t"]))
    assert out["indexState"] == "indexed"
    with engine.db.session() as s:  # as after a Milvus write that failed behind its SQL commit
        mem = s.get(Memory, out["memoryIds"][0])
        assert mem is not None
        mem.index_state = "pending"
    engine.vector_index.delete(engine.index.current_collection(), out["memoryIds"])
    conn = redis.Redis.from_url(str(settings.redis_url))
    assert reconcile_round(engine, conn)
    with engine.db.read() as s:
        assert s.get(Memory, out["memoryIds"][0]).index_state == "indexed"
    qvec = engine.embedder.embed(["postgres bare metal"])[0]
    hits = engine.vector_index.search(engine.index.current_collection(), qvec, api.org_id, limit=3)
    assert out["memoryIds"][0] in [h.memory_id for h in hits]
    assert not reconcile_round(engine, conn)  # paced: the next round waits for its period


def test_two_workers_duplicates_and_a_kill_9_mid_job_take_effect_once(api, engine, two_workers, blocking_hubspot,
                                                                       backend):
    fake, entered, release = blocking_hubspot
    src = engine.sources.create(api.org_id, connector="hubspot", secret=HUBSPOT_SECRET,
                                config={"api_base": fake.url, "access_token": fake.token})
    procs = {name: two_workers.start(name) for name in ("w-a", "w-b")}
    now = int(time.time() * 1000)
    events = [hs_event(10 + i, 2, "jobtitle", f"Title {i}", now + i) for i in range(4)]
    events += [hs_event(20 + i, 3, "city", city, now + i) for i, city in enumerate(["Lyon", "Nice"])]
    for _ in range(3):  # every event delivered three times
        assert send_hubspot(api.client, src, events).status_code in (200, 202)
    assert entered.wait(60)  # workers are inside jobs, waiting on HubSpot
    with engine.db.read() as s:
        held = s.scalars(select(InboundEvent).where(InboundEvent.org_id == api.org_id,
                                                    InboundEvent.status == "processing")).all()
    assert 1 <= len(held) <= 2
    conn = redis.Redis.from_url(str(engine.settings.redis_url))
    holder = wait_for(lambda: Job.fetch(held[0].id, connection=conn).worker_name, what="the job's worker")
    procs[holder].kill()  # SIGKILL mid-job
    procs[holder].wait(30)
    release.set()
    survivor = next(n for n in procs if n != holder)

    def all_processed() -> bool:
        return engine.events.counts(api.org_id) == {"processed": len(events)}

    wait_for(all_processed, timeout=120, what="every event processed")
    assert engine.events.get(api.org_id, held[0].id).attempts == 2  # the killed attempt, then the survivor's
    assert Job.fetch(held[0].id, connection=conn).worker_name == survivor
    assert outbox_count(engine, api.org_id, "event.processed") == len(events)  # one notification each
    with engine.db.read() as s:  # each event applied once: one history entry per (property, event)
        keys = set(s.scalars(select(InboundEvent.dedup_key).where(InboundEvent.org_id == api.org_id)))
        writes = s.execute(select(PropertyHistory.name, PropertyHistory.source_event_id).join(
            Record, Record.id == PropertyHistory.record_id).where(
            Record.org_id == api.org_id, PropertyHistory.name.in_(("job_title", "city")))).all()
    assert writes and sorted(writes) == sorted(set(writes)), writes  # (older source times are not written)
    assert {w.source_event_id for w in writes} <= keys
