"""004's key table (Deal: primary ``customKeyName: 'dealId'``, secondary ``email``) under every write path, and
issue 11's bad-input rules (404 naming the keys tried, 409 naming the candidates, 422 listing known types).

The two-deals-one-email case: D-100 and D-101 share their primary contact's email. Whatever order upserts,
memorize, batch memorize and webhook events arrive in, there are exactly two Deal records, each still found by
its own dealId and holding its own values; the shared email finds both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.contract.conftest import Personize, prop

EMAIL = "pat@buyer.com"
DEALS = {"D-100": "Buyer expansion", "D-101": "Buyer renewal"}


def by_upsert(pz: Personize, deal: str) -> None:
    # 001 "Structured upsert → POST /api/v1/upsert"; identifiers spelled as in 004
    pz.upsert({"deal_name": DEALS[deal], "stage": "qualified"}, type="Deal", customKeyName="dealId",
              customKeyValue=deal, email=EMAIL)


def by_memorize(pz: Personize, deal: str) -> None:
    pz.memorize(f"Deal {deal}: {DEALS[deal]}. Next step: legal review for {deal}.", customKeyName="dealId",
                customKeyValue=deal, email=EMAIL, collectionName="Deal")


def by_batch(pz: Personize, deal: str) -> None:
    pz.post("/batch-memorize", {"items": [{"content": f"Deal {deal} batch sync: value $50000 for {deal}.",
                                           "customKeyName": "dealId", "customKeyValue": deal, "email": EMAIL,
                                           "collectionName": "Deal", "extractMemories": True}]})


def by_webhook(pz: Personize, deal: str) -> None:
    # memrelay's generic inbound webhook (what n8n/Zapier post to), authorised by the org's API key. Personize
    # documents no inbound-webhook body for deals; the most literal one carries the deal's dealId (004's key
    # name), its deal_id spelling, and the contact email as the secondary key.
    source = pz.post("/api/v1/sources", {"connector": "generic", "name": "crm-deals"})
    r = pz.send("POST", f"/webhooks/generic/{source['id']}",
                {"object_type": "deal", "dealId": deal, "deal_id": deal, "email": EMAIL,
                 "deal_name": DEALS[deal], "stage": "qualified"})
    assert 200 <= r.status_code < 300, r.get_json()


WRITERS: dict[str, Callable[[Personize, str], None]] = {
    "upsert": by_upsert, "memorize": by_memorize, "batch": by_batch, "webhook": by_webhook}
ORDERS = [("upsert", "memorize", "batch", "webhook"), ("memorize", "batch", "webhook", "upsert"),
          ("batch", "webhook", "upsert", "memorize"), ("webhook", "upsert", "memorize", "batch"),
          ("webhook", "batch", "memorize", "upsert"), ("memorize", "upsert", "webhook", "batch")]


@pytest.mark.parametrize("order", ORDERS, ids=["-".join(o) for o in ORDERS])
def test_two_deals_sharing_an_email_stay_two_records(pz: Personize, settle: Callable[[], None],
                                                     order: tuple[str, ...]) -> None:
    for step, channel in enumerate(order):
        deals = list(DEALS) if step % 2 == 0 else list(reversed(DEALS))  # interleave which deal comes first
        for deal in deals:
            WRITERS[channel](pz, deal)
        settle()
    ids = {}
    for deal, name in DEALS.items():
        found = pz.post("/search", {"type": "Deal", "customKeyName": "dealId", "customKeyValue": deal,
                                    "returnRecords": True})
        assert found["totalMatched"] == 1, (deal, found)
        ((rid, props),) = found["records"].items()
        assert prop(props, "deal_name") == name, (deal, props)
        ids[deal] = rid
    assert ids["D-100"] != ids["D-101"], ids
    by_email = pz.post("/search", {"type": "Deal", "email": EMAIL, "returnRecords": True})
    assert set(by_email["records"]) == set(ids.values()), by_email  # the secondary key finds both
    assert pz.post("/search", {"type": "Deal", "returnRecords": True})["totalMatched"] == 2
    digest = pz.post("/smart-memory-digest", {"type": "Deal", "customKeyName": "dealId", "customKeyValue": "D-100",
                                              "token_budget": 2000})
    assert "D-100" in digest["compiledContext"] and "D-101" not in digest["compiledContext"], digest


def test_second_deal_with_same_email_is_created_with_its_own_key(pz: Personize) -> None:
    first = pz.upsert({"deal_name": "A"}, type="Deal", customKeyName="dealId", customKeyValue="D-100", email=EMAIL)
    second = pz.upsert({"deal_name": "B"}, type="Deal", customKeyName="dealId", customKeyValue="D-101", email=EMAIL)
    assert first["recordId"] != second["recordId"], (first, second)
    again = pz.upsert({"stage": "closed_won"}, type="Deal", customKeyName="dealId", customKeyValue="D-100", email=EMAIL)
    assert again["recordId"] == first["recordId"], again


# --- issue 11 "Bad input" -------------------------------------------------------------------------------------
def test_identifier_naming_no_record_is_404_with_the_keys_tried(pz: Personize) -> None:
    body = pz.fails("POST", "/recall", {"query": "x", "type": "Contact", "email": "ghost@nowhere.io"}, 404)
    assert "ghost@nowhere.io" in str(body), body


def test_identifier_naming_several_records_is_409_with_the_candidates(pz: Personize) -> None:
    for deal in DEALS:
        by_upsert(pz, deal)
    ids = {pz.record_id(type="Deal", customKeyName="dealId", customKeyValue=d) for d in DEALS}
    body = pz.fails("POST", "/recall", {"query": "deal", "type": "Deal", "email": EMAIL}, 409)
    assert all(rid in str(body) for rid in ids), body


def test_unknown_entity_type_is_422_listing_the_known_ones(pz: Personize) -> None:
    body: dict[str, Any] = pz.fails("POST", "/recall", {"query": "x", "type": "Wizard", "email": "a@b.co"}, 422)
    assert "contact" in str(body).lower() and "company" in str(body).lower(), body
