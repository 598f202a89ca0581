"""Salesforce Outbound Messages: token + org allowlist, safe SOAP parsing, exact ACK."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from connector_samples import ORG_ID, envelope, notification
from deliver import deliver, fixture_bytes

from memrelay.connectors import get_connector
from memrelay.connectors.salesforce.webhook import same_org
from memrelay.engine.core.errors import BadRequest, SignatureError

TOKEN = "Zp4s9-unguessable-path-token"
SPEC_ACK = (
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
    '<notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound"><Ack>true</Ack>'
    "</notificationsResponse></soapenv:Body></soapenv:Envelope>"
)

salesforce = get_connector("salesforce")

CONTACT = notification(
    "04l5g000001XyZ1AAK",
    "Contact",
    """<sf:Id>0035g00000AbCdEAAV</sf:Id>
     <sf:Email>Ann.Lee@Acme.com</sf:Email>
     <sf:FirstName>Ann</sf:FirstName>
     <sf:LastName>Lee</sf:LastName>
     <sf:Title xsi:nil="true"/>
     <sf:LastModifiedDate>2024-05-01T10:15:30.000Z</sf:LastModifiedDate>""",
)
OPPORTUNITY = notification(
    "04l5g000001XyZ2AAK",
    "Opportunity",
    """<sf:Id>0065g00000QwErTAAV</sf:Id>
     <sf:Name>Acme renewal</sf:Name>
     <sf:Amount>250000.0</sf:Amount>
     <sf:StageName>Negotiation/Review</sf:StageName>""",
)


@pytest.fixture
def source(make_source):
    return make_source("salesforce", token=TOKEN, allowed_org_ids=[ORG_ID])


# -- verification -----------------------------------------------------------------------------------


def test_valid_token_and_org_pass(source):
    salesforce.verify({}, envelope(CONTACT), source=source, token=TOKEN)


def test_token_from_header_case_insensitive(source):
    salesforce.verify({"x-memrelay-token": TOKEN}, envelope(CONTACT), source=source)


def test_fifteen_character_allowlist_entry_matches(make_source):
    short = make_source("salesforce", token=TOKEN, allowed_org_ids=[ORG_ID[:15]])
    salesforce.verify({}, envelope(CONTACT), source=short, token=TOKEN)
    assert same_org(ORG_ID, ORG_ID[:15]) and not same_org(ORG_ID, ORG_ID[:14] + "X")


def test_wrong_or_missing_token_fails(source):
    with pytest.raises(SignatureError, match="does not match"):
        salesforce.verify({}, envelope(CONTACT), source=source, token=TOKEN + "x")
    with pytest.raises(SignatureError, match="missing"):
        salesforce.verify({}, envelope(CONTACT), source=source)


def test_foreign_org_fails(source):
    with pytest.raises(SignatureError, match="OrganizationId"):
        salesforce.verify({}, envelope(CONTACT, org_id="00D000000000001AAA"), source=source, token=TOKEN)


def test_unconfigured_source_fails_closed(make_source):
    with pytest.raises(SignatureError, match="no token"):
        salesforce.verify(
            {}, envelope(CONTACT), source=make_source("salesforce", allowed_org_ids=[ORG_ID]), token="x"
        )
    with pytest.raises(SignatureError, match="organization"):
        salesforce.verify({}, envelope(CONTACT), source=make_source("salesforce", token=TOKEN), token=TOKEN)


# -- parsing ----------------------------------------------------------------------------------------


def test_parse_notifications(source):
    contact, opportunity = salesforce.parse(deliver(source, envelope(CONTACT, OPPORTUNITY), "text/xml"))
    assert contact.event_type == "contact.upsert"
    assert contact.object_type == "contact" and contact.source_object_type == "Contact"
    assert contact.object_id == "0035g00000AbCdEAAV"
    assert contact.dedup_key == f"salesforce:{ORG_ID}:04l5g000001XyZ1AAK"
    assert contact.occurred_at == datetime(2024, 5, 1, 10, 15, 30, tzinfo=UTC)
    assert contact.record["Email"] == "Ann.Lee@Acme.com"
    assert contact.record["Title"] is None
    assert contact.attributes["timestamp_from_provider"] is True

    assert opportunity.object_type == "deal" and opportunity.source_object_type == "Opportunity"
    assert opportunity.record["Amount"] == "250000.0"
    assert opportunity.attributes["timestamp_from_provider"] is False


def test_session_id_is_never_kept(source):
    (event,) = salesforce.parse(deliver(source, envelope(CONTACT), "text/xml"))
    assert "SECRET-SESSION" not in event.model_dump_json()


def test_dedup_key_stable_across_redeliveries(source):
    first = salesforce.parse(deliver(source, envelope(CONTACT), "text/xml"))[0]
    retry = salesforce.parse(deliver(source, envelope(CONTACT), "text/xml"))[0]
    assert first.dedup_key == retry.dedup_key


def test_lead_and_account_types(source):
    lead = notification("04l1", "Lead", "<sf:Id>00Q1</sf:Id><sf:Company>Acme</sf:Company>")
    account = notification("04l2", "Account", "<sf:Id>0011</sf:Id><sf:Name>Acme</sf:Name>")
    custom = notification("04l3", "Invoice__c", "<sf:Id>a001</sf:Id>")
    events = salesforce.parse(deliver(source, envelope(lead, account, custom), "text/xml"))
    assert [(e.object_type, e.source_object_type) for e in events] == [
        ("contact", "Lead"),
        ("company", "Account"),
        ("invoice__c", "Invoice__c"),
    ]


def test_ack_is_the_exact_spec_envelope(source):
    events = salesforce.parse(deliver(source, envelope(CONTACT), "text/xml"))
    body, content_type = salesforce.ack_response(events)
    assert body.decode() == SPEC_ACK
    assert content_type == "text/xml"


def test_batch_limit(source):
    many = [notification(f"04l{i:04d}", "Contact", f"<sf:Id>003{i:04d}</sf:Id>") for i in range(101)]
    assert len(salesforce.parse(deliver(source, envelope(*many[:100]), "text/xml"))) == 100
    with pytest.raises(BadRequest, match="too many"):
        salesforce.parse(deliver(source, envelope(*many), "text/xml"))


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<notifications xmlns="http://soap.sforce.com/2005/09/outbound"><OrganizationId>&lol2;</OrganizationId></notifications>"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<notifications xmlns="http://soap.sforce.com/2005/09/outbound"><OrganizationId>&xxe;</OrganizationId></notifications>"""
UTF16_DTD = (
    '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY a "b">]>'
    '<notifications xmlns="http://soap.sforce.com/2005/09/outbound"><OrganizationId>&a;</OrganizationId>'
    "</notifications>"
).encode("utf-16")


