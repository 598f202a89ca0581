"""Identity over HTTP (issue 11), from Personize's documents (reference/personize/003 and 004).

Deals are keyed by ``customKeyName: dealId`` with the primary contact's email as a secondary key; every
write path (upsert, memorize, batch-memorize, webhook events) keeps two deals that share a contact
email as two records. The documented type spelling (``type: "Contact"``) works on every read; bad
identifiers answer 404 (keys tried), 409 (candidates) or 422 (known types), never 500.
"""

from __future__ import annotations

import itertools
import textwrap
from typing import Any

import pytest

EMAIL = "pat@acme.com"
DEAL_MAPPING = textwrap.dedent("""
    version: 2
    objects:
      deal:
        entity_type: deal
        keys:
          email: {source: email, transform: [strip, lower]}
          custom: {dealId: deal_id}
        properties:
          stage: stage
""")


class Writes:
    """The four documented ways a deal reaches memory."""

    def __init__(self, api: Any, run_jobs: Any):
        self.api, self.run_jobs = api, run_jobs
        self.source: dict[str, Any] | None = None

    def upsert(self, deal: str, stage: str) -> None:
        r = self.api.post("/api/v1/upsert", json={"type": "Deal", "customKeyName": "dealId", "customKeyValue": deal,
                                                  "email": EMAIL, "properties": {"stage": stage}})
        assert r.status_code == 200, r.json

    def memorize(self, deal: str, stage: str) -> None:
        r = self.api.post("/api/v1/memorize", json={
            "content": f"Deal {deal}: the buyer moved it to {stage} after the security review.",
            "type": "Deal", "customKeyName": "dealId", "customKeyValue": deal, "email": EMAIL, "tags": ["crm"]})
        assert r.status_code == 200, r.json

    def batch(self, deal: str, stage: str) -> None:
        r = self.api.post("/api/v1/batch-memorize", json={
            "source": "Hubspot",
            "mapping": {"entityType": "Deal", "email": "contact_email", "customKeyName": "dealId",
                        "customKey": "id", "properties": {"stage": {"sourceField": "stage"}}},
            "rows": [{"id": deal, "contact_email": EMAIL, "stage": stage}]})
        assert r.status_code == 202, r.json
        self.run_jobs()

    def webhook(self, deal: str, stage: str) -> None:
        if self.source is None:
            self.source = self.api.post("/api/v1/sources", json={"connector": "generic", "name": "crm",
                                                                 "mapping": DEAL_MAPPING}).json["data"]
        assert self.source is not None
        r = self.api.client.post(self.source["webhookPath"], json={"object": "deal", "deal_id": deal,
                                                                   "email": EMAIL, "stage": stage})
        assert r.status_code == 202, r.json
        self.run_jobs()


def _recall_deal(api: Any, deal: str) -> dict[str, Any]:
    r = api.post("/api/v1/recall", json={"query": "deal", "type": "Deal", "customKeyName": "dealId",
                                         "customKeyValue": deal})
    assert r.status_code == 200, r.json
    return r.json["data"]


ORDERS = [("upsert", "memorize", "batch", "webhook"), ("webhook", "batch", "memorize", "upsert"),
          ("batch", "upsert", "webhook", "memorize"), ("memorize", "webhook", "upsert", "batch")]


@pytest.mark.parametrize("order", ORDERS, ids=["-".join(o) for o in ORDERS])
def test_two_deals_sharing_a_contact_email_stay_two_records(api: Any, run_jobs: Any, order: tuple[str, ...]) -> None:
    writes = Writes(api, run_jobs)
    stages = itertools.cycle(["qualified", "presentation", "contract_sent", "closed_won"])
    for path in order:
        for deal in ("D-100", "D-101") if order.index(path) % 2 == 0 else ("D-101", "D-100"):
            getattr(writes, path)(deal, next(stages))
    d100, d101 = _recall_deal(api, "D-100"), _recall_deal(api, "D-101")
    assert d100["recordId"] != d101["recordId"]
    assert d100["keys"] == {"customKeys": {"dealId": "D-100"}, "email": EMAIL}
    assert d101["keys"] == {"customKeys": {"dealId": "D-101"}, "email": EMAIL}
    assert d100["primaryKey"] == "custom:dealId:D-100" and d101["primaryKey"] == "custom:dealId:D-101"
    found = api.post("/api/v1/search", json={"type": "Deal", "email": EMAIL, "returnRecords": True}).json["data"]
    assert sorted(r["recordId"] for r in found["results"]) == sorted([d100["recordId"], d101["recordId"]])


