"""Keeping inferred values current, offline path, through the real worker: a change on a linked company marks
its contacts' ``linkedCompany`` properties stale and the refresh re-infers them; the ``daily`` policy is due a
day after the value was inferred (the enrichment clock is moved, nothing sleeps) and not before; a declared
``path`` is honoured by refreshes, and a refresh that cannot run is retried later instead of every sweep."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from memrelay.composition import Services
from memrelay.engine.core.util import as_aware
from memrelay.engine.stores.db.models_enrichment import EnrichmentStale
from memrelay.engine.stores.identity import Identifiers
from memrelay.engine.stores.properties import Provenance
from memrelay.queue.connection import connect
from memrelay.worker.jobs.enrich import enqueue_once
from tests.engine.test_enrichment import (
    COMPANY_TYPE,
    INSTRUCTION,
    company,
    fresh_org,
    memorize,
    run_offline,
    value_of,
)

EMPLOYER_TYPE = {**COMPANY_TYPE, "propertyName": "employer_type",
                 "inferred": {"instruction": INSTRUCTION, "evidence": {"linkedCompany": True}}}
CHAMPION = {"propertyName": "is_champion", "type": "boolean",
            "inferred": {"instruction": "True if they push for the purchase internally.",
                         "keywords": {"true": ["champion", "advocate"]}, "evidence": {"memoryTags": ["deal"]}}}


def contact(engine: Services, org_id: str, email: str) -> str:
    return engine.records.upsert(org_id, Identifiers(type="contact", email=email), {},
                                 Provenance(source="crm"))["recordId"]


def contact_value(engine: Services, org_id: str, email: str, name: str = "employer_type") -> dict[str, Any] | None:
    return engine.records.get(org_id, Identifiers(type="contact", email=email))["properties"].get(name)


def sweep_through_worker(engine: Services, run_jobs: Any) -> None:
    """The worker tick's job: the sweep, and the refresh it enqueues when marks are due."""
    assert enqueue_once(connect(engine.settings), "sweep_enrichment")
    run_jobs()


def marks(engine: Services, org_id: str) -> list[EnrichmentStale]:
    with engine.db.read() as s:
        return list(s.scalars(select(EnrichmentStale).where(EnrichmentStale.org_id == org_id)
                              .order_by(EnrichmentStale.record_id, EnrichmentStale.property)))


@pytest.mark.settings(enrichment_debounce_s=0.0)  # due at once, so the burst worker refreshes it
def test_linked_company_change_marks_contacts_stale_and_the_refresh_reinfers(backend: str, engine: Services,
                                                                             run_jobs: Any) -> None:
    org = fresh_org(engine, "enrichment-linked-fresh")
    engine.collections.create(org, name="Contact Insights", entity_type="contact",
                              properties=[EMPLOYER_TYPE, CHAMPION])
    company(engine, org, "acme.example", "Wholesale supplier for procurement teams.")
    company(engine, org, "other.example", "Enterprise software for procurement teams.")
    ada = contact(engine, org, "ada@acme.example")
    bo = contact(engine, org, "bo@other.example")
    engine.enrichment.infer(org, "contact", "employer_type", [ada, bo], mode="offline")
    assert contact_value(engine, org, "ada@acme.example")["value"] == "B2B"
    assert engine.enrichment.sweep(org)["marked"] == 0  # what happened before the values were inferred

    # a property change on Ada's company: only Ada's linkedCompany property is stale
    engine.records.upsert(org, Identifiers(type="company", website_url="acme.example"),
                          {"description": "Meal kits delivered to households and shoppers."}, Provenance(source="crm"))
    assert engine.enrichment.sweep(org)["marked"] == 1
    (mark,) = marks(engine, org)
    assert (mark.record_id, mark.property) == (ada, "employer_type")
    assert any(r.startswith("linked company ") and "property description" in r for r in mark.reasons)

    sweep_through_worker(engine, run_jobs)  # the sweep enqueues the due refresh; the worker runs both

    flipped = contact_value(engine, org, "ada@acme.example")
    assert flipped["value"] == "B2C" and flipped["source"] == "inference"
    assert contact_value(engine, org, "bo@other.example")["value"] == "B2B"  # another company: untouched
    item = engine.records.history(org, Identifiers(type="contact", email="ada@acme.example"),
                                  property_name="employer_type")["items"][0]
    cited = item["evidence"]["properties"][0]
    assert (cited["name"], cited["version"]) == ("description", 2) and cited["recordId"] != ada
    assert item["evidence"]["supersedes"]["value"] == "B2B" and marks(engine, org) == []

    # a memory on the company marks it again (the company's memories are evidence too), tag-filtered
    # properties of the contact are not touched by company memories
    memorize(engine, org, "acme.example", "They hired a champion for their partner program.", tags=["deal"])
    assert engine.enrichment.sweep(org)["marked"] == 1
    assert [(m.record_id, m.property) for m in marks(engine, org)] == [(ada, "employer_type")]