@pytest.mark.parametrize("body", [BILLION_LAUGHS, XXE, UTF16_DTD], ids=["billion-laughs", "xxe", "utf16-dtd"])
def test_dtds_and_entities_are_rejected(source, body):
    with pytest.raises(BadRequest, match="not allowed"):
        salesforce.parse(deliver(source, body, "text/xml"))
    with pytest.raises(BadRequest):
        salesforce.verify({}, body, source=source, token=TOKEN)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<notifications",
        b"<foo/>",
        b'<notifications xmlns="http://soap.sforce.com/2005/09/outbound"></notifications>',
        envelope(notification("04l1", "Contact", "").replace('xsi:type="sf:Contact"', "")),
        envelope("<Notification><Id>04l1</Id></Notification>"),
    ],
    ids=["empty", "truncated", "not-outbound", "no-org", "no-type", "no-sobject"],
)
def test_malformed_bodies(source, body):
    with pytest.raises(BadRequest):
        salesforce.parse(deliver(source, body, "text/xml"))


def test_bare_notifications_root_is_accepted(source):
    body = (
        b'<notifications xmlns="http://soap.sforce.com/2005/09/outbound" '
        b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><OrganizationId>' + ORG_ID.encode() + b"</OrganizationId>"
        + notification("04l9", "Contact", "<sf:Id>0039</sf:Id>").encode() + b"</notifications>"
    )  # fmt: skip
    (event,) = salesforce.parse(deliver(source, body, "text/xml"))
    assert event.object_id == "0039"


# -- fixtures (connectors/salesforce/fixtures) --------------------------------------------------------


def test_fixture_contact(source):
    body = fixture_bytes("salesforce", "contact.xml")
    verified = salesforce.verify({"Content-Type": "text/xml; charset=utf-8"}, body, source=source, token=TOKEN)
    (event,) = salesforce.parse(verified)
    assert (event.event_type, event.source_object_type, event.object_id) == (
        "contact.upsert", "Contact", "0035g00000AbCdEAAV")
    assert event.record["Email"] == "ann.lee@acme.com" and event.record["Phone"] is None
    assert event.occurred_at == datetime(2024, 5, 1, 10, 15, 30, tzinfo=UTC)
    assert "FakeSessionId" not in str(event.model_dump()) and "SessionId" not in event.payload
    assert salesforce.ack_response([event])[0].decode() == SPEC_ACK


def test_fixture_opportunity_and_lead(source):
    deal, lead = salesforce.parse(deliver(source, fixture_bytes("salesforce", "opportunity_and_lead.xml"), "text/xml"))
    assert (deal.object_type, deal.record["Amount"]) == ("deal", "250000.0")
    assert deal.occurred_at == datetime(2024, 5, 2, 8, 0, tzinfo=UTC)  # SystemModstamp when no LastModifiedDate
    assert (lead.object_type, lead.source_object_type) == ("contact", "Lead")
    assert lead.occurred_at == datetime(2024, 5, 2, 9, 30, tzinfo=UTC)  # CreatedDate last


def test_fixture_from_an_org_not_allowed_is_rejected(make_source):
    other = make_source("salesforce", token=TOKEN, allowed_org_ids=["00D000000000001"])
    with pytest.raises(SignatureError, match="OrganizationId"):
        salesforce.verify({}, fixture_bytes("salesforce", "contact.xml"), source=other, token=TOKEN)
