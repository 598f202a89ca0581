"""Memorize: extraction, dedup, fresh-fact precedence, edits/deletes, the embedder guard and crash recovery."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from memrelay.composition import Services
from memrelay.engine.core.errors import NotFound
from memrelay.engine.memory.memories import MemorizeRequest
from memrelay.engine.stores.db.database import Database
from memrelay.engine.stores.db.models import IndexMeta, IndexTombstone, Memory
from memrelay.engine.stores.identity import Identifiers
from memrelay.engine.stores.outbox import recent
from memrelay.engine.stores.properties import Provenance

ROOT = Path(__file__).resolve().parents[2]


def memorize(api: Any, content: str, *, status: int = 200, **fields: Any) -> dict[str, Any]:
    body = {"content": content, "tags": ["test"], **fields}
    r = api.post("/api/v1/memorize", json=body)
    assert r.status_code == status and r.json["success"] is (status < 400), r.json
    return r.json["data"] if status < 400 else r.json


def recall(api: Any, query: str, **fields: Any) -> dict[str, Any]:
    r = api.post("/api/v1/smart-recall", json={"query": query, **fields})
    assert r.status_code == 200 and r.json["success"] is True, r.json
    return r.json["data"]


def memories_of(engine: Any, record_id: str, **kw: Any) -> list[dict[str, Any]]:
    with engine.db.read() as s:
        return engine.memories.list_for_record(s, record_id, **kw)


def test_memorize_needs_an_identifier_and_tags_are_optional(api):
    r = api.post("/api/v1/memorize", json={"content": "Jane likes tea.", "email": "jane@acme.com", "tags": []})
    assert r.status_code == 200, r.json  # tags are optional in Personize's SDK (MemorizeProOptions.tags?)
    r = api.post("/api/v1/memorize", json={"content": "Jane likes tea.", "tags": ["x"]})
    assert r.status_code == 400 and r.json["error"]["details"]["accepted"]


def test_memorize_creates_facts_properties_and_reports_timings(api, engine):
    out = memorize(api, "Jane Doe works at Acme. Her title is Head of Growth. She joined us at a webinar yesterday.",
                   email="Jane@Acme.com", timestamp="2026-03-10T10:00:00Z", speaker="sdr@us.com")
    assert out["type"] == "contact" and out["memoriesCreated"] == 3 and out["duplicatesSkipped"] == 0
    assert set(out["timings"]) == {"resolve", "extract", "embed", "store", "index"}
    assert {"name": "job_title", "value": "Head of Growth"}.items() <= out["propertiesExtracted"][0].items()
    texts = [m["text"] for m in memories_of(engine, out["recordId"])]
    assert any("on March 9, 2026" in t for t in texts), texts  # relative date anchored to the timestamp
    rec = api.post("/api/v1/smart-recall", json={"query": "job title", "email": "jane@acme.com"}).json["data"]
    assert rec["results"][0]["recordId"] == out["recordId"]
    # the property went through write_properties with memorize provenance and confidence
    props = engine.records.get(api.org_id, Identifiers(email="jane@acme.com"))["properties"]
    assert props["job_title"]["source"] == "memorize" and 0 < props["job_title"]["confidence"] <= 1
    with engine.db.read() as s:
        events = [e["type"] for e in recent(s, api.org_id, limit=20)]
    assert events.count("memory.updated") == 3


def test_website_only_defaults_to_company_and_max_properties_is_respected(api):
    out = memorize(api, "Acme has 250 employees. Acme is in the fintech industry.", website_url="https://www.acme.io",
                   max_properties=1)
    assert out["type"] == "company" and len(out["propertiesExtracted"]) <= 1
    none = memorize(api, "Acme has 300 employees.", website_url="acme.io", max_properties=0)
    assert none["recordId"] == out["recordId"] and none["propertiesExtracted"] == []


def test_near_verbatim_duplicates_merge_but_different_amounts_never_do(api, engine, backend):
    first = memorize(api, "Deal value: $250,000", email="cfo@beta.com", timestamp="2026-01-01T00:00:00Z",
                     source="crm")
    again = memorize(api, "Deal value: $250,000", email="cfo@beta.com", timestamp="2026-01-02T00:00:00Z",
                     source="call")
    assert again["memoriesCreated"] == 0 and again["duplicatesSkipped"] == 1
    assert again["duplicateOf"] == first["memoryIds"]
    bigger = memorize(api, "Deal value: $1,000,000", email="cfo@beta.com", timestamp="2026-02-01T00:00:00Z")
    assert bigger["memoriesCreated"] == 1 and bigger["duplicatesSkipped"] == 0
    assert bigger["superseded"] == first["memoryIds"]  # newer amount wins
    mems = {m["memoryId"]: m for m in memories_of(engine, first["recordId"], include_superseded=True)}
    old = mems[first["memoryIds"][0]]
    assert old["seenCount"] == 2 and [p["source"] for p in old["provenance"]] == ["crm", "call"]
    assert old["supersededBy"] == bigger["memoryIds"][0]


def test_dedup_is_scoped_to_one_entity(api):
    a = memorize(api, "Prefers a demo on Tuesdays.", email="a@gamma.com")
    b = memorize(api, "Prefers a demo on Tuesdays.", email="b@gamma.com")
    assert a["memoriesCreated"] == b["memoriesCreated"] == 1 and a["recordId"] != b["recordId"]


def test_fresh_fact_wins_in_either_ingestion_order(api, backend):
    stale, fresh = "Acme uses MySQL as their main database.", "Acme moved to PostgreSQL as their main database."
    for site, order in (("acme-a.com", (stale, fresh)), ("acme-b.com", (fresh, stale))):
        ts = {stale: "2025-01-15T00:00:00Z", fresh: "2025-06-15T00:00:00Z"}
        outs = {text: memorize(api, text, website_url=site, timestamp=ts[text]) for text in order}
        stale_id, fresh_id = outs[stale]["memoryIds"][0], outs[fresh]["memoryIds"][0]
        assert stale_id in outs[order[1]]["superseded"]  # whichever came second reports the supersession
        res = recall(api, "Which database does Acme use?", website_url=site)
        assert res["results"][0]["memoryId"] == fresh_id
        assert stale_id not in [r["memoryId"] for r in res["results"]]
        shown = recall(api, "Which database does Acme use?", website_url=site, include_superseded=True)
        old = next(r for r in shown["results"] if r["memoryId"] == stale_id)
        assert old["superseded"] is True and old["supersededBy"] == fresh_id


def test_update_text_and_delete_keep_index_in_step(api, engine, backend):
    out = memorize(api, "Loves sailing in Croatia every summer.", email="kim@delta.com")
    mid = out["memoryIds"][0]
    assert recall(api, "sailing holidays")["results"][0]["memoryId"] == mid
    updated = engine.memories.update_text(api.org_id, mid, "Loves skiing in the Alps every winter.",
                                          Provenance(source="api", actor="tester"))
    assert updated["topic"] is None and updated["provenance"][-1]["actor"] == "tester"
    top = recall(api, "skiing in the mountains")["results"][0]
    assert top["memoryId"] == mid and "skiing" in top["text"]
    with engine.db.read() as s:
        assert s.get(Memory, mid).index_state == "indexed"
    res = engine.memories.delete(api.org_id, ids=Identifiers(email="kim@delta.com"))
    assert (res["deleted"], res["memoryIds"], res["recoverable"]) == (1, [mid], True)  # a soft delete
    assert recall(api, "skiing in the mountains")["results"] == []
    hits = engine.vector_index.search(engine.index.current_collection(), engine.embedder.embed(["skiing"])[0], api.org_id,
                                      limit=10)
    assert hits == []
    with engine.db.read() as s:
        assert s.scalar(select(IndexTombstone.id).where(IndexTombstone.org_id == api.org_id)) is None
        assert recent(s, api.org_id, event_type="memory.deleted")[0]["data"]["memoryIds"] == [mid]


def test_changed_embedder_requires_reindex(api, engine):
    memorize(api, "Uses Slack for everything.", email="x@eps.com")
    with engine.db.session() as s:
        s.execute(update(IndexMeta).where(IndexMeta.org_id == api.org_id).values(embedder="minilm:all-MiniLM-L6-v2",
                                                                                   dim=384))
    r = api.post("/api/v1/memorize", json={"content": "Uses Teams now.", "email": "x@eps.com", "tags": ["t"]})
    assert r.status_code == 503 and r.json["error"]["code"] == "reindex_required"
    assert "memrelay reindex" in r.json["error"]["message"]
    r = api.post("/api/v1/smart-recall", json={"query": "chat tool"})
    assert r.status_code == 503 and r.json["error"]["code"] == "reindex_required"


CRASHING_MEMORIZE = textwrap.dedent("""
    import json, os, sys
    import memrelay.engine.memory.index_sync as index_sync
    from memrelay.composition import Services
    from memrelay.engine.memory.memories import MemorizeRequest
    from memrelay.engine.core.settings import Settings

    def crash(*_a, **_k):  # the process dies after the SQL commit, before any Milvus write
        os._exit(17)

    index_sync.MemoryIndex.index_memories = crash
    cfg = json.loads(sys.argv[1])
    engine = Services(Settings(database_url=cfg["db"], milvus_uri=cfg["milvus"], data_dir=cfg["data"]))
    engine.memories.memorize(cfg["org"], MemorizeRequest.model_validate(cfg["body"]))
    os._exit(0)
