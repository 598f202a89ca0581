"""Proactive enrichment, offline path and freshness: inferred properties declared on a collection, inferred
from the record's own evidence by keyword rules (unknown when the evidence says nothing), written with
confidence, producer and evidence, never over a human value, kept current through the change feed and the
real worker, visible in digests and searchable like any property."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from memrelay.composition import Services
from memrelay.engine.core.errors import ValidationFailed
from memrelay.engine.enrichment.runs import EnrichmentRunRequest
from memrelay.engine.memory.digest import DigestRequest
from memrelay.engine.memory.memories import MemorizeRequest
from memrelay.engine.stores.db.models import PropertyHistory
from memrelay.engine.stores.db.models_enrichment import EnrichmentStale
from memrelay.engine.stores.identity import Identifiers
from memrelay.engine.stores.outbox import recent
from memrelay.engine.stores.properties import Provenance
from memrelay.engine.stores.search import SearchQuery, run_search
from memrelay.queue.connection import connect
from memrelay.worker.jobs.enrich import enqueue_once

INSTRUCTION = ("B2B if it sells to businesses (SaaS, enterprise software, wholesale, procurement teams); "
               "B2C if it sells to consumers (shoppers, households, retail stores, mobile app for individuals).")
COMPANY_TYPE = {"propertyName": "company_type", "type": "options", "options": ["B2B", "B2C"],
                "description": "Who the company sells to.",
                "inferred": {"instruction": INSTRUCTION, "evidence": {"properties": ["description"]}}}
UNICORN = {"propertyName": "funding_guess", "type": "text",
           "inferred": {"instruction": "The company's last funding round.", "policy": "manual"}}


def fresh_org(engine: Services, prefix: str) -> str:
    """A new org (names are unique per database, and the PostgreSQL schema outlives one test)."""
    return engine.tenancy.get_or_create_org(f"{prefix}-{uuid.uuid4().hex[:8]}").id


def declare(engine: Services, org_id: str, *props: dict[str, Any]) -> None:
    engine.collections.create(org_id, name="Company Insights", entity_type="company",
                              properties=[COMPANY_TYPE, *props])


def company(engine: Services, org_id: str, site: str, description: str | None = None) -> str:
    props = {"description": description} if description else {}
    return engine.records.upsert(org_id, Identifiers(type="company", website_url=site), props,
                                 Provenance(source="crm"))["recordId"]


def memorize(engine: Services, org_id: str, site: str, text: str, tags: list[str] | None = None) -> None:
    engine.memories.memorize(org_id, MemorizeRequest.model_validate(
        {"type": "company", "website_url": site, "content": text, "verbatim": True, "tags": tags or []}))


def value_of(engine: Services, org_id: str, site: str, name: str = "company_type") -> dict[str, Any] | None:
    return engine.records.get(org_id, Identifiers(type="company", website_url=site))["properties"].get(name)


def run_offline(engine: Services, org_id: str, **extra: Any) -> dict[str, Any]:
    req = EnrichmentRunRequest.model_validate({"collection": "company", "property": "company_type",
                                               "mode": "offline", **extra})
    run = engine.enrichment.start_run(org_id, req)
    for index in engine.enrichment.pending_chunks(org_id, run["runId"]):
        engine.enrichment.process_chunk(run["runId"], org_id, index)
    return engine.enrichment.status(org_id, run["runId"])


@pytest.fixture
def org(engine: Services) -> str:
    org_id = fresh_org(engine, "enrichment-offline")
    declare(engine, org_id, UNICORN)
    return org_id


def test_declaration_is_validated_and_kept_on_the_collection(engine: Services) -> None:
    org_id = fresh_org(engine, "enrichment-declare")
    with pytest.raises(ValidationFailed) as err:
        engine.collections.create(org_id, name="Bad", entity_type="company", properties=[
            {**COMPANY_TYPE, "inferred": {"instruction": "x", "policy": "hourly"}}])
    assert err.value.details["property"] == "company_type"
    declare(engine, org_id)
    stored = engine.collections.list(org_id, entity_type="company")
    props = {p["propertyName"]: p for c in stored for p in c["properties"]}
    assert props["company_type"]["inferred"]["policy"] == "on_new_evidence"
    assert "inferred" not in props["industry"]  # undeclared properties keep their stored shape
    with pytest.raises(ValidationFailed):  # a property that is not inferred cannot be run
        engine.enrichment.start_run(org_id, EnrichmentRunRequest(collection="company", property="industry"))


def test_offline_infers_from_evidence_and_answers_unknown_without_it(backend: str, engine: Services, org: str) -> None:
    company(engine, org, "payroll.example", "Payroll SaaS sold to businesses and their procurement teams.")
    company(engine, org, "sneakers.example", "Online sneaker shop for shoppers and households.")
    company(engine, org, "mystery.example")
    memorize(engine, org, "mystery.example", "We met their CEO at a conference in May.")
    company(engine, org, "empty.example")

    status = run_offline(engine, org)

    assert status["status"] == "completed" and status["total"] == 4 and status["processed"] == 4
    assert status["counts"] == {"changed": 2, "unchanged": 0, "unknown": 2, "cleared": 0, "kept_human": 0}
    assert status["costUsd"] == 0 and status["mode"] == "offline"
    b2b = value_of(engine, org, "payroll.example")
    assert b2b is not None and b2b["value"] == "B2B" and b2b["source"] == "inference"
    assert b2b["actor"] == "rule:offline-keywords-v1" and 0.5 <= b2b["confidence"] <= 0.9
    assert value_of(engine, org, "sneakers.example")["value"] == "B2C"
    assert value_of(engine, org, "mystery.example") is None  # irrelevant evidence: unknown, nothing stored
    assert value_of(engine, org, "empty.example") is None
    history = engine.records.history(org, Identifiers(type="company", website_url="payroll.example"),
                                     property_name="company_type")["items"]
    evidence = history[0]["evidence"]
    assert evidence["producer"] == "rule:offline-keywords-v1" and evidence["mode"] == "offline"
    assert evidence["properties"][0]["name"] == "description" and evidence["supersedes"] is None
    with engine.db.read() as s:
        events = [e for e in recent(s, org, event_type="memory.property.updated") if e["data"].get("inferred")]
    assert sorted(e["data"]["value"] for e in events) == ["B2B", "B2C"]
    assert all(e["data"]["confidence"] >= 0.5 and e["data"]["evidence"] for e in events)


def test_offline_only_answers_options_and_booleans(engine: Services, org: str) -> None:
    rid = company(engine, org, "round.example", "Series B funding closed last year for their SaaS.")
    result = engine.enrichment.infer(org, "company", "funding_guess", [rid], mode="offline")
    assert result["counts"]["unknown"] == 1 and result["results"][0]["value"] is None
    assert "options and boolean" in result["results"][0]["reasoning"]


def test_human_value_survives_later_runs(engine: Services, org: str) -> None:
    company(engine, org, "hybrid.example", "Wholesale supplier for procurement teams.")
    engine.records.upsert(org, Identifiers(type="company", website_url="hybrid.example"), {"company_type": "B2C"},
                          Provenance(source="api", actor="ana@sales"))
    for _ in range(2):
        status = run_offline(engine, org)
        assert status["counts"]["kept_human"] == 1 and status["counts"]["changed"] == 0
    kept = value_of(engine, org, "hybrid.example")
    assert kept["value"] == "B2C" and kept["source"] == "api"


@pytest.mark.settings(enrichment_debounce_s=0.0)  # due at once, so the burst worker refreshes it
def test_new_contradicting_memory_flips_the_value_through_the_worker(backend: str, engine: Services, org: str,
                                                                     run_jobs: Any) -> None:
    company(engine, org, "pivot.example", "Enterprise software for procurement teams.")
    run_offline(engine, org)
    first = value_of(engine, org, "pivot.example")
    assert first["value"] == "B2B"

    memorize(engine, org, "pivot.example", "They pivoted: the new mobile app sells directly to consumers.")
    memorize(engine, org, "pivot.example", "Their shoppers order through the mobile app every week.")
    conn = connect(engine.settings)
    assert enqueue_once(conn, "sweep_enrichment") and not enqueue_once(conn, "sweep_enrichment")  # deduplicated
    run_jobs()

    flipped = value_of(engine, org, "pivot.example")
    assert flipped["value"] == "B2C" and flipped["source"] == "inference"
    rows = engine.records.history(org, Identifiers(type="company", website_url="pivot.example"),
                                  property_name="company_type")["items"]
    new, old = rows[0], rows[1]
    assert (new["value"], new["previous"], old["value"]) == ("B2C", "B2B", "B2B")
    assert len(new["evidence"]["memoryIds"]) == 2  # the two new memories
    assert new["evidence"]["supersedes"]["value"] == "B2B"
    assert new["evidence"]["supersedes"]["evidence"]["properties"][0]["name"] == "description"
    with engine.db.read() as s:  # the refreshed mark is gone; the manual property's mark waits for a run
        assert [m.property for m in s.scalars(select(EnrichmentStale).where(EnrichmentStale.org_id == org))] \
            == ["funding_guess"]

    # the value is settled: sweeping again marks nothing and changes nothing
    assert engine.enrichment.sweep(org)["marked"] == 0
    with engine.db.read() as s:
        count = s.scalar(select(func.count()).select_from(PropertyHistory).where(
            PropertyHistory.org_id == org, PropertyHistory.name == "company_type"))
    assert count == 2


def test_stale_marks_deduplicate_and_respect_policy(engine: Services, org: str) -> None:
    rid = company(engine, org, "busy.example", "Enterprise software.")
    run_offline(engine, org)
    engine.enrichment.sweep(org)  # consume the feed so far
    for text in ("Another SaaS contract.", "A second enterprise deal.", "A third one."):
        memorize(engine, org, "busy.example", text)
    swept = engine.enrichment.sweep(org)
    assert swept["marked"] >= 1
    stale = engine.enrichment.stale(org)
    assert stale["company_type"]["stale"] == 1  # three memories, one mark
    assert stale["company_type"]["policy"] == "on_new_evidence"
    assert "funding_guess" in stale and stale["funding_guess"]["due"] == 0  # manual: marked, never due
    assert engine.enrichment.stale_records(org, "company_type") == [rid]


def test_inferred_values_are_searchable_and_marked_in_digests(engine: Services, org: str) -> None:
    company(engine, org, "a.example", "SaaS for businesses.")
    company(engine, org, "b.example", "Retail stores for households.")
    run_offline(engine, org)
    with engine.db.read() as s:
        rows, total = run_search(s, engine.collections, org, SearchQuery.model_validate(
            {"identifiers": {"type": "company"},
             "groups": [{"conditions": [{"property": "company_type", "operator": "EQ", "value": "B2C"}]}]}))
    assert total == 1 and rows[0].primary_key.endswith("b.example")
    digest = engine.digests.digest(org, DigestRequest.model_validate({"website_url": "a.example", "type": "company"}))
    line = next(x for x in digest["compiledContext"].splitlines() if "company_type" in x)
    assert "B2B" in line and "inferred by rule:offline-keywords-v1" in line and "confidence" in line


def test_run_over_a_search_filter_only_touches_matches(engine: Services, org: str) -> None:
    company(engine, org, "x.example", "SaaS for businesses.")
    engine.records.upsert(org, Identifiers(type="company", website_url="x.example"), {"country": "CA"},
                          Provenance(source="crm"))
    company(engine, org, "y.example", "Retail stores for households.")
    status = run_offline(engine, org, filter={"groups": [{"conditions": [
        {"property": "country", "operator": "EQ", "value": "CA"}]}]})
    assert status["total"] == 1 and status["filter"]["groups"][0]["conditions"][0]["value"] == "CA"
    assert value_of(engine, org, "y.example") is None


def test_boolean_keywords_never_turn_absence_into_false(engine: Services) -> None:
    org_id = fresh_org(engine, "enrichment-boolean")
    engine.collections.create(org_id, name="Tech", entity_type="company", properties=[
        {"propertyName": "runs_kubernetes", "type": "boolean",
         "inferred": {"instruction": "True if they run containers on Kubernetes.",
                      "keywords": {"true": ["k8s", "helm"]}}}])
    k8s = company(engine, org_id, "k8s.example")
    memorize(engine, org_id, "k8s.example", "Their platform team deploys everything with Helm charts.")
    vms = company(engine, org_id, "vms.example")
    memorize(engine, org_id, "vms.example", "They run a few virtual machines in a colocation rack.")
    result = engine.enrichment.infer(org_id, "company", "runs_kubernetes", [k8s, vms], mode="offline")
    by_record = {r["recordId"]: r["value"] for r in result["results"]}
    assert by_record == {k8s: True, vms: None}  # no cue for "false" exists: unknown, not False


def test_contact_inference_reads_the_linked_company(engine: Services) -> None:
    org_id = fresh_org(engine, "enrichment-linked")
    engine.collections.create(org_id, name="Contact Insights", entity_type="contact", properties=[
        {**COMPANY_TYPE, "propertyName": "employer_type",
         "inferred": {"instruction": INSTRUCTION, "evidence": {"linkedCompany": True}}}])
    company(engine, org_id, "acme.example", "Wholesale supplier for procurement teams.")
    ada = engine.records.upsert(org_id, Identifiers(type="contact", email="ada@acme.example"), {},
                                Provenance(source="crm"))["recordId"]
    loner = engine.records.upsert(org_id, Identifiers(type="contact", email="bo@gmail.example"), {},
                                  Provenance(source="crm"))["recordId"]
    result = engine.enrichment.infer(org_id, "contact", "employer_type", [ada, loner], mode="offline")
    assert {r["recordId"]: r["value"] for r in result["results"]} == {ada: "B2B", loner: None}
    item = engine.records.history(org_id, Identifiers(type="contact", email="ada@acme.example"),
                                  property_name="employer_type")["items"][0]
    cited = item["evidence"]["properties"][0]
    assert cited["name"] == "description" and cited["recordId"] != ada  # the company's property
