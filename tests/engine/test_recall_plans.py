"""Scoped recall's one statement (issue 16): the record found by its key and its memory stamp — the count and the
latest ``updated_at`` of its memories — read from ``ix_memories_record`` (org_id, record_id, updated_at) alone, on
SQLite and PostgreSQL. Before 0017 the latest ``updated_at`` walked ``ix_memories_org_updated`` backwards through
every newer memory of the org, a cost that grew with the org instead of the record."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import event, insert

from memrelay.composition import Services
from memrelay.engine.core.util import new_id, utcnow
from memrelay.engine.memory.entity_vectors import STAMP_COLUMNS
from memrelay.engine.memory.recall import RecallRequest
from memrelay.engine.stores.db.models import Memory, Record, RecordKey
from memrelay.engine.stores.identity import _holders_statement


def _org_with_memories(engine: Services, records: int, per_record: int) -> str:
    """``records`` contacts with ``per_record`` memories each; the first record's memories are the oldest."""
    org = engine.tenancy.create_org(f"recall-plans-{uuid.uuid4().hex[:8]}").id
    emb, now = engine.embedder, utcnow()
    ids = [new_id("rec") for _ in range(records)]
    vec = emb.embed(["Prefers email over phone calls."])[0]
    from memrelay.engine.adapters.vector_index import to_blob

    rows = [{"id": new_id("mem"), "org_id": org, "record_id": rid, "entity_type": "contact",
             "text": f"Fact {j} about contact {i}.", "tags": [], "source": "test", "ts": now,
             "created_at": now, "updated_at": now + timedelta(seconds=i * per_record + j), "embedding": to_blob(vec),
             "embedder": emb.name, "seen_count": 1, "provenance": [], "index_state": "pending"}
            for i, rid in enumerate(ids) for j in range(per_record)]
    with engine.db.session() as s:
        from memrelay.engine.memory.index_sync import check_embedder

        check_embedder(s, org, emb)
        s.execute(insert(Record), [{"id": rid, "org_id": org, "entity_type": "contact",
                                    "primary_key": f"email:c{i}@plans.io", "version": 1, "created_at": now,
                                    "updated_at": now} for i, rid in enumerate(ids)])
        s.execute(insert(RecordKey), [{"org_id": org, "record_id": rid, "key_name": "email",
                                       "key_value": f"c{i}@plans.io"} for i, rid in enumerate(ids)])
        s.execute(insert(Memory), rows)
    with engine.db.engine.begin() as c:
        c.exec_driver_sql("ANALYZE")
    return org


def _recall_statement(engine: Services, org: str, email: str) -> tuple[str, Any]:
    """The statement of a scoped recall that reads the memories' stamp (with its parameters)."""
    seen: list[tuple[str, Any]] = []

    def grab(conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        if "stamp_memory" in statement:
            seen.append((statement, params))

    event.listen(engine.db.read_engine, "before_cursor_execute", grab)
    try:
        out = engine.recall.smart_recall(org, RecallRequest(query="How does she like to be contacted?", email=email))
    finally:
        event.remove(engine.db.read_engine, "before_cursor_execute", grab)
    assert out["results"], out
    assert len(seen) == 1
    # the text a warm recall runs on a driver connection (stores/db/driver_select.py) is this one: its plan too
    driver = _holders_statement(False, False, STAMP_COLUMNS)[1]
    assert driver is not None and driver.compiled(engine.db.read_engine.dialect)[0] == seen[0][0]
    return seen[0]


def _plan(engine: Services, statement: str, params: Any) -> str:
    with engine.db.read_engine.connect() as c:
        if engine.db.dialect == "sqlite":
            rows = c.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).all()
        else:
            c.exec_driver_sql("SET enable_seqscan = off")  # a test-sized table: ask which index, not whether
            rows = c.exec_driver_sql("EXPLAIN " + statement, params).all()
    return "\n".join(str(r[-1]) for r in rows)


def test_a_scoped_recall_reads_its_record_memory_stamp_from_the_record_index(backend: str, engine: Services):
    org = _org_with_memories(engine, records=40, per_record=25)
    statement, params = _recall_statement(engine, org, "c0@plans.io")  # the oldest memories of the org
    plan = _plan(engine, statement, params)
    assert "ix_memories_org_updated" not in plan, plan
    if backend == "sqlite":
        # both subqueries on the record's memories: the count and the max, from the covering index alone
        assert plan.count("USING COVERING INDEX ix_memories_record") == 2, plan
    else:
        assert "Seq Scan on memories" not in plan, plan
        # PostgreSQL may read the count through a bitmap of the index or index-only (the choice follows the
        # visibility map, which ANALYZE does not set); either way only the record index is read
        memory_indexes = re.findall(r"(?:Scan(?: Backward)? using|Bitmap Index Scan on) (\w+)(?= on memories|\s)", plan)
        memory_indexes = [name for name in memory_indexes if "memories" in name]
        assert len(memory_indexes) == 2 and set(memory_indexes) == {"ix_memories_record"}, plan
