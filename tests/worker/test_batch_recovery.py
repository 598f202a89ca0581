"""Batch chunks are never lost and take effect once: a chunk whose ``memrelay worker`` is killed mid-chunk is
re-driven (a worker restarted under the same name picks it up), a chunk that keeps failing is retried per the
``batch_chunks`` policy and then recorded as row errors (the run ends ``partial``), and a chunk that already
committed is skipped. Real workers (subprocesses), real Redis, SQLite and PostgreSQL; the LLM that holds the
victim inside its chunk is the local fake OpenAI-compatible server. Waits are bounded polls."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import func, select, update

from memrelay.composition import Services
from memrelay.engine.core.backoff import BATCH_CHUNKS
from memrelay.engine.core.errors import ValidationFailed
from memrelay.engine.core.settings import Settings
from memrelay.engine.memory.batch import BatchMemorizeRequest, PendingChunk
from memrelay.engine.stores.db.models import BatchChunk, Memory, OutboxEvent
from memrelay.queue.connection import queue
from memrelay.queue.jobs import chunk_job_id
from memrelay.worker.main import run_worker
from memrelay.worker.sweeper import redrive_chunks
from tests.support.fake_llm import FakeLLMServer
from tests.support.llm_env import MODEL
from tests.worker.test_worker_runtime import Workers, wait_for

NOTES = {"entityType": "contact", "email": "Email",
         "properties": {"notes": {"sourceField": "Notes", "extractMemories": True}}}
ROW_TEXT = re.compile(r"Row \d+ wants the \d+-seat plan\.")


@pytest.fixture
def workers(settings: Settings, tmp_path: Path) -> Iterator[Workers]:
    w = Workers(settings, tmp_path)
    yield w
    w.stop_all()


def facts_from(messages: list[dict[str, Any]]) -> str:
    """The fake LLM's extraction: one fact per row text found in the prompt."""
    found = ROW_TEXT.findall(json.dumps(messages))
    return json.dumps({"facts": [f"{found[-1]} (confirmed)"] if found else [], "properties": [],
                       "quality": {"coreference": 1, "selfContainment": 1, "temporalAnchoring": 1}})


def status_of(api: Any, run_id: str) -> dict[str, Any]:
    return dict(api.get(f"/api/v1/batch-memorize/{run_id}").json["data"])


def test_a_chunk_whose_worker_is_killed_is_redriven_once_by_a_worker_restarted_under_the_same_name(
        api: Any, engine: Services, workers: Workers, backend: str) -> None:
    entered, release = threading.Event(), threading.Event()

    def hold(_payload: dict[str, Any]) -> None:
        entered.set()
        release.wait(60)

    with FakeLLMServer() as llm:
        llm.responder = facts_from
        llm.script(hold)  # the first extraction waits until the test lets go
        env = {"MEMRELAY_LLM_MODEL": MODEL, "MEMRELAY_LLM_API_BASE": llm.base_url, "MEMRELAY_LLM_API_KEY": "test",
               "MEMRELAY_LLM_MAX_RETRIES": "2", "MEMRELAY_LLM_TIMEOUT_S": "60"}
        victim = workers.start("w-batch", env=env)
        rows = [{"Email": f"row{i}@batch.example", "Notes": f"Row {i} wants the {i + 2}-seat plan."}
                for i in range(3)]
        r = api.post("/api/v1/batch-memorize", json={"source": "csv", "mapping": NOTES, "rows": rows,
                                                     "chunkSize": 1})
        assert r.status_code == 202, r.json
        run_id = r.json["data"]["runId"]
        assert entered.wait(90), workers.log("w-batch")  # the victim is inside chunk 0
        victim.kill()  # SIGKILL: no cleanup, its registration stays in Redis
        victim.wait(30)
        release.set()

        workers.start("w-batch", env=env)  # the same name at once, although the dead one is still registered
        final = wait_for(lambda: (st := status_of(api, run_id))["status"] not in ("queued", "running") and st,
                         timeout=120, what="the batch run to finish")

    assert final["status"] == "completed" and final["errorCount"] == 0, (final, workers.log("w-batch"))
    assert final["progress"]["chunksDone"] == 3 and final["totals"]["memoriesCreated"] == 3
    with engine.db.read() as s:
        attempts = dict(s.execute(select(BatchChunk.chunk_index, BatchChunk.attempts)
                                  .where(BatchChunk.run_id == run_id)).all())
        texts = sorted(s.scalars(select(Memory.text).where(Memory.org_id == api.org_id)))
        completed = s.scalar(select(func.count()).select_from(OutboxEvent).where(
            OutboxEvent.org_id == api.org_id, OutboxEvent.event_type == "batch.completed"))
    assert attempts[0] == 2 and attempts[1] == attempts[2] == 1, attempts  # the killed attempt, then one more
    assert texts == [f"Row {i} wants the {i + 2}-seat plan. (confirmed)" for i in range(3)]  # once each
    assert completed == 1