def test_the_documented_type_spelling_works_on_every_read(api: Any) -> None:
    r = api.post("/api/v1/memorize", json={"content": "Sarah Chen is evaluating SOC2 compliance tools.",
                                           "email": "sarah.chen@initech.com", "type": "Contact",
                                           "tags": ["call-notes"]})
    assert r.status_code == 200, r.json
    who = {"email": "sarah.chen@initech.com", "type": "Contact"}
    recall = api.post("/api/v1/recall", json={"query": "what do we know?", **who})
    assert recall.status_code == 200 and recall.json["data"]["recordId"] == r.json["data"]["recordId"]
    smart = api.post("/api/v1/smart-recall", json={"query": "SOC2 compliance", **who})
    assert smart.status_code == 200, smart.json
    assert "SOC2" in smart.json["data"]["results"][0]["text"]
    digest = api.post("/api/v1/smart-memory-digest", json={**who, "token_budget": 2000})
    assert digest.status_code == 200 and digest.json["data"]["recordId"] == r.json["data"]["recordId"]


def test_an_ambiguous_secondary_key_answers_409_naming_the_candidates(api: Any) -> None:
    ids = []
    for deal in ("D-100", "D-101"):
        ids.append(api.post("/api/v1/upsert", json={"type": "Deal", "customKeyName": "dealId", "customKeyValue": deal,
                                                    "email": EMAIL, "properties": {"stage": "qualified"}}
                            ).json["data"]["recordId"])
    for path, body in (("/api/v1/recall", {"query": "deal"}), ("/api/v1/smart-memory-digest", {})):
        r = api.post(path, json={**body, "type": "Deal", "email": EMAIL})
        assert r.status_code == 409, (path, r.json)
        assert sorted(c["recordId"] for c in r.json["error"]["details"]["candidates"]) == sorted(ids)
    # smart recall by a secondary key answers with all matches (004: deals found by their contact's email)
    r = api.post("/api/v1/smart-recall", json={"query": "deal", "type": "Deal", "email": EMAIL})
    assert r.status_code == 200, r.json
    assert sorted(x["recordId"] for x in r.json["data"]["scopeRecords"]) == sorted(ids)
    r = api.post("/api/v1/upsert", json={"type": "Deal", "email": EMAIL, "properties": {"stage": "closed_lost"}})
    assert r.status_code == 409


def test_an_identifier_that_names_no_record_answers_404_with_the_keys_tried(api: Any) -> None:
    r = api.post("/api/v1/recall", json={"query": "x", "type": "Student", "customKeyName": "studentNumber",
                                         "customKeyValue": "S-1"})
    assert r.status_code == 422  # no such type yet
    assert api.post("/api/v1/entities", json={"name": "Student", "primaryKeyField": "studentNumber",
                                              "secondaryKeys": ["email"]}).status_code == 201
    r = api.post("/api/v1/recall", json={"query": "x", "type": "Student", "customKeyName": "studentNumber",
                                         "customKeyValue": "S-1", "email": "alice@university.edu"})
    assert r.status_code == 404
    assert r.json["error"]["details"]["tried"] == [{"key": "studentNumber", "value": "S-1"},
                                                   {"key": "email", "value": "alice@university.edu"}]


def test_an_unknown_entity_type_answers_422_listing_the_known_ones(api: Any) -> None:
    for path, body in (("/api/v1/recall", {"query": "x"}), ("/api/v1/smart-recall", {"query": "x"}),
                       ("/api/v1/smart-memory-digest", {}), ("/api/v1/upsert", {"properties": {}}),
                       ("/api/v1/memorize", {"content": "hello", "tags": ["t"]})):
        r = api.post(path, json={**body, "type": "Spaceship", "email": "x@acme.com"})
        assert r.status_code == 422, (path, r.json)
        assert {"contact", "company", "deal"} <= set(r.json["error"]["details"]["known"]), path


def test_a_custom_type_keyed_by_its_declared_key_is_found_by_either_key(api: Any) -> None:
    made = api.post("/api/v1/entities", json={"name": "Student", "primaryKeyField": "studentNumber",
                                              "secondaryKeys": ["email"]})
    assert made.status_code == 201 and made.json["data"]["primaryKeyField"] == "studentNumber"
    r = api.post("/api/v1/memorize", json={"content": "Student: Alice Chen, enrolled in Computer Science.",
                                           "customKeyName": "studentNumber", "customKeyValue": "S-2024-1234",
                                           "email": "alice@university.edu", "type": "Student", "tags": ["sis"]})
    assert r.status_code == 200, r.json
    by_number = api.post("/api/v1/recall", json={"query": "Academic record", "type": "Student",
                                                 "customKeyName": "studentNumber", "customKeyValue": "S-2024-1234"})
    by_email = api.post("/api/v1/recall", json={"query": "Academic record", "type": "Student",
                                                "email": "alice@university.edu"})
    assert by_number.status_code == by_email.status_code == 200
    assert by_number.json["data"]["recordId"] == by_email.json["data"]["recordId"] == r.json["data"]["recordId"]
