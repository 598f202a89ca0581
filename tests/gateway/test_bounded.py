"""Bounded everything (issue 17, item 4): per-process caches have a size limit and never hold unknown ids;
webhook receivers are rate limited per client address and per source; /readyz detail is for admins only."""

from __future__ import annotations

import pytest

from memrelay.engine.core.boundedcache import BoundedTTLCache
from memrelay.engine.stores import sources as sources_mod
from tests.conftest import make_api


def test_unknown_source_ids_are_not_cached(api, engine):
    before = len(engine.sources._cache)
    for i in range(300):
        assert api.client.post(f"/webhooks/form/src_unknown{i}", data={"a": "b"}).status_code == 404
    assert len(engine.sources._cache) == before


def test_known_sources_are_cached_up_to_the_limit(engine, monkeypatch):
    org = engine.tenancy.get_or_create_org("cache-limit")
    made = [engine.sources.create(org.id, connector="form")["id"] for _ in range(12)]
    monkeypatch.setattr(engine.sources, "_cache", BoundedTTLCache(5, sources_mod.LOOKUP_TTL_S))
    for sid in made:
        assert engine.sources.lookup(sid).id == sid
    assert len(engine.sources._cache) == 5


def test_cache_evicts_least_recently_used_and_expires():
    now = [0.0]
    cache: BoundedTTLCache[str, int] = BoundedTTLCache(2, 10, clock=lambda: now[0])
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3)
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3
    now[0] = 11
    assert cache.get("a") is None and len(cache) == 1


def test_a_delivery_to_a_source_deleted_elsewhere_is_a_404(api, engine):
    src = api.post("/api/v1/sources", json={"connector": "form"}).json["data"]
    assert api.client.post(src["webhookPath"], data={"email": "a@acme.io"}).status_code == 202  # cached now
    from memrelay.engine.stores.sources import Sources

    other_process = Sources(engine.db, redact=engine.sources.redact, token_in_path=engine.sources.token_in_path)
    other_process.delete(api.org_id, src["id"])
    r = api.client.post(src["webhookPath"], data={"email": "b@acme.io"})
    assert r.status_code == 404 and r.json["error"]["code"] == "not_found"


@pytest.fixture
def limited_app(settings, engine):
    from memrelay.gateway.app import create_app

    return create_app(settings.model_copy(update={"webhook_rate_limit_per_address": 5,
                                                  "webhook_rate_limit_per_source": 8}), services=engine)


def test_webhook_receivers_are_limited_per_client_address(limited_app, engine):
    api = make_api(limited_app, engine)
    client = limited_app.test_client()
    codes = [client.post(f"/webhooks/form/src_nope{i}", data={"a": "b"},
                         environ_base={"REMOTE_ADDR": "192.0.2.7"}).status_code for i in range(7)]
    assert codes[:5] == [404] * 5 and codes[5:] == [429, 429]
    limited = client.post("/webhooks/form/src_nope", environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert limited.json["error"]["code"] == "rate_limited" and int(limited.headers["Retry-After"]) >= 1
    other = client.post("/webhooks/form/src_nope", environ_base={"REMOTE_ADDR": "192.0.2.8"})
    assert other.status_code == 404  # another address has its own budget
    assert api.get("/api/v1/me").status_code == 200  # the API's own per-key limit is separate


def test_webhook_receivers_are_limited_per_source(limited_app, engine):
    api = make_api(limited_app, engine)
    src = api.post("/api/v1/sources", json={"connector": "form"}).json["data"]
    codes = [limited_app.test_client().post(src["webhookPath"], data={"email": f"p{i}@acme.io"},
                                            environ_base={"REMOTE_ADDR": f"198.51.100.{i}"}).status_code
             for i in range(10)]
    assert codes[:8] == [202] * 8 and codes[8:] == [429, 429]


def test_readyz_detail_only_for_admin_keys(app, engine):
    probe = app.test_client().get("/readyz")
    assert set(probe.json) == {"status"}
    for scopes in (("read",), ("read", "write")):
        key = make_api(app, engine, scopes=scopes).key
        assert set(app.test_client().get("/readyz", headers={"X-API-Key": key}).json) == {"status"}
    assert set(app.test_client().get("/readyz", headers={"X-API-Key": "mr_wrong"}).json) == {"status"}
    admin = make_api(app, engine).key
    detail = app.test_client().get("/readyz", headers={"X-API-Key": admin}).json
    assert {"sql", "redis", "vector_index", "workers"} <= set(detail["checks"])
