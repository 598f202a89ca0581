"""Salesforce fetch, SOQL paging, keyset resume and Bulk 2.0 through real simple-salesforce over HTTPS."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from connector_samples import ORG_ID, envelope, notification
from deliver import deliver
from fake_salesforce import FakeSalesforce, make_contacts

from memrelay.connectors import SourceConfig, get_connector
from memrelay.connectors.mapping import load_default_mapping
from memrelay.connectors.salesforce.api import SalesforceApi, fetch_records
from memrelay.connectors.salesforce.pager import SalesforcePager
from memrelay.engine.core.errors import UpstreamError


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sf-tls")


@pytest.fixture
def fake(tls_dir: Path) -> Iterator[FakeSalesforce]:
    server = FakeSalesforce(tls_dir, Contact=make_contacts(450, same_time_every=3)).start()
    yield server
    server.stop()


def test_query_pages_follow_next_records_url(fake):
    api = SalesforceApi(fake.options(page_size=200))
    fields = api.fields_for("Contact", ["Email", "FirstName", "CurrencyIsoCode", "Department"])
    assert fields == ["Id", "LastModifiedDate", "Email", "FirstName", "Department"]  # CurrencyIsoCode unknown here

    pages = list(api.modified_since("Contact", fields, datetime(2026, 1, 1, 0, 30, tzinfo=UTC)))
    assert [len(p.records) for p in pages] == [200, 160] and pages[0].total == 360  # contacts 91..450
    assert "attributes" not in pages[0].records[0]
    (soql,) = fake.queries()
    assert soql == ("SELECT Id, LastModifiedDate, Email, FirstName, Department FROM Contact "
                    "WHERE LastModifiedDate >= 2026-01-01T00:30:00+00:00 ORDER BY LastModifiedDate, Id")
    assert sum("/query/" in p.rstrip("/") for _, p, _ in fake.requests) == 1  # one query_more call
    assert api.api_usage() == pytest.approx(fake.api_used / fake.api_max, abs=1e-3)


def test_a_5xx_is_retried_and_a_persistent_one_raises(fake):
    sleeps: list[float] = []
    fake.fail_query_call = 1
    api = SalesforceApi(fake.options(), sleep=sleeps.append)
    assert len(api.fetch_by_ids("Contact", ["003000000000000001"], ["Id", "Email"])) == 1
    assert len(sleeps) == 1

    fake.fail_query_call = None
    api = SalesforceApi(fake.options(instance_url=fake.url, access_token="expired", max_retries=3),
                        sleep=sleeps.append)
    with pytest.raises(UpstreamError) as err:
        api.fields_for("Contact")
    assert err.value.details["status"] == 401 and len(sleeps) == 1  # a 401 is not retried


def test_connector_fetch_adds_fields_the_outbound_message_lacks(fake):
    body = envelope(notification("04l1", "Contact", "<sf:Id>003000000000000007</sf:Id>"
                                                    "<sf:Email>p7@corp0.example</sf:Email>"))
    src = SourceConfig(id="src_sf", connector="salesforce", allowed_org_ids=[ORG_ID], options=fake.options())
    (event,) = get_connector("salesforce").parse(deliver(src, body, "text/xml"))
    fetched = get_connector("salesforce").fetch(src, [event])
    assert fetched["003000000000000007"]["Department"] == "R&D"
    assert fetched["003000000000000007"]["Title"] == "Engineer 7"
    assert "WHERE Id IN ('003000000000000007')" in fake.queries()[0]
    no_api = SourceConfig(id="src_sf", connector="salesforce", options={})
    assert fetch_records(no_api, [event]) == {}


def test_keyset_cursor_resumes_exactly_inside_a_run_of_equal_timestamps(fake):
    mapping = load_default_mapping("salesforce")
    pager = SalesforcePager(SalesforceApi(fake.options(page_size=200)), mapping, ["Contact"])
    first = next(iter(pager.pages("Contact", {}, None)))
    assert len(first.records) == 200 and len(first.state["ids"]) == 2  # page ends inside a run of 3
    rest = [r for p in pager.pages("Contact", first.state, None) for r in p.records]
    ids = [r["Id"] for r in first.records + rest]
    assert len(ids) == len(set(ids)) == 450


def test_bulk_2_query_pages(fake):
    api = SalesforceApi(fake.options(bulk_poll_s=0.01, page_size=200))
    pager = SalesforcePager(api, load_default_mapping("salesforce"), ["Contact"], bulk=True)
    pages = list(pager.pages("Contact", {}, None))
    assert [len(p.records) for p in pages] == [450, 0] and pages[-1].done
    assert pages[0].records[0]["Email"] == "person1@corp1.example"
    assert any(p.endswith("/jobs/query") for m, p, _ in fake.requests if m == "POST")
