"""Whole-collection enrichment over HTTP: ``POST /api/v1/enrichment/runs`` over 1,000 companies created with
the bulk write path, chunks run by the real worker, progress and cost on ``GET /runs/<id>``, outbox events per
changed value, a failed chunk resumed, the offline path's unknowns, the CLI's progress run; an inferred value
cleared once the memory it rested on is deleted (a human one untouched), and inferred attributes in the
context /prompt sends the model."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from memrelay.composition import Services
from memrelay.engine.core.settings import Settings
from memrelay.engine.memory.memories import MemorizeRequest
from memrelay.engine.stores.identity import Identifiers
from memrelay.engine.stores.outbox import recent
from memrelay.engine.stores.properties import Provenance
from memrelay.queue.connection import connect
from memrelay.worker.jobs.enrich import enqueue_once
from tests.engine.test_enrichment import COMPANY_TYPE, declare
from tests.engine.test_enrichment_llm import classify
from tests.support.fake_llm import FakeLLMServer
from tests.support.llm_env import MODEL, with_llm

RUNS = "/api/v1/enrichment/runs"
BODY = {"collection": "company", "property": "company_type"}


@pytest.fixture
def llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(responder=classify) as server:
        yield server


@pytest.fixture
def settings(settings: Settings, llm: FakeLLMServer) -> Settings:
    return with_llm(settings, llm)


def bulk_companies(engine: Services, org_id: str, n: int) -> None:
    """``n`` companies in one bulk write: even ones sell to businesses, odd ones to consumers, every tenth
    says nothing about it."""
    def describe(i: int) -> str:
        if i % 10 == 9:
            return f"Founded in {1990 + i % 30}."
        return "Invoicing SaaS for businesses." if i % 2 == 0 else "Meal kits delivered to households."
    items = [(Identifiers(type="company", website_url=f"co{i}.example"), {"description": describe(i)},
              Provenance(source="crm")) for i in range(n)]
    results = engine.records.upsert_many(org_id, items)
    assert not [r for r in results if isinstance(r, Exception)]


def test_b2b_b2c_for_1000_companies_in_one_run(api: Any, engine: Services, run_jobs: Any,
                                               llm: FakeLLMServer) -> None:
    declare(engine, api.org_id)
    bulk_companies(engine, api.org_id, 1000)

    dry = api.post(RUNS, json={**BODY, "dryRun": True})
    assert dry.status_code == 200 and dry.json["data"]["total"] == 1000 and dry.json["data"]["estimateUsd"] > 0
    started = api.post(RUNS, json={**BODY, "chunkSize": 250})
    assert started.status_code == 202, started.json
    run = started.json["data"]
    assert (run["status"], run["total"], run["processed"], run["progress"]) == ("queued", 1000, 0, 0.0)
    assert run["chunks"] == {"total": 4, "done": 0, "failed": 0} and run["estimateUsd"] > 0

    run_jobs()

    status = api.get(f"{RUNS}/{run['runId']}").json["data"]
    assert status["status"] == "completed" and status["processed"] == 1000 and status["progress"] == 1.0
    assert status["counts"] == {"changed": 900, "unchanged": 0, "unknown": 100, "cleared": 0, "kept_human": 0}
    assert status["costUsd"] > 0 and len(llm.chat_requests) == 100  # 10 records per structured call
    for label, expected in (("B2B", 500), ("B2C", 400)):  # co9, co19 … (odd) said nothing
        search = api.post("/api/v1/search", json={"type": "company", "pageSize": 1, "groups": [
            {"conditions": [{"property": "company_type", "operator": "EQ", "value": label}]}]})
        assert search.json["data"]["totalMatched"] == expected
    with engine.db.read() as s:
        events = [e for e in recent(s, api.org_id, event_type="memory.property.updated", limit=2000)
                  if e["data"].get("inferred")]
    assert len(events) == 900 and {e["data"]["sourceEventId"] for e in events} == {run["runId"]}

    again = api.post(RUNS, json=BODY).json["data"]  # nothing changed: a second run changes nothing
    run_jobs()
    assert api.get(f"{RUNS}/{again['runId']}").json["data"]["counts"]["unchanged"] == 900


def test_failed_chunk_is_recorded_and_resumed(api: Any, engine: Services, run_jobs: Any,
                                              llm: FakeLLMServer) -> None:
    declare(engine, api.org_id)
    bulk_companies(engine, api.org_id, 40)
    llm.fail(400, times=1)  # the first structured call is rejected (not retried): its chunk fails
    run = api.post(RUNS, json={**BODY, "chunkSize": 10}).json["data"]
    run_jobs()
    failed = api.get(f"{RUNS}/{run['runId']}").json["data"]
    assert failed["status"] == "failed" and failed["chunks"] == {"total": 4, "done": 3, "failed": 1}
    assert failed["processed"] == 30 and failed["error"]

    resumed = api.post(f"{RUNS}/{run['runId']}/resume")
    assert resumed.status_code == 202 and resumed.json["data"]["resumedChunks"] == [0]
    run_jobs()
    done = api.get(f"{RUNS}/{run['runId']}").json["data"]
    assert done["status"] == "completed" and done["processed"] == 40 and done["chunks"]["failed"] == 0


def test_offline_run_and_bad_requests(api: Any, other_api: Any, engine: Services, run_jobs: Any) -> None:
    declare(engine, api.org_id)
    bulk_companies(engine, api.org_id, 20)
    run = api.post(RUNS, json={**BODY, "mode": "offline"}).json["data"]
    run_jobs()
    status = api.get(f"{RUNS}/{run['runId']}").json["data"]
    assert status["mode"] == "offline" and status["costUsd"] == 0
    assert status["counts"] == {"changed": 18, "unchanged": 0, "unknown": 2, "cleared": 0, "kept_human": 0}
    assert other_api.get(f"{RUNS}/{run['runId']}").status_code == 404  # another org's run
    assert api.post(RUNS, json={**BODY, "property": "industry"}).status_code == 422  # not inferred
    assert api.post(RUNS, json={"collection": "company"}).status_code in (400, 422)
    assert api.post(RUNS, json={**BODY, "mode": "psychic"}).status_code in (400, 422)
    assert api.get("/api/v1/enrichment/stale").json["data"] == {"properties": {}}


def test_cli_enrich_shows_progress_and_totals(api: Any, engine: Services, settings: Settings,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from memrelay.cli.main import cli

    org = engine.tenancy.get_or_create_org(f"enrich-cli-{uuid.uuid4().hex[:8]}")
    declare(engine, org.id)
    bulk_companies(engine, org.id, 30)
    engine.records.upsert(org.id, Identifiers(type="company", website_url="co0.example"), {"company_type": "B2C"},
                          Provenance(source="api"))
    for name, value in {"MEMRELAY_DATA_DIR": str(settings.data_dir), "MEMRELAY_DATABASE_URL": settings.database_url,
                        "MEMRELAY_REDIS_URL": settings.redis_url, "MEMRELAY_MILVUS_URI": settings.milvus_uri}.items():
        monkeypatch.setenv(name, str(value))
    result = CliRunner().invoke(cli, ["enrich", "--org", org.name, "--collection", "company", "--property",
                                      "company_type", "--mode", "offline", "--chunk-size", "7"])
    assert result.exit_code == 0, result.output
    assert "30/30" in result.output and '"status": "completed"' in result.output
    assert '"kept_human": 1' in result.output and '"unknown": 3' in result.output
    assert COMPANY_TYPE["propertyName"] in result.output


@pytest.mark.settings(enrichment_debounce_s=0.0)  # due at once, so the burst worker refreshes it
def test_deleted_evidence_clears_the_inferred_value_never_a_human_one(api: Any, engine: Services, run_jobs: Any,
                                                                      llm: FakeLLMServer) -> None:
    declare(engine, api.org_id)
    said: dict[str, str] = {}
    for site in ("quiet.example", "owned.example", "steady.example"):
        engine.records.upsert(api.org_id, Identifiers(type="company", website_url=site), {},
                              Provenance(source="crm"))
        said[site] = engine.memories.memorize(api.org_id, MemorizeRequest.model_validate(
            {"type": "company", "website_url": site, "verbatim": True,
             "content": "Their app sells meal kits to households."}))["memoryIds"][0]
    engine.records.upsert(api.org_id, Identifiers(type="company", website_url="steady.example"),
                          {"description": "Kitchen gadgets for shoppers."}, Provenance(source="crm"))
    engine.records.upsert(api.org_id, Identifiers(type="company", website_url="owned.example"),
                          {"company_type": "B2C"}, Provenance(source="api", actor="ana@sales"))
    run = api.post(RUNS, json=BODY).json["data"]
    run_jobs()
    assert api.get(f"{RUNS}/{run['runId']}").json["data"]["counts"]["changed"] == 2
    engine.enrichment.sweep(api.org_id)  # settle the feed so far

    for site in said:  # the evidence goes away (the steady one still has its description)
        deleted = api.post("/api/v1/memory/delete", json={"memoryIds": [said[site]]})
        assert deleted.status_code == 200 and deleted.json["data"]["deleted"] == 1
    assert enqueue_once(connect(engine.settings), "sweep_enrichment")
    run_jobs()

    quiet = Identifiers(type="company", website_url="quiet.example")
    assert engine.records.get(api.org_id, quiet)["properties"]["company_type"]["value"] is None
    cleared, before = engine.records.history(api.org_id, quiet, property_name="company_type")["items"][:2]
    assert (cleared["value"], cleared["previous"], cleared["source"]) == (None, "B2C", "inference")
    assert cleared["evidence"]["evidenceLost"] == {"memoryIds": [said["quiet.example"]], "properties": []}
    assert cleared["evidence"]["supersedes"]["value"] == "B2C"
    assert cleared["evidence"]["supersedes"]["evidence"]["memoryIds"] == [said["quiet.example"]]
    assert before["value"] == "B2C" and before["evidence"]["memoryIds"] == [said["quiet.example"]]
    digest = api.post("/api/v1/smart-memory-digest", json={"website_url": "quiet.example", "type": "company"})
    assert "company_type" not in digest.json["data"]["compiledContext"]
    with engine.db.read() as s:
        events = [e["data"] for e in recent(s, api.org_id, event_type="memory.property.updated")
                  if e["data"].get("inferred") and e["data"]["value"] is None]
    assert len(events) == 1 and events[0]["evidence"]["evidenceLost"]["memoryIds"] == [said["quiet.example"]]

    owned = Identifiers(type="company", website_url="owned.example")
    result = engine.enrichment.infer(api.org_id, "company", "company_type",
                                     [engine.records.get(api.org_id, owned)["recordId"]])
    assert result["counts"]["unknown"] == 1 and result["counts"]["cleared"] == 0
    kept = engine.records.get(api.org_id, owned)["properties"]["company_type"]
    assert (kept["value"], kept["source"]) == ("B2C", "api")  # a human value is never touched
    steady = engine.records.get(api.org_id, Identifiers(type="company", website_url="steady.example"))
    assert steady["properties"]["company_type"]["value"] == "B2C"  # re-inferred from what is left


def test_inferred_attributes_reach_the_generation_prompt(api: Any, engine: Services, run_jobs: Any,
                                                         llm: FakeLLMServer) -> None:
    declare(engine, api.org_id)
    engine.records.upsert(api.org_id, Identifiers(type="company", website_url="acme.example"),
                          {"description": "Invoicing SaaS for businesses."}, Provenance(source="crm"))
    engine.records.upsert(api.org_id, Identifiers(type="contact", email="ada@acme.example"), {"first_name": "Ada"},
                          Provenance(source="crm"))
    api.post(RUNS, json=BODY)
    run_jobs()
    asked = len(llm.chat_requests)

    r = api.post("/api/v1/prompt", json={"instructions": [{"prompt": "Write Ada a two-line intro."}],
                                         "email": "ada@acme.example", "type": "contact"})

    assert r.status_code == 200, r.json
    assert "smart_digest" in r.json["data"]["context"]["sources"]
    system = llm.chat_requests[asked].messages[0]["content"]
    line = next(x for x in system.splitlines() if "company **acme.example**" in x)  # Ada's linked company
    assert "company_type: B2B (inferred, confidence 0.90)" in line
    assert "description: Invoicing SaaS for businesses." in line  # a plain value carries no mark

    r = api.post("/api/v1/prompt", json={"instructions": [{"prompt": "Summarise the account."}],
                                         "website_url": "acme.example", "type": "company"})
    assert r.status_code == 200, r.json
    system = llm.chat_requests[-1].messages[0]["content"]
    line = next(x for x in system.splitlines() if "company_type" in x)  # the record's own inferred value
    assert "B2B" in line and f"inferred by llm:{MODEL}" in line and "confidence 0.90" in line


PLAYBOOKS = {
    "B2B sales playbook": ("Selling to business buyers.", ["B2B"],
                           "## Approach\nLead with ROI for the buying committee, offer a procurement-ready "
                           "security review and propose a pilot with the finance team."),
    "B2C consumer playbook": ("Selling to consumers.", ["B2C"],
                              "## Approach\nLead with the first-order discount code, keep it playful and "
                              "mention free returns for households."),
}


def test_inferred_attributes_route_the_playbook_guideline(api: Any, engine: Services, run_jobs: Any,
                                                          llm: FakeLLMServer) -> None:
    declare(engine, api.org_id)
    for name, (description, keywords, content) in PLAYBOOKS.items():
        created = api.post("/api/v1/guidelines", json={"name": name, "description": description,
                                                       "triggerKeywords": keywords, "content": content})
        assert created.status_code in (200, 201), created.json
    for site, description in (("ledger.example", "Invoicing SaaS for businesses."),
                              ("kitchen.example", "Meal kits delivered to households.")):
        engine.records.upsert(api.org_id, Identifiers(type="company", website_url=site),
                              {"description": description}, Provenance(source="crm"))
        engine.records.upsert(api.org_id, Identifiers(type="contact", email=f"sam@{site}"), {"first_name": "Sam"},
                              Provenance(source="crm"))
    run = api.post(RUNS, json=BODY).json["data"]
    run_jobs()
    assert api.get(f"{RUNS}/{run['runId']}").json["data"]["counts"]["changed"] == 2

    for site, label, chosen, other in (("ledger.example", "B2B", "B2B sales playbook", "B2C consumer playbook"),
                                       ("kitchen.example", "B2C", "B2C consumer playbook", "B2B sales playbook")):
        digest = api.post("/api/v1/smart-memory-digest", json={"email": f"sam@{site}", "type": "contact"})
        assert [(i["type"], i["property"], i["value"], i["confidence"]) for i in digest.json["data"]["inferred"]] \
            == [("company", "company_type", label, 0.9)]  # the linked company's inferred value
        asked = len(llm.chat_requests)
        r = api.post("/api/v1/prompt", json={"instructions": [{"prompt": "Write Sam a two-line intro."}],
                                             "email": f"sam@{site}", "type": "contact"})
        assert r.status_code == 200, r.json
        context = r.json["data"]["context"]
        assert chosen in context["guidelines"] and other not in context["guidelines"], context
        assert [(a["property"], a["value"]) for a in context["routingAttributes"]] == [("company_type", label)]
        system = llm.chat_requests[asked].messages[0]["content"]
        assert PLAYBOOKS[chosen][2].splitlines()[1] in system and PLAYBOOKS[other][2].splitlines()[1] not in system

    r = api.post("/api/v1/prompt", json={"instructions": [{"prompt": "Write Sam a two-line intro."}]})
    assert r.status_code == 200 and r.json["data"]["context"]["routingAttributes"] == []  # no record, no attributes