def _request(rows: int, chunk_size: int) -> BatchMemorizeRequest:
    mapping = {"entityType": "contact", "email": "Email", "properties": {
        "job_title": {"sourceField": "Title", "collectionName": "Contact"},
        "notes": {"sourceField": "Notes", "extractMemories": True}}}
    return BatchMemorizeRequest.model_validate({"source": "csv", "mapping": mapping, "chunkSize": chunk_size, "rows": [
        {"Email": f"p{i}@retry.example", "Title": f"Engineer {i}", "Notes": f"P{i} asked about invoices {i}."}
        for i in range(rows)]})


def _contact_collection(api: Any) -> str:
    cols = api.get("/api/v1/collections").json["data"]["collections"]
    return str(next(c["collectionId"] for c in cols if c["collectionName"] == "Contact"))


def test_a_failing_chunk_is_retried_then_its_rows_fail_and_a_done_chunk_is_skipped(
        api: Any, engine: Services, backend: str) -> None:
    batches = engine.batches
    run = batches.create_run(api.org_id, _request(4, 2))
    first = batches.process_chunk(run.run_id, api.org_id, 0)
    assert first["memoriesCreated"] == 2
    assert batches.process_chunk(run.run_id, api.org_id, 0) == {"runId": run.run_id, "chunk": 0, "skipped": True}

    engine.collections.archive(api.org_id, _contact_collection(api))  # from now on chunk 1 cannot be written
    for attempt in range(1, BATCH_CHUNKS.max_attempts + 1):
        with pytest.raises(ValidationFailed):
            batches.process_chunk(run.run_id, api.org_id, 1)
        (pending,) = [c for c in batches.pending_chunks() if c.run_id == run.run_id] or [None]
        if attempt < BATCH_CHUNKS.max_attempts:  # waiting for its retry, per the policy's schedule
            assert pending is not None and (pending.status, pending.attempts) == ("queued", attempt)
            wait = timedelta(seconds=BATCH_CHUNKS.backoff(attempt))
            assert not pending.due(pending.updated_at + wait - timedelta(seconds=1), stale_after_s=30)
            assert pending.due(pending.updated_at + wait, stale_after_s=30)
        else:
            assert pending is None

    st = batches.status(api.org_id, run.run_id)
    assert st["status"] == "partial" and st["errorCount"] == 2 and st["progress"]["chunksDone"] == 2, st
    assert [e["row"] for e in st["errors"]] == [2, 3]
    assert all("chunk failed after 3 attempt(s): ValidationFailed" in e["error"] for e in st["errors"])
    with engine.db.read() as s:
        assert s.scalar(select(func.count()).select_from(Memory).where(Memory.org_id == api.org_id)) == 2


@pytest.mark.own_database  # redrive_chunks counts every org's due chunks
def test_the_sweeper_redrives_a_dead_workers_chunk_and_gives_up_once_attempts_ran_out(
        api: Any, engine: Services, settings: Settings, backend: str) -> None:
    conn = redis.Redis.from_url(str(settings.redis_url))
    batches = engine.batches
    lost = batches.create_run(api.org_id, _request(2, 2))  # its job never reached Redis
    dead = batches.create_run(api.org_id, _request(2, 2))  # its worker died, for the last time
    with engine.db.session() as s:
        s.execute(update(BatchChunk).where(BatchChunk.run_id == lost.run_id).values(status="running", attempts=1))
        s.execute(update(BatchChunk).where(BatchChunk.run_id == dead.run_id)
                  .values(status="running", attempts=BATCH_CHUNKS.max_attempts))

    mine = [c for c in batches.pending_chunks() if c.run_id in (lost.run_id, dead.run_id)]
    assert all(isinstance(c, PendingChunk) and c.due(c.updated_at, stale_after_s=30) for c in mine)
    assert redrive_chunks(engine, conn) == (1, 1)
    assert chunk_job_id(lost.run_id, 0) in queue(conn, "memorize").job_ids
    assert redrive_chunks(engine, conn) == (0, 0)  # its job is waiting: nothing more to do

    given_up = batches.status(api.org_id, dead.run_id)
    assert given_up["status"] == "failed" and given_up["errorCount"] == 2
    assert "its worker stopped before finishing it" in given_up["errors"][0]["error"]

    run_worker(settings, burst=True)
    redriven = batches.status(api.org_id, lost.run_id)
    assert redriven["status"] == "completed" and redriven["errorCount"] == 0, redriven
    assert redriven["totals"]["memoriesCreated"] == 2