""")


def test_crash_between_sql_commit_and_milvus_write_is_reconciled(api, engine, settings, backend):
    cfg = {"db": settings.sql_url, "milvus": settings.milvus_target, "data": str(settings.data_dir),
           "org": api.org_id, "body": {"content": "Runs a kubernetes cluster on bare metal in Lisbon.",
                                        "email": "ops@zeta.com", "tags": ["crash"]}}
    proc = subprocess.run([sys.executable, "-c", CRASHING_MEMORIZE, json.dumps(cfg)], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, timeout=120)
    assert proc.returncode == 17, proc.stderr.decode()[-2000:]
    with engine.db.read() as s:
        pending = s.scalars(select(Memory).where(Memory.org_id == api.org_id)).all()
    assert len(pending) == 1 and pending[0].index_state == "pending"
    qvec = engine.embedder.embed(["kubernetes cluster"])[0]

    def in_milvus() -> list[str]:
        return [h.memory_id for h in engine.vector_index.search(engine.index.current_collection(), qvec, api.org_id,
                                                                 limit=5)]

    assert in_milvus() == []  # committed in SQL, never reached Milvus
    # recall serves from the source of truth meanwhile (small orgs are scored exactly in process)
    assert [r["memoryId"] for r in recall(api, "kubernetes cluster")["results"]] == [pending[0].id]
    assert engine.index.reconcile() == {"indexed": 1, "tombstones": 0}
    assert in_milvus() == [pending[0].id]
    assert engine.index.reconcile() == {"indexed": 0, "tombstones": 0}


def test_memorize_succeeds_when_milvus_is_down_and_reconcile_catches_up(api, engine, settings):
    down = Services(settings.model_copy(update={"milvus_uri": "http://127.0.0.1:9"}), db=Database(settings.sql_url))
    try:
        out = down.memories.memorize(api.org_id, MemorizeRequest(content="Budget owner is the COO.",
                                                                 email="coo@xi.com", tags=["t"]))
    finally:
        down.close()
    assert out["memoriesCreated"] == 1 and out["indexState"] == "pending"
    assert recall(api, "budget owner", email="coo@xi.com")["results"]  # scoped recall reads SQL: served
    assert engine.index.reconcile()["indexed"] == 1
    assert recall(api, "budget owner")["results"][0]["memoryId"] == out["memoryIds"][0]
    qvec = engine.embedder.embed(["budget owner"])[0]
    hits = engine.vector_index.search(engine.index.current_collection(), qvec, api.org_id, limit=3)
    assert [h.memory_id for h in hits][:1] == out["memoryIds"]


def test_memories_of_another_org_cannot_be_deleted(api, other_api, engine):
    mid = memorize(api, "Signed the MSA in Berlin.", email="legal@pi.com")["memoryIds"][0]
    with pytest.raises(NotFound):
        engine.memories.delete(other_api.org_id, memory_ids=[mid])
    assert engine.memories.delete(api.org_id, memory_ids=[mid])["memoryIds"] == [mid]
