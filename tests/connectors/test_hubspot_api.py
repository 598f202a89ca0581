"""HubSpot fetch and paging through the real hubspot-api-client against a local fake HubSpot server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fake_hubspot import FakeHubSpot, make_contacts

from memrelay.connectors import SourceConfig, get_connector
from memrelay.connectors.crm_http import mapping_fields
from memrelay.connectors.hubspot.api import HubSpotApi, fetch_records
from memrelay.connectors.hubspot.pager import HubSpotPager
from memrelay.connectors.mapping import load_default_mapping
from memrelay.engine.core.errors import RateLimited, UpstreamError

COMPANY = {"id": "77", "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-02T00:00:00Z", "archived": False,
           "properties": {"name": "Acme", "domain": "acme.example", "industry": "Software",
                          "numberofemployees": "250", "hs_lastmodifieddate": "2026-01-02T00:00:00Z"}}


@pytest.fixture
def fake() -> Iterator[FakeHubSpot]:
    server = FakeHubSpot(contacts=make_contacts(250), companies=[COMPANY]).start()
    yield server
    server.stop()


def source(fake: FakeHubSpot, **options: object) -> SourceConfig:
    return SourceConfig(id="src_hs", connector="hubspot",
                        options={"api_base": fake.url, "access_token": fake.token, **options})


def event(object_type: str, object_id: str, prop: str | None = None, value: str | None = None):
    record = {"id": object_id, **({prop: value} if prop else {})}
    return get_connector("hubspot").new_event(
        source_stub, dedup_key=f"k-{object_type}-{object_id}", event_type=f"{object_type}.propertyChange",
        object_type=object_type, source_object_type=object_type, object_id=object_id,
        occurred_at=datetime(2026, 2, 1, tzinfo=UTC), record=record)


source_stub = SourceConfig(id="src_hs", connector="hubspot")


def test_batch_read_chunks_100_ids_and_retries_a_429_after_retry_after(fake):
    sleeps: list[float] = []
    fake.throttle(1)
    api = HubSpotApi(source(fake).options, sleep=sleeps.append)
    ids = [str(i) for i in range(1, 251)] + ["9999"]
    records = api.batch_read("contact", ids, api.properties_for("contact", ["jobtitle"]))

    assert len(records) == 250 and "9999" not in records  # unknown ids are absent, not errors
    assert records["42"]["jobtitle"] == "Engineer 42" and records["42"]["id"] == "42"
    reads = fake.calls("POST", "/contacts/batch/read")
    assert len(reads) == 4  # one 429, then 100 + 100 + 51 ids
    assert [len(body["inputs"]) for *_, body in reads] == [100, 100, 100, 51]
    assert max(len(body["inputs"]) for *_, body in reads) <= 100
    assert sleeps == [1.0]  # waited exactly what Retry-After asked
    assert "jobtitle" in reads[-1][3]["properties"] and "lastmodifieddate" in reads[-1][3]["properties"]


def test_connector_fetch_groups_events_by_object_type(fake):
    events = [event("contact", "5", "jobtitle", "CTO"), event("contact", "6"), event("company", "77"),
              event("deal", "404")]
    records = get_connector("hubspot").fetch(source(fake), events)

    assert set(records) == {"5", "6", "77"}  # the unknown deal is simply absent
    assert records["5"]["firstname"] == "First5" and records["5"]["email"] == "person5@corp5.example"
    assert records["77"]["numberofemployees"] == "250"
    assert [p.split("/")[4] for _, p, _, _ in fake.calls("POST", "/batch/read")] == ["contacts", "companies",
                                                                                   "deals"]


def test_fetch_without_access_token_reads_nothing(fake):
    cfg = SourceConfig(id="s", connector="hubspot", options={"api_base": fake.url})
    assert fetch_records(cfg, [event("contact", "5")]) == {}
    assert fake.requests == []


def test_fetch_failures_raise_after_retries(fake):
    sleeps: list[float] = []
    fake.fail = lambda *_: 502
    with pytest.raises(UpstreamError) as err:
        fetch_records(source(fake, max_retries=2), [event("contact", "5")], sleep=sleeps.append)
    assert err.value.details["status"] == 502
    assert len(fake.requests) == 3 and len(sleeps) == 2  # exponential backoff, no Retry-After


def test_daily_limit_is_not_retried(fake):
    fake.throttle(5)
    fake.throttle_policy = "DAILY"
    with pytest.raises(RateLimited):
        HubSpotApi(source(fake).options, sleep=lambda s: None).list_page("contact", after=None, properties=["email"])
    assert len(fake.requests) == 1


def test_rate_limit_headers_without_retry_after():
    from memrelay.connectors.hubspot import api as hubspot_api

    class Secondly(Exception):
        status, body = 429, b"{}"
        headers = {"x-hubspot-ratelimit-interval-milliseconds": "10000", "X-HubSpot-RateLimit-Remaining": "0"}

    assert hubspot_api.retryable(Secondly()) and hubspot_api.server_wait(Secondly()) == 10.0


def test_persistent_429_raises_rate_limited(fake):
    fake.throttle(10)
    fake.retry_after = "0"
    with pytest.raises(RateLimited):
        HubSpotApi(source(fake, max_retries=1).options, sleep=lambda s: None).list_page(
            "contact", after=None, properties=["email"])


def test_mapping_fields_name_what_the_mapping_reads():
    fields = mapping_fields(load_default_mapping("hubspot"), "contact")
    assert {"email", "firstname", "lastname", "jobtitle", "company", "lifecyclestage", "lastmodifieddate",
            "website", "id"} <= set(fields)
    assert not [f for f in fields if f.startswith("_") or f.startswith("@")]
    assert mapping_fields(load_default_mapping("hubspot"), "nope") == []


def test_pager_lists_by_id_or_searches_by_modified_time(fake):
    api = HubSpotApi(source(fake).options)
    pager = HubSpotPager(api, load_default_mapping("hubspot"), ["contact"])
    pages = list(pager.pages("contact", {}, None))
    assert [len(p.records) for p in pages] == [100, 100, 50] and pages[-1].done
    assert [p.state["after"] for p in pages] == ["101", "201", None]

    since = datetime(2026, 1, 1, 3, 0, tzinfo=UTC)  # contacts 180.. are modified at or after 03:00
    found = [r for p in pager.pages("contact", {}, since) for r in p.records]
    assert [r["id"] for r in found] == [str(i) for i in range(180, 251)]
    body = fake.calls("POST", "/contacts/search")[0][3]
    assert body["filterGroups"][0]["filters"][0] == {"propertyName": "lastmodifieddate", "operator": "GTE",
                                                      "value": str(int(since.timestamp() * 1000))}
    assert body["limit"] == 100
