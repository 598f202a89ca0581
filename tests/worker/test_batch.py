"""Batch memorize through the API and real RQ jobs: chunks, per-row errors, totals, dry runs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from memrelay.engine.stores.db.models import BatchRun, Memory, Record
from memrelay.engine.stores.identity import Identifiers
from memrelay.engine.stores.outbox import recent
from memrelay.worker.main import run_worker

MAPPING = {
    "entityType": "contact",
    "email": "Email",
    "customKeyName": "crm_id",
    "customKey": "Id",
    "timestamp": "UpdatedAt",
    "runName": "spring import",
    "properties": {
        "job_title": {"sourceField": "Title", "collectionName": "Contact"},
        "lifecycle_stage": {"sourceField": "Stage"},
        "notes": {"sourceField": "Notes", "extractMemories": True},
    },
}


def rows(n: int) -> list[dict[str, Any]]:
    out = [{"Id": f"c{i}", "Email": f"person{i}@corp{i % 7}.com", "Title": f"Engineer {i}", "Stage": "lead",
            "UpdatedAt": "2026-01-05T00:00:00Z", "Notes": f"Person {i} asked about the {i % 5}-seat plan."}
           for i in range(n)]
    if n > 5:
        out[3]["Stage"] = "not-a-stage"  # invalid option -> row error
        out[5] = {"Title": "no identifier"}  # no identifier -> row error
    return out


def run_jobs(engine: Any, settings: Any) -> None:
    """The production worker start-up (``run_worker``, building its own services as ``memrelay worker`` does), in burst
    mode."""
    run_worker(settings, burst=True)


def test_batch_memorize_runs_chunks_as_jobs(api, engine, settings, backend):
    r = api.post("/api/v1/batch-memorize", json={"source": "hubspot", "mapping": MAPPING, "rows": rows(25),
                                                  "chunkSize": 10})
    assert r.status_code == 202, r.json
    run_id = r.json["data"]["runId"]
    assert r.json["data"]["chunks"] == 3
    queued = api.get(f"/api/v1/batch-memorize/{run_id}").json["data"]
    assert queued["status"] == "queued" and queued["progress"]["chunksDone"] == 0
    run_jobs(engine, settings)
    st = api.get(f"/api/v1/batch-memorize/{run_id}").json["data"]
    assert st["status"] == "completed" and st["errorCount"] == 2 and st["name"] == "spring import"
    assert st["progress"] == {"totalRows": 25, "processedRows": 25, "chunksTotal": 3, "chunksDone": 3,
                              "percent": 100.0}
    assert [e["row"] for e in st["errors"]] == [3, 5] and "not an allowed option" in st["errors"][0]["error"]
    assert st["totals"]["recordsCreated"] == 23 and st["totals"]["memoriesCreated"] == 23
    assert st["totals"]["propertiesWritten"] == 23 * 2
    rec = engine.records.get(api.org_id, Identifiers(customKeys={"crm_id": "c7"}, type="contact"))
    assert rec["properties"]["job_title"]["value"] == "Engineer 7"
    assert rec["properties"]["job_title"]["sourceTimestamp"] == "2026-01-05T00:00:00Z"
    found = api.post("/api/v1/smart-recall", json={"query": "seat plan", "email": "person7@corp0.com"}).json["data"]
    assert found["results"][0]["text"] == "Person 7 asked about the 2-seat plan."
    assert "hubspot" in found["results"][0]["tags"]
    with engine.db.read() as s:
        assert s.scalar(select(func.count()).select_from(Memory).where(Memory.org_id == api.org_id,
                                                                        Memory.index_state == "pending")) == 0
        done = recent(s, api.org_id, event_type="batch.completed")
    assert done[0]["data"]["runId"] == run_id


def test_rerunning_a_batch_updates_and_dedups(api, engine, settings):
    body = {"mapping": MAPPING, "rows": rows(8), "chunkSize": 4}
    api.post("/api/v1/batch-memorize", json=body)
    run_jobs(engine, settings)
    second = api.post("/api/v1/batch-memorize", json=body).json["data"]["runId"]
    run_jobs(engine, settings)
    totals = api.get(f"/api/v1/batch-memorize/{second}").json["data"]["totals"]
    assert totals["recordsCreated"] == 0 and totals["recordsUpdated"] == 6
    assert totals["memoriesCreated"] == 0 and totals["duplicatesSkipped"] == 6


def test_dry_run_validates_and_writes_nothing(api, engine):
    r = api.post("/api/v1/batch-memorize", json={"mapping": MAPPING, "rows": rows(10), "dryRun": True})
    assert r.status_code == 200
    assert r.json["data"]["validRows"] == 8 and r.json["data"]["errorCount"] == 2
    assert r.json["data"]["wouldWrite"] == {"recordsCreated": 8, "recordsUpdated": 0, "propertyValues": 16, "memories": 8}
    with engine.db.read() as s:
        assert s.scalar(select(func.count()).select_from(Record).where(Record.org_id == api.org_id)) == 0
        assert s.scalar(select(func.count()).select_from(BatchRun).where(BatchRun.org_id == api.org_id)) == 0


def test_bad_mapping_is_rejected_up_front(api):
    bad = {**MAPPING, "properties": {"shoe_size": {"sourceField": "Shoe"}}}
    r = api.post("/api/v1/batch-memorize", json={"mapping": bad, "rows": rows(2)})
    assert r.status_code == 422 and r.json["error"]["details"]["unknown"] == ["shoe_size"]
    r = api.post("/api/v1/batch-memorize", json={"mapping": {"entityType": "contact"}, "rows": rows(2)})
    assert r.status_code == 422 and "identifier" in r.json["error"]["message"]


def test_runs_are_private_to_their_org(api, other_api):
    run_id = api.post("/api/v1/batch-memorize", json={"mapping": MAPPING, "rows": rows(2)}).json["data"]["runId"]
    assert other_api.get(f"/api/v1/batch-memorize/{run_id}").status_code == 404


def test_extract_memories_fields_go_through_the_llm_extractor(settings: Any) -> None:
    """With a model configured, extractMemories text becomes LLM facts and autoSystem property values."""
    from memrelay.composition import Services
    from memrelay.gateway.app import create_app
    from tests.conftest import make_api
    from tests.support.fake_llm import FakeLLMServer
    from tests.support.llm_env import with_llm

    with FakeLLMServer() as llm:
        eng = Services(with_llm(settings, llm))
        try:
            api = make_api(create_app(eng.settings, services=eng), eng)
            llm.reply_json({"facts": ["Ada Byron is evaluating the 20-seat plan for Q3 2026."],
                            "properties": [{"name": "city", "value": "London", "confidence": 0.9}],
                            "quality": {"coreference": 1, "selfContainment": 1, "temporalAnchoring": 1}}, times=5)
            mapping = {"entityType": "contact", "email": "Email", "properties": {
                "first_name": {"sourceField": "Name"}, "notes": {"sourceField": "Notes", "extractMemories": True}}}
            r = api.post("/api/v1/batch-memorize", json={"source": "csv", "mapping": mapping, "rows": [
                {"Email": "ada@byron.io", "Name": "Ada", "Notes": "She's looking at the 20 seat plan next quarter."}]})
            assert r.status_code == 202, r.json
            run_jobs(eng, eng.settings)
            st = api.get(f"/api/v1/batch-memorize/{r.json['data']['runId']}").json["data"]
            assert st["status"] == "completed" and st["errorCount"] == 0, st
            rec = api.post("/api/v1/recall", json={"type": "contact", "email": "ada@byron.io"}).json["data"]
            assert [m["text"] for m in rec["freeformMemories"]] == ["Ada Byron is evaluating the 20-seat plan for Q3 2026."]
            assert rec["properties"]["city"]["value"] == "London" and rec["properties"]["first_name"]["value"] == "Ada"
            assert len(llm.chat_requests) == 1 and "20 seat plan" in llm.chat_requests[0].messages[-1]["content"]
        finally:
            eng.close()
