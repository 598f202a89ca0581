"""Smart recall: exact entity-scoped scoring with zero leakage, org-wide Milvus search re-checked in SQL."""

from __future__ import annotations

from typing import Any

import pytest

from memrelay.engine.memory.recall import DEEP_NOTE
from memrelay.engine.stores.identity import Identifiers
from tests.engine.test_memories import memorize, recall

PEOPLE = [("alice", "Alice Walker", "$50,000"), ("bob", "Bob Walker", "$60,000"), ("carol", "Carol Walker", "$70,000")]


def _three_near_identical_contacts(api: Any) -> dict[str, str]:
    ids = {}
    for key, name, budget in PEOPLE:
        out = memorize(api, f"{name} has a budget of {budget} for the analytics rollout. {name} prefers email "
                            f"over phone calls. {name} wants a demo of the reporting module next month.",
                       email=f"{key}@walker.com", timestamp="2026-02-01T12:00:00Z")
        ids[key] = out["recordId"]
    return ids


def test_scoped_recall_never_leaks_between_near_identical_entities(api, backend):
    ids = _three_near_identical_contacts(api)
    org_wide = recall(api, "budget for the analytics rollout", limit=10)["results"]
    assert {r["recordId"] for r in org_wide} == set(ids.values())  # they really are near-identical
    for key, name, budget in PEOPLE:
        res = recall(api, "What is the budget for the analytics rollout?", email=f"{key}@walker.com", limit=10)
        assert res["scope"] == "record" and len(res["results"]) == 3
        assert {r["recordId"] for r in res["results"]} == {ids[key]}
        assert all(name in r["text"] for r in res["results"])
        assert budget in res["results"][0]["text"]


def test_scoped_recall_sees_new_memories_at_once_and_filters_tags(api):
    memorize(api, "Plays chess competitively.", email="dan@eta.com", tags=["hobby"])
    first = recall(api, "board games", email="dan@eta.com")["results"]
    assert len(first) == 1  # now cached
    memorize(api, "Collects vintage board games.", email="dan@eta.com", tags=["collection"])
    second = recall(api, "board games", email="dan@eta.com")["results"]
    assert len(second) == 2  # the per-record cache is invalidated by the write
    tagged = recall(api, "board games", email="dan@eta.com", tags=["hobby"])["results"]
    assert [r["text"] for r in tagged] == ["Plays chess competitively."]
    assert recall(api, "board games", email="dan@eta.com", minScore=0.99)["results"] == []


def test_org_wide_recall_rechecks_sql_and_stays_in_the_org(api, other_api, engine, backend):
    mine = memorize(api, "Migrating the warehouse to Snowflake this quarter.", email="eve@theta.com")
    memorize(other_api, "Migrating the warehouse to Snowflake this quarter.", email="eve@theta.com")
    res = recall(api, "snowflake warehouse migration")
    assert res["scope"] == "org" and [r["memoryId"] for r in res["results"]] == mine["memoryIds"]
    engine.records.soft_delete(api.org_id, Identifiers(email="eve@theta.com"))
    assert recall(api, "snowflake warehouse migration")["results"] == []  # Milvus still has it; SQL says no
    assert len(recall(other_api, "snowflake warehouse migration")["results"]) == 1
    r = api.post("/api/v1/smart-recall", json={"query": "snowflake", "email": "eve@theta.com"})
    assert r.status_code == 404


def test_group_by_record_property_values_and_type_filters(api):
    _three_near_identical_contacts(api)
    memorize(api, "Walker Inc has a budget of $5M for analytics.", website_url="walker.com", type="company")
    res = recall(api, "analytics budget", groupByRecord=True, limit=2, include_property_values=True)
    groups = res["recordGroups"]
    assert len(groups) == 2 and groups[0]["topScore"] >= groups[1]["topScore"]
    assert all(1 <= len(g["matches"]) <= 3 and g["matchCount"] >= len(g["matches"]) for g in groups)
    assert set(res["records"]) == {g["recordId"] for g in groups} and "keys" in res["records"][groups[0]["recordId"]]
    companies = recall(api, "analytics budget", type="company")["results"]
    assert {r["type"] for r in companies} == {"company"}
    contacts = recall(api, "analytics budget", collectionNames=["Contact"])["results"]
    assert contacts and {r["type"] for r in contacts} == {"contact"}
    r = api.post("/api/v1/smart-recall", json={"query": "x", "collectionNames": ["Nope"]})
    assert r.status_code == 422


@pytest.mark.parametrize("scoped", [True, False])
def test_deep_mode_without_llm_answers_fast_and_says_so(api, scoped):
    memorize(api, "Renewal is due in September.", email="fay@iota.com")
    extra = {"email": "fay@iota.com"} if scoped else {}
    res = recall(api, "when is the renewal", mode="deep", **extra)
    assert res["mode"] == "fast" and res["note"] == DEEP_NOTE and res["results"]


def test_scoped_scoring_is_exact(api, engine):
    """Scoped recall scores every memory of the record exactly (its speed is measured in bench_semantic.py)."""
    out = memorize(api, "\n".join(f"- Fact number {i} about topic {i % 7}." for i in range(200)),
                   email="gus@kappa.com")
    assert out["memoriesCreated"] >= 150
    q = engine.embedder.embed(["topic 3"])[0]
    from memrelay.engine.memory.recall import RecallRequest

    req = RecallRequest(query="topic 3", limit=5)
    with engine.db.read() as s:
        engine.recall.scoped_matches(s, api.org_id, out["recordId"], q, req)  # warm the cache
        got = engine.recall.scoped_matches(s, api.org_id, out["recordId"], q, req)
    assert len(got) == 5
    scores = [m["score"] for m in got]
    assert scores == sorted(scores, reverse=True)
    fresh = engine.embedder.embed([m["text"] for m in got]) @ q
    assert [round(m["similarity"], 5) for m in got] == [round(float(x), 5) for x in fresh]