def test_daily_policy_is_due_a_day_after_inference_and_not_before(engine: Services, run_jobs: Any) -> None:
    org = fresh_org(engine, "enrichment-daily")
    engine.collections.create(org, name="Company Insights", entity_type="company", properties=[
        {**COMPANY_TYPE, "inferred": {**COMPANY_TYPE["inferred"], "policy": "daily"}}])
    company(engine, org, "pivot.example", "Enterprise software for procurement teams.")
    run_offline(engine, org)
    inferred_at = as_aware(datetime.fromisoformat(value_of(engine, org, "pivot.example")["updatedAt"]))
    engine.enrichment.sweep(org)  # consume the feed so far
    memorize(engine, org, "pivot.example", "They pivoted: the new mobile app sells directly to consumers.")
    memorize(engine, org, "pivot.example", "Their shoppers order through the mobile app every week.")

    engine.enrichment.clock = lambda: inferred_at + timedelta(hours=1)
    sweep_through_worker(engine, run_jobs)
    (mark,) = marks(engine, org)
    assert abs(as_aware(mark.due_at) - (inferred_at + timedelta(days=1))) < timedelta(seconds=1)
    assert engine.enrichment.stale(org)["company_type"] == {"stale": 1, "due": 0, "policy": "daily"}
    assert value_of(engine, org, "pivot.example")["value"] == "B2B"  # not before a day
    engine.enrichment.clock = lambda: inferred_at + timedelta(hours=23, minutes=59)
    assert engine.enrichment.refresh_due(org)["refreshed"] == 0

    engine.enrichment.clock = lambda: inferred_at + timedelta(days=1, minutes=1)
    assert engine.enrichment.stale(org)["company_type"]["due"] == 1
    # the worker is its own process with the real clock: a day passes for the stored mark instead
    with engine.db.session() as s:
        for stale in s.scalars(select(EnrichmentStale).where(EnrichmentStale.org_id == org)):
            stale.due_at = as_aware(stale.due_at) - timedelta(days=1, minutes=1)
    sweep_through_worker(engine, run_jobs)
    assert value_of(engine, org, "pivot.example")["value"] == "B2C"
    assert marks(engine, org) == []


def test_declared_llm_path_without_a_model_is_retried_later_not_every_sweep(engine: Services) -> None:
    org = fresh_org(engine, "enrichment-path")
    engine.collections.create(org, name="Company Insights", entity_type="company", properties=[
        {**COMPANY_TYPE, "inferred": {**COMPANY_TYPE["inferred"], "path": "llm"}}])
    stored = {p["propertyName"]: p for c in engine.collections.list(org, entity_type="company")
              for p in c["properties"]}
    assert stored["company_type"]["inferred"]["path"] == "llm"
    engine.enrichment.debounce_s = 0.0
    company(engine, org, "sass.example", "Payroll SaaS for businesses.")
    assert engine.enrichment.sweep(org)["marked"] == 1  # never inferred: stale
    now = engine.enrichment.clock()
    engine.enrichment.clock = lambda: now + timedelta(seconds=1)

    refreshed = engine.enrichment.refresh_due(org)  # the declaration wants the LLM and none is configured

    assert refreshed["counts"] == {"failed": 1} and value_of(engine, org, "sass.example") is None
    (mark,) = marks(engine, org)
    assert as_aware(mark.due_at) >= now + timedelta(minutes=15)
    assert engine.enrichment.refresh_due(org)["refreshed"] == 0  # not retried on the next sweep
    assert engine.enrichment.infer(org, "company", "company_type", [mark.record_id],
                                   mode="offline")["counts"]["changed"] == 1  # an explicit mode still runs
