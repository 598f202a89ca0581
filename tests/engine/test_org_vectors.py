"""Exact in-process org-wide search (small orgs) and the hand-over to Milvus (large orgs)."""

from __future__ import annotations

from memrelay.engine.memory.memories import MemorizeRequest
from memrelay.engine.memory.org_vectors import ExactOrgIndex


def _memorize(engine, org_id, text, email, type_="contact"):
    return engine.memories.memorize(org_id, MemorizeRequest(content=text, email=email, type=type_, tags=["t"]))


def test_exact_search_ranks_filters_refreshes_and_hands_over(engine):
    org = engine.tenancy.create_org("exact-org").id
    other = engine.tenancy.create_org("exact-other").id
    a = _memorize(engine, org, "They run PostgreSQL on AWS.", "a@x.io")["memoryIds"][0]
    b = _memorize(engine, org, "Lunch was pizza with the team.", "b@x.io")["memoryIds"][0]
    _memorize(engine, other, "They run PostgreSQL on AWS too.", "c@y.io")
    emb = engine.embedder
    idx = ExactOrgIndex(refresh_s=0.0)
    q = emb.embed(["which database do they run"])[0]
    with engine.db.read() as s:
        ids = idx.search(s, org, q, limit=5, embedder=emb.name, dim=emb.dim)
    assert ids[0] == a and set(ids) == {a, b}  # the other org's memory is not in this org's matrix
    with engine.db.read() as s:
        assert idx.search(s, org, q, limit=5, embedder=emb.name, dim=emb.dim, entity_types=["company"]) == []
    c = _memorize(engine, org, "They moved the database to MySQL.", "d@x.io")["memoryIds"][0]
    with engine.db.read() as s:  # incremental refresh picks up the new memory
        assert c in idx.search(s, org, q, limit=5, embedder=emb.name, dim=emb.dim)
    small = ExactOrgIndex(max_rows=2)
    with engine.db.read() as s:
        assert small.search(s, org, q, limit=5, embedder=emb.name, dim=emb.dim) is None  # too big: Milvus


def test_org_wide_recall_uses_milvus_above_the_threshold(api, engine):
    mid = api.post("/api/v1/memorize", json={"content": "Renewal is blocked on the SOC 2 report.",
                                             "email": "sec@q.io", "tags": ["t"]}).json["data"]["memoryIds"][0]
    engine.index.reconcile()
    engine.recall.exact = ExactOrgIndex(max_rows=0)
    r = api.post("/api/v1/smart-recall", json={"query": "what blocks the renewal"}).json["data"]
    assert r["results"][0]["memoryId"] == mid
