"""Webhook path tokens are secrets (issue 17, item 1): shown at creation and on an admin's reveal/rotate,
never in list/read answers or access logs; the header carries them; ``?token=`` only where a source allows it."""

from __future__ import annotations

from memrelay.gateway.logredact import redact_atoms, redact_url
from tests.conftest import Api

FORM = {"email": "forged@acme.io", "first_name": "Forged"}


def _form_source(api, **config):
    r = api.post("/api/v1/sources", json={"connector": "form", "name": "Site", "config": config})
    assert r.status_code == 201, r.json
    return r.json["data"]


def test_a_read_key_cannot_learn_the_token_or_forge_a_delivery(app, engine, api):
    created = _form_source(api)
    token = created["token"]
    assert created["webhookPath"].endswith("/" + token)  # shown once, at creation
    reader = Api(app.test_client(), engine.tenancy.create_key(api.org_id, scopes=["read"])[0], api.org_id)
    listed = reader.get("/api/v1/sources").get_data(as_text=True)
    shown = reader.get(f"/api/v1/sources/{created['id']}").get_data(as_text=True)
    for text in (listed, shown):
        assert token not in text
    bare = reader.get(f"/api/v1/sources/{created['id']}").json["data"]["webhookPath"]
    assert bare == f"/webhooks/form/{created['id']}"
    forged = reader.client.post(bare, data=FORM, headers={"Authorization": f"Bearer {reader.key}"})
    assert forged.status_code == 401
    assert reader.post(f"/api/v1/sources/{created['id']}/reveal").status_code == 403
    assert reader.post(f"/api/v1/sources/{created['id']}/rotate-token").status_code == 403


def test_header_token_is_accepted_and_query_token_only_when_allowed(api):
    src = _form_source(api)
    bare = f"/webhooks/form/{src['id']}"
    assert api.client.post(bare, data=FORM, headers={"X-Memrelay-Token": src["token"]}).status_code == 202
    assert api.client.post(bare, data=FORM, headers={"X-Memrelay-Token": "wrong"}).status_code == 401
    assert api.client.post(src["webhookPath"], data=FORM).status_code in (200, 202)
    refused = api.client.post(f"{bare}?token={src['token']}", data=FORM)
    assert refused.status_code == 401 and "X-Memrelay-Token" in refused.json["error"]["message"]
    allowing = _form_source(api, allow_query_token=True)
    ok = api.client.post(f"/webhooks/form/{allowing['id']}?token={allowing['token']}", data=FORM)
    assert ok.status_code == 202, ok.json


def test_admin_reveal_and_rotate(api):
    src = _form_source(api)
    revealed = api.post(f"/api/v1/sources/{src['id']}/reveal").json["data"]
    assert revealed["token"] == src["token"] and revealed["webhookPath"] == src["webhookPath"]
    rotated = api.post(f"/api/v1/sources/{src['id']}/rotate-token").json["data"]
    assert rotated["token"] != src["token"]
    assert api.client.post(src["webhookPath"], data=FORM).status_code == 401  # old token refused at once
    assert api.client.post(rotated["webhookPath"], data=FORM).status_code == 202
    assert rotated["token"] not in api.get("/api/v1/sources").get_data(as_text=True)


def test_access_log_lines_never_carry_tokens_or_keys():
    line = "POST /webhooks/form/src_abc/SeCrEtToKeN?token=SeCrEtToKeN&x=1 HTTP/1.1"
    assert "SeCrEtToKeN" not in redact_url(line)
    assert redact_url("/webhooks/hubspot/src_abc") == "/webhooks/hubspot/src_abc"
    atoms = redact_atoms({"r": line, "U": "/webhooks/form/src_abc/SeCrEtToKeN", "q": "token=SeCrEtToKeN",
                          "{raw_uri}e": "/webhooks/form/src_abc/SeCrEtToKeN", "{authorization}i": "Bearer mr_x",
                          "{x-memrelay-token}i": "SeCrEtToKeN", "s": "202"})
    assert "SeCrEtToKeN" not in repr(atoms) and "mr_x" not in repr(atoms) and atoms["s"] == "202"


def test_gunicorn_uses_the_redacting_logger():
    from gunicorn.config import Config

    from memrelay.gateway import gunicorn_conf

    cfg = Config()
    cfg.set("logger_class", gunicorn_conf.logger_class)
    logger = cfg.logger_class(cfg)
    assert isinstance(logger, gunicorn_conf.RedactingLogger)


def test_hooks_need_admin(app, engine, api):
    writer_key, _ = engine.tenancy.create_key(api.org_id, scopes=["write"])
    r = api.client.post("/api/v1/hooks", json={"target_url": "https://example.com/x", "event": "event.failed"},
                        headers={"Authorization": f"Bearer {writer_key}"})
    assert r.status_code == 403
