"""Semantic endpoints over HTTP: digest, similar, segment, scopes and org isolation."""

from __future__ import annotations

from memrelay.engine.core.tokens import count_tokens
from tests.conftest import make_api
from tests.engine.test_memories import memorize


def _acme(api) -> None:  # type: ignore[no-untyped-def]
    memorize(api, "Acme has 250 employees. Acme is headquartered in Austin.", website_url="acme.com",
             timestamp="2026-01-10T00:00:00Z")
    memorize(api, "Jane Doe is the VP Engineering at Acme. Her title is VP Engineering. She evaluates our "
                  "analytics product and wants pricing by Friday.", email="jane@acme.com",
             timestamp="2026-03-01T00:00:00Z")
    memorize(api, "Jane asked for a security review of the analytics product.", email="jane@acme.com",
             timestamp="2026-03-05T00:00:00Z")


def test_digest_compiles_properties_memories_and_linked_records(api):
    _acme(api)
    r = api.post("/api/v1/smart-memory-digest", json={"email": "jane@acme.com", "tokenBudget": 2000})
    assert r.status_code == 200, r.json
    d = r.json["data"]
    md = d["markdown"]
    assert md.startswith("# Contact: ") and "## Properties" in md and "**job_title**: VP Engineering" in md
    assert "old" in md.split("**job_title**")[1].splitlines()[0]  # freshness of the value
    assert "## Recent memories" in md and md.index("security review") < md.index("pricing by Friday")
    assert "## Linked records" in md and "company" in md.split("## Linked records")[1]  # via email domain
    assert d["truncated"] is False and d["tokenEstimate"] == count_tokens(md) <= 2000
    company = api.post("/api/v1/smart-memory-digest", json={"website_url": "acme.com"}).json["data"]
    assert "jane@acme.com" in company["markdown"].split("## Linked records")[1]


def test_digest_respects_a_small_token_budget(api):
    _acme(api)
    d = api.post("/api/v1/smart-memory-digest", json={"email": "jane@acme.com", "tokenBudget": 60}).json["data"]
    assert d["truncated"] is True and d["tokenEstimate"] == count_tokens(d["markdown"]) <= 60
    r = api.post("/api/v1/smart-memory-digest", json={"email": "nobody@acme.com"})
    assert r.status_code == 404


def _customers(api) -> None:  # type: ignore[no-untyped-def]
    for i, text in enumerate([
        "Runs PostgreSQL on AWS and evaluates our analytics dashboards for the finance team.",
        "Runs PostgreSQL on AWS and evaluates our analytics dashboards for the sales team.",
        "Runs PostgreSQL on Azure and evaluates analytics dashboards for marketing.",
        "Breeds horses on a farm and sells organic apples at weekend markets.",
    ]):
        memorize(api, text, email=f"user{i}@org{i}.com")


def test_similar_ranks_records_into_tiers(api):
    _customers(api)
    r = api.post("/api/v1/similar", json={"email": "user0@org0.com", "dimensions": "memories", "topK": 5})
    assert r.status_code == 200, r.json
    res = r.json["data"]["results"]
    assert res[0]["keys"]["email"] == "user1@org1.com" and res[0]["tier"] == "very_similar"
    assert "user3@org3.com" not in [x["keys"]["email"] for x in res]  # the horse breeder is unlike the seed
    assert all(x["score"] >= 0.3 for x in res) and res[0]["recordId"] in r.json["data"]["tiers"]["very_similar"]
    hybrid = api.post("/api/v1/similar", json={"email": "user0@org0.com", "topK": 2}).json["data"]
    assert len(hybrid["results"]) <= 2 and set(hybrid["results"][0]["scores"]) <= {"memories", "properties"}


def test_segment_by_text_pages_each_tier(api):
    _customers(api)
    r = api.post("/api/v1/segment", json={"text": "PostgreSQL on AWS analytics dashboards", "dimensions": "memories",
                                          "pageSize": 1})
    assert r.status_code == 200, r.json
    tiers = {name: t for name, t in r.json["data"]["tiers"].items() if name != "not_similar"}
    assert sum(t["count"] for t in tiers.values()) == r.json["data"]["total"] >= 3
    assert all(len(t["items"]) <= 1 and t["hasMore"] == (t["count"] > 1) for t in tiers.values())
    assert api.post("/api/v1/segment", json={}).status_code == 400


def test_scopes_and_org_isolation(app, engine, api, other_api):
    reader = make_api(app, engine, scopes=("read",))
    r = reader.post("/api/v1/memorize", json={"content": "x y z", "email": "a@b.com", "tags": ["t"]})
    assert r.status_code == 403
    memorize(api, "Secret roadmap: launching in Tokyo.", email="ceo@omega.com")
    assert other_api.post("/api/v1/smart-recall", json={"query": "roadmap Tokyo"}).json["data"]["results"] == []
    assert other_api.post("/api/v1/smart-recall", json={"query": "roadmap", "email": "ceo@omega.com"}).status_code == 404
    assert other_api.post("/api/v1/smart-memory-digest", json={"email": "ceo@omega.com"}).status_code == 404
    assert other_api.post("/api/v1/similar", json={"email": "ceo@omega.com"}).status_code == 404


def test_similar_and_segment_on_a_small_org_never_ask_for_an_on_demand_milvus(settings, tmp_path):
    from memrelay.composition import Services
    from memrelay.engine.stores.db.database import Database
    from memrelay.gateway.app import create_app

    wanted = tmp_path / "milvus.wanted"  # what `memrelay up` watches to start Milvus Lite on demand
    on_demand = settings.model_copy(update={"milvus_uri": "http://127.0.0.1:9", "milvus_wanted_file": str(wanted)})
    services = Services(on_demand, db=Database(on_demand.sql_url))
    services.vector_index.start_wait_s = 1.0  # had it been asked for, the call would fail at once, not in 90 s
    try:
        api = make_api(create_app(on_demand, services=services), services)
        _customers(api)
        r = api.post("/api/v1/similar", json={"email": "user0@org0.com", "dimensions": "memories", "topK": 5})
        assert r.status_code == 200, r.json
        res = r.json["data"]["results"]
        assert res[0]["keys"]["email"] == "user1@org1.com" and res[0]["tier"] == "very_similar"
        assert "user3@org3.com" not in [x["keys"]["email"] for x in res]
        seg = api.post("/api/v1/segment", json={"text": "PostgreSQL on AWS analytics dashboards",
                                                "dimensions": "memories"})
        assert seg.status_code == 200, seg.json
        assert seg.json["data"]["total"] >= 3
        assert not wanted.exists()  # answered from the org's exact index: Milvus was never asked for
    finally:
        services.close()
