"""Source configs through the HTTP API: typed validation (422 naming the field) and redaction on every
rendering of a source (create, list, get, update). Uses the app fixture of ``tests/conftest.py``."""

from __future__ import annotations

SECRET_TOKEN = "pat-na1-0000-secret-token"
SF_TOKEN = "00D5g!session-secret-value"


def test_create_rejects_bad_config_naming_the_field(api):
    r = api.post("/api/v1/sources", json={"connector": "salesforce",
                                          "config": {"allowed_org_ids": ["short"], "access_token": SF_TOKEN}})
    assert r.status_code == 422
    error = r.json["error"]
    assert error["code"] == "validation_failed" and "allowed_org_ids.0" in error["message"]
    assert [p["field"] for p in error["details"]["problems"]] == ["allowed_org_ids.0"]
    assert SF_TOKEN not in r.get_data(as_text=True)


def test_create_rejects_unknown_keys(api):
    r = api.post("/api/v1/sources", json={"connector": "hubspot", "config": {"acess_token": SECRET_TOKEN}})
    assert r.status_code == 422 and "acess_token" in r.json["error"]["message"]
    assert SECRET_TOKEN not in r.get_data(as_text=True)
    assert "access_token" in r.json["error"]["details"]["known"]


def test_unknown_connector_is_still_422(api):
    r = api.post("/api/v1/sources", json={"connector": "myspace"})
    assert r.status_code == 422 and "hubspot" in r.json["error"]["details"]["connectors"]


def test_secrets_are_masked_everywhere_a_source_is_shown(api):
    config = {"fetch": False, "api_base": "http://127.0.0.1:9", "access_token": SECRET_TOKEN}
    created = api.post("/api/v1/sources", json={"connector": "hubspot", "secret": "hs-secret", "config": config})
    assert created.status_code == 201, created.json
    src = created.json["data"]
    assert src["config"] == {**config, "access_token": "***"}
    assert src["secret"] == "hs-secret"  # the signing secret and token are shown once, at creation
    for body in (api.get(f"/api/v1/sources/{src['id']}").get_data(as_text=True),
                 api.get("/api/v1/sources").get_data(as_text=True)):
        assert SECRET_TOKEN not in body and "hs-secret" not in body and '"***"' in body

    updated = api.patch(f"/api/v1/sources/{src['id']}", json={"config": {**config, "fetch": True}})
    assert updated.status_code == 200 and updated.json["data"]["config"]["access_token"] == "***"
    assert updated.json["data"]["config"]["fetch"] is True


def test_update_validates_against_the_sources_connector(api):
    src = api.post("/api/v1/sources", json={"connector": "generic"}).json["data"]
    bad = api.patch(f"/api/v1/sources/{src['id']}", json={"config": {"object_type": "Not Valid"}})
    assert bad.status_code == 422 and "object_type" in bad.json["error"]["message"]
    ok = api.patch(f"/api/v1/sources/{src['id']}", json={"config": {"object_type": "deal"}})
    assert ok.status_code == 200 and ok.json["data"]["config"] == {"object_type": "deal"}


def test_stored_config_is_kept_as_sent(api, engine):
    config = {"allowed_org_ids": ["00D5g000004ABCD"], "instance_url": "https://acme.my.salesforce.com",
              "access_token": SF_TOKEN}
    src = api.post("/api/v1/sources", json={"connector": "salesforce", "config": config}).json["data"]
    assert engine.sources.get(api.org_id, src["id"]).config == config
