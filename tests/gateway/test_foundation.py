"""Gateway skeleton: errors, auth, scopes, rate limits, request ids, health, docs, metrics."""

from __future__ import annotations

import pytest
from rq import Worker

from tests.conftest import make_api


def test_healthz_is_public(app):
    r = app.test_client().get("/healthz")
    assert r.status_code == 200 and r.json == {"status": "ok"}


def test_unknown_route_is_json_404(app):
    r = app.test_client().get("/nope")
    assert r.status_code == 404
    assert r.json["error"]["code"] == "not_found" and r.json["error"]["requestId"]


def test_wrong_method_is_json_405(api):
    r = api.post("/api/v1/me", json={})
    assert r.status_code == 405
    assert r.json["error"]["code"] == "method_not_allowed"
    assert "GET" in r.json["error"]["details"]["allowed"]


def test_missing_and_invalid_keys_are_401(app):
    c = app.test_client()
    r = c.get("/api/v1/me")
    assert r.status_code == 401 and "Bearer" in r.json["error"]["message"]
    r = c.get("/api/v1/me", headers={"X-API-Key": "mr_not-a-key"})
    assert r.status_code == 401 and r.json["error"]["code"] == "unauthorized"


def test_me_with_bearer_and_x_api_key(api):
    r = api.get("/api/v1/me")
    assert r.status_code == 200 and r.json["success"] is True
    assert r.json["data"]["org"]["id"] == api.org_id
    assert set(r.json["data"]["key"]["scopes"]) == {"read", "write", "admin"}
    assert r.json["data"]["rateLimit"]["requestsPerMinute"] > 0
    r2 = api.client.get("/api/v1/me", headers={"X-API-Key": api.key})
    assert r2.status_code == 200 and r2.json["data"]["org"]["id"] == api.org_id


def test_request_id_is_echoed(api):
    r = api.get("/api/v1/me", headers={"X-Request-Id": "req-123"})
    assert r.headers["X-Request-Id"] == "req-123"
    assert api.get("/api/v1/me").headers["X-Request-Id"]


def test_scope_is_enforced(app, engine):
    reader = make_api(app, engine, scopes=("read",))
    r = reader.post("/api/v1/keys", json={"name": "x"})
    assert r.status_code == 403 and r.json["error"]["code"] == "forbidden"


def test_revoked_key_is_rejected(api):
    created = api.post("/api/v1/keys", json={"name": "temp", "scopes": ["read"]})
    assert created.status_code == 201
    new_key, key_id = created.json["data"]["key"], created.json["data"]["id"]
    c = api.client
    assert c.get("/api/v1/me", headers={"X-API-Key": new_key}).status_code == 200
    assert api.delete(f"/api/v1/keys/{key_id}").status_code == 200
    assert c.get("/api/v1/me", headers={"X-API-Key": new_key}).status_code == 401


def test_keys_listing_never_shows_secrets_or_other_orgs(api, other_api):
    listed = api.get("/api/v1/keys").json["data"]["keys"]
    assert listed and all("key" not in k and "key_hash" not in k for k in listed)
    other_ids = {k["id"] for k in other_api.get("/api/v1/keys").json["data"]["keys"]}
    assert other_ids.isdisjoint({k["id"] for k in listed})
    # revoking another org's key is a 404, never a success
    some_other = next(iter(other_ids))
    assert api.delete(f"/api/v1/keys/{some_other}").status_code == 404


def test_malformed_json_is_400_naming_the_problem(api):
    r = api.post("/api/v1/keys", data=b'{"name": ', headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "malformed JSON" in r.json["error"]["message"]
    r = api.post("/api/v1/keys", json=[1, 2])
    assert r.status_code == 400 and "object" in r.json["error"]["message"]


def test_invalid_body_is_422_naming_the_field(api):
    r = api.post("/api/v1/keys", json={"rateLimitPerMinute": "lots"})
    assert r.status_code == 422 and "rateLimitPerMinute" in r.json["error"]["message"]


def test_oversize_body_is_413(api, settings):
    r = api.post("/api/v1/keys", data=b"x" * (settings.max_request_bytes + 1),
                 headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json["error"]["code"] == "payload_too_large"


@pytest.mark.usefixtures("redis_backend")
def test_rate_limit_429_with_retry_after(app, engine):
    limited = make_api(app, engine, rate_limit=3)
    codes = [limited.get("/api/v1/me").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    r = limited.get("/api/v1/me")
    assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 61
    assert r.json["error"]["code"] == "rate_limited"


def test_openapi_and_docs(app):
    c = app.test_client()
    doc = c.get("/openapi.json").json
    assert doc["openapi"].startswith("3.")
    assert "/api/v1/me" in doc["paths"] and "MeResponse" in doc["components"]["schemas"]
    assert c.get("/docs").status_code == 200 and b"/api/v1/me" in c.get("/docs").data


def test_metrics_count_requests(api):
    api.get("/api/v1/me")
    body = api.client.get("/metrics").data.decode()
    assert 'memrelay_http_requests_total{method="GET",route="/api/v1/me",status="200"}' in body


def test_readyz_needs_a_live_worker(app, api, private_redis):
    import redis

    c = app.test_client()
    assert c.get("/readyz").json == {"status": "not_ready"}  # probes see the status, not the detail
    r = c.get("/readyz", headers={"Authorization": f"Bearer {api.key}"})  # an admin key sees each check
    assert r.status_code == 503
    checks = r.json["checks"]
    assert checks["sql"]["ok"] and checks["redis"]["ok"] and checks["vector_index"]["ok"]
    assert not checks["workers"]["ok"]
    w = Worker(["default"], connection=redis.Redis.from_url(private_redis.url))
    w.register_birth()
    try:
        r = c.get("/readyz", headers={"Authorization": f"Bearer {api.key}"})
        assert r.status_code == 200 and r.json["checks"]["workers"]["count"] == 1
    finally:
        w.register_death()


def test_a_lost_database_answers_503_with_retry_after(app):
    """A connection the database refuses or drops is a retryable 503 in the error shape, not a 500."""
    import sqlalchemy

    def unreachable_database() -> None:
        sqlalchemy.create_engine("sqlite:////nonexistent-dir/memrelay.db").connect()  # the real driver error

    app.add_url_rule("/_test/db-down", "db_down", unreachable_database)
    resp = app.test_client().get("/_test/db-down")
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "1"
    assert resp.get_json()["success"] is False
    assert resp.get_json()["error"]["code"] == "database_unavailable"
