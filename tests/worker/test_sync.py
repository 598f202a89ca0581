"""CRM fetch and backfill end to end: real SDKs → local fake CRM servers → mapping → engine (real SQL)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from sqlalchemy import func, select

from memrelay.cli.sync_command import sync_command
from memrelay.composition import Services
from memrelay.connectors import get_connector
from memrelay.connectors.hubspot.pager import HubSpotPager
from memrelay.engine.core.errors import UpstreamError
from memrelay.engine.core.settings import Settings
from memrelay.engine.ingest.pipeline import source_config
from memrelay.engine.stores.db.models import Memory, PropertyValue, Record
from memrelay.engine.stores.identity import Identifiers
from memrelay.queue import redis_keys
from memrelay.queue.connection import queue
from memrelay.worker.jobs.sync import schedule_sync
from tests.conftest import CRM_TEST_HOSTS
from tests.connectors.deliver import deliver
from tests.connectors.fake_hubspot import BASE_TIME, FakeHubSpot, make_contacts
from tests.connectors.fake_salesforce import FakeSalesforce
from tests.connectors.fake_salesforce import make_contacts as sf_contacts


@pytest.fixture
def hubspot() -> Iterator[FakeHubSpot]:
    fake = FakeHubSpot(contacts=make_contacts(250)).start()
    yield fake
    fake.stop()


def make_source(engine: Services, connector: str, config: dict[str, Any]) -> tuple[str, str]:
    org = engine.tenancy.get_or_create_org(f"sync-{uuid.uuid4().hex[:8]}")
    return org.id, engine.sources.create(org.id, connector=connector, secret="s", config=config)["id"]


def hubspot_source(engine: Services, fake: FakeHubSpot, **config: Any) -> tuple[str, str]:
    return make_source(engine, "hubspot", {"api_base": fake.url, "access_token": fake.token, **config})


def count(engine: Services, model: Any, org_id: str) -> int:
    with engine.db.read() as s:
        return s.scalar(select(func.count()).select_from(model).where(model.org_id == org_id)) or 0


def contact(engine: Services, org_id: str, hubspot_id: str) -> dict[str, Any]:
    return engine.records.get(org_id, Identifiers(type="contact", customKeys={"hubspot_contact_id": hubspot_id}))


def memories_of(engine: Services, record_id: str) -> list[str]:
    with engine.db.read() as s:
        return list(s.scalars(select(Memory.text).where(Memory.record_id == record_id)))


def test_webhook_with_only_an_id_is_fetched_and_fully_memorized(engine, hubspot):
    org_id, src_id = hubspot_source(engine, hubspot)
    src = engine.sources.get(org_id, src_id)
    body = json.dumps([{"eventId": 1, "subscriptionId": 2, "portalId": 3, "objectId": 5,
                        "occurredAt": int(datetime(2026, 2, 1, tzinfo=UTC).timestamp() * 1000),
                        "subscriptionType": "contact.propertyChange", "propertyName": "jobtitle",
                        "propertyValue": "Engineer 5"}]).encode()
    (event,) = get_connector("hubspot").parse(deliver(source_config(src), body, "application/json"))
    assert event.record == {"id": "5", "jobtitle": "Engineer 5"}

    result = engine.pipeline.handle(org_id, src, event)

    props = contact(engine, org_id, "5")["properties"]
    assert {k: props[k]["value"] for k in ("email", "first_name", "last_name", "job_title", "company_name")} == {
        "email": "person5@corp5.example", "first_name": "First5", "last_name": "Last5", "job_title": "Engineer 5",
        "company_name": "Corp 5"}
    assert props["first_name"]["source"] == "hubspot"
    assert props["first_name"]["sourceTimestamp"].startswith("2026-01-01T00:05")  # the CRM's lastmodifieddate
    assert result["memoriesCreated"] >= 1
    assert any("First5 Last5 works as Engineer 5 at Corp 5" in m for m in memories_of(engine, result["recordId"]))
    (read,) = hubspot.calls("POST", "/contacts/batch/read")
    assert read[3]["inputs"] == [{"id": "5"}]


def test_backfill_resumes_from_the_cursor_after_a_failed_page(engine, hubspot):
    org_id, src_id = hubspot_source(engine, hubspot, max_retries=0)
    hubspot.fail = lambda method, path, query, body: 503 if query.get("after") == ["101"] else None
    with pytest.raises(UpstreamError):
        engine.backfill.sync_source(src_id, memories=False)
    cursor = engine.sources.get(org_id, src_id).sync_cursor
    assert cursor["run"]["objects"]["contact"] == {"done": False, "state": {"after": "101", "since": None}}
    assert count(engine, Record, org_id) == 100

    hubspot.fail = None
    summary = engine.backfill.sync_source(src_id, memories=False)

    assert summary.resumed and summary.pages == 2 + 2  # contacts 101..250, plus one empty page each for company/deal
    assert (summary.records, summary.created, summary.errors) == (150, 150, 0)
    assert count(engine, Record, org_id) == 250
    first_pages = [r for r in hubspot.calls("GET", "/objects/contacts") if "after" not in r[2]]
    assert len(first_pages) == 1  # page 1 was never read again
    done = engine.sources.get(org_id, src_id).sync_cursor
    assert "run" not in done and done["lastRun"]["since"] is None


def test_memories_are_written_once_across_repeated_syncs(engine):
    fake = FakeHubSpot(contacts=make_contacts(20)).start()
    try:
        org_id, src_id = hubspot_source(engine, fake)
        first = engine.backfill.sync_source(src_id)
        again = engine.backfill.sync_source(src_id, full=True)
    finally:
        fake.stop()
    assert (first.created, first.memories) == (20, 20)
    assert (again.unchanged, again.memories, again.errors) == (20, 0, 0)
    assert count(engine, Memory, org_id) == 20
    rec = contact(engine, org_id, "3")
    assert memories_of(engine, rec["recordId"]) == ["First3 Last3 works as Engineer 3 at Corp 3."]


def test_since_filter_uses_search_and_later_runs_are_incremental(engine, hubspot):
    org_id, src_id = hubspot_source(engine, hubspot)
    since = BASE_TIME + timedelta(hours=3)  # contacts 180..250 were modified at or after this
    summary = engine.backfill.sync_source(src_id, since=since, memories=False)
    assert summary.records == 71 and count(engine, Record, org_id) == 71
    assert hubspot.calls("POST", "/contacts/search") and not hubspot.calls("GET", "/objects/contacts")

    hubspot.add("contacts", make_contacts(1, start=251, base=datetime.now(UTC)))
    again = engine.backfill.sync_source(src_id, memories=False)  # no --since: from the last run's start
    assert again.since is not None and (again.records, again.created) == (1, 1)


def test_backfill_never_overwrites_newer_webhook_data_and_reports_bad_records(engine, hubspot):
    org_id, src_id = hubspot_source(engine, hubspot, fetch=False)
    src = engine.sources.get(org_id, src_id)
    newer = [{"eventId": 9, "subscriptionId": 2, "portalId": 3, "objectId": 7, "subscriptionType":
              "contact.propertyChange", "propertyName": "jobtitle", "propertyValue": "CTO",
              "occurredAt": int(datetime(2026, 6, 1, tzinfo=UTC).timestamp() * 1000)}]
    (event,) = get_connector("hubspot").parse(deliver(source_config(src), json.dumps(newer).encode(), "application/json"))
    engine.pipeline.handle(org_id, src, event)
    hubspot.objects["contacts"]["9"]["properties"]["lifecyclestage"] = "not-a-stage"

    summary = engine.backfill.sync_source(src_id, memories=False)

    assert summary.records == 250 and summary.errors == 1 and "9:" in summary.error_samples[0]
    assert summary.stale == 1 and summary.created == 248
    props = contact(engine, org_id, "7")["properties"]
    assert props["job_title"]["value"] == "CTO" and props["first_name"]["value"] == "First7"
    assert count(engine, Record, org_id) == 249  # the bad record is reported, the page was written


def test_salesforce_backfill_pages_through_soql(engine, tmp_path):
    fake = FakeSalesforce(tmp_path, Contact=sf_contacts(450, companies=1000)).start()
    try:
        org_id, src_id = make_source(engine, "salesforce", fake.options(page_size=200, sync_objects=["Contact"]))
        summary = engine.backfill.sync_source(src_id, memories=False)
    finally:
        fake.stop()
    assert (summary.records, summary.created, summary.errors) == (450, 450, 0)
    assert summary.pages == 4  # 200 + 200 + 50 + the closing page
    rec = engine.records.get(org_id, Identifiers(type="contact", email="person7@corp7.example"))
    assert rec["properties"]["job_title"]["value"] == "Engineer 7"
    assert rec["properties"]["job_title"]["source"] == "salesforce"
    assert engine.sources.get(org_id, src_id).sync_cursor["lastRun"]["records"] == 450


def test_colleagues_sharing_a_company_domain_stay_distinct_records(engine):
    fake = FakeHubSpot(contacts=make_contacts(30, companies=3)).start()
    try:
        org_id, src_id = hubspot_source(engine, fake)
        summary = engine.backfill.sync_source(src_id, memories=False)
    finally:
        fake.stop()
    assert summary.created == 30 and count(engine, Record, org_id) == 30
    colleague = contact(engine, org_id, "4")  # corp1.example, like contacts 1, 7, 10...
    assert colleague["properties"]["email"]["value"] == "person4@corp1.example"


def test_pager_restarts_search_before_the_result_cap(hubspot, monkeypatch):
    from memrelay.connectors.hubspot import api as hubspot_api
    from memrelay.connectors.mapping import load_default_mapping

    monkeypatch.setattr(hubspot_api, "SEARCH_RESULT_CAP", 1000)  # HubSpot's is 10,000; same logic
    hubspot.search_cap = 1000
    pager = HubSpotPager(hubspot_api.HubSpotApi({"api_base": hubspot.url, "access_token": hubspot.token}),
                         load_default_mapping("hubspot"), ["contact"], limit=100)
    hubspot.add("contacts", make_contacts(1050, start=251))
    pages = list(pager.pages("contact", {}, BASE_TIME))
    ids = [r["id"] for p in pages for r in p.records]
    assert set(ids) == {str(i) for i in range(1, 1301)}  # everything, never asking past the cap
    assert pages[9].state["after"] is None and pages[9].state["since"] > BASE_TIME.isoformat()


def test_cli_syncs_into_the_data_dir(tmp_path: Path, hubspot):
    data = tmp_path / "cli-data"
    eng = Services(Settings(data_dir=data, crm_test_hosts=CRM_TEST_HOSTS))
    eng.settings.ensure_data_dir()
    eng.migrate()
    org = eng.tenancy.get_or_create_org("cli")
    src_id = eng.sources.create(org.id, connector="hubspot", config={"api_base": hubspot.url,
                                                                     "access_token": hubspot.token})["id"]
    eng.close()
    env = {"MEMRELAY_DATA_DIR": str(data), "MEMRELAY_CRM_TEST_HOSTS": CRM_TEST_HOSTS}

    result = CliRunner().invoke(sync_command, ["hubspot", "--source", src_id, "--no-memories"], env=env)

    assert result.exit_code == 0, result.output
    assert "synced 250 records in 5 pages (250 created, 0 updated, 0 stale, 0 errors" in result.output
    wrong = CliRunner().invoke(sync_command, ["salesforce", "--source", src_id], env=env)
    assert wrong.exit_code != 0 and "is a hubspot source" in wrong.output
    bad = CliRunner().invoke(sync_command, ["hubspot", "--source", src_id, "--since", "yesterday"], env=env)
    assert bad.exit_code == 2 and "ISO date" in bad.output


def test_scheduled_job_runs_under_rq_and_reschedules_itself(engine, settings, hubspot, run_jobs):
    org_id, src_id = hubspot_source(engine, hubspot)
    conn = redis.Redis.from_url(settings.redis_url)
    job_id = schedule_sync(conn, src_id, every_s=900, memories=False)

    run_jobs()
    job = Job.fetch(job_id, connection=conn)
    assert job.get_status() == "finished" and job.return_value()["records"] == 250
    assert count(engine, Record, org_id) == 250
    assert conn.get(redis_keys.lock(f"sync:{src_id}")) is None
    assert ScheduledJobRegistry(queue=queue(conn, "default")).count == 1  # the next run, in 15 minutes
    with engine.db.read() as s:
        assert s.scalar(select(func.count()).select_from(PropertyValue)
                        .where(PropertyValue.source == "hubspot")) >= 250
