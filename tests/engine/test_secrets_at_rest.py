"""Secrets at rest (issue 17, item 3): source signing secrets, path tokens, CRM tokens in source configs and
outbound signing secrets are AES-GCM encrypted in SQL — none readable in the SQLite file or PostgreSQL rows —
and ``memrelay secrets rotate`` moves every row to a new key and retires the old one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from memrelay.engine.core import secretbox
from memrelay.engine.core.errors import ConfigError
from memrelay.engine.core.secretbox import Keyring, load_keyring
from memrelay.engine.stores.db.models_outbound import WebhookSubscription

SIGNING = "whsec_signing-secret-at-rest-1"
CRM_TOKEN = "pat-na1-crm-token-at-rest-2"


def _make_secrets(api, engine) -> dict[str, str]:
    src = api.post("/api/v1/sources", json={"connector": "hubspot", "secret": SIGNING, "config": {
        "access_token": CRM_TOKEN, "fetch": False}}).json["data"]
    form = api.post("/api/v1/sources", json={"connector": "form"}).json["data"]
    engine.sources.update(api.org_id, src["id"], secret="whsec_rolled-secret-3")  # previous_secrets too
    assert api.put("/api/v1/webhooks/allowlist", json={"hosts": ["127.0.0.1"]}).status_code == 200
    sub = engine.webhooks_out.create(api.org_id, url="http://127.0.0.1:9/hook", event_types=["*"])
    return {"signing": SIGNING, "crm": CRM_TOKEN, "rolled": "whsec_rolled-secret-3", "token": form["token"],
            "outbound": sub["secret"], "form_id": form["id"], "form_path": form["webhookPath"]}


def _raw_rows(engine) -> str:
    with engine.db.engine.connect() as conn:
        rows = [conn.execute(sa.text(f"SELECT * FROM {t}")).all() for t in ("sources", "webhook_subscriptions")]
    return repr(rows)


def test_no_secret_is_readable_in_sql(api, engine, backend):
    made = _make_secrets(api, engine)
    raw = _raw_rows(engine)
    for name in ("signing", "crm", "rolled", "token", "outbound"):
        assert made[name] not in raw, name
    assert "mre1$" in raw
    # and everything still works through the API: the form's token is verified against the decrypted one
    assert api.client.post(made["form_path"], data={"email": "a@acme.io"}).status_code == 202
    shown = api.post(f"/api/v1/sources/{made['form_id']}/reveal").json["data"]
    assert shown["token"] == made["token"]


def test_the_sqlite_file_holds_no_secret(api, engine, settings):
    made = _make_secrets(api, engine)
    engine.db.engine.dispose()  # checkpoint: the -wal file is folded into the database file
    data = b"".join(p.read_bytes() for p in Path(settings.data_dir).glob("memrelay.db*"))
    for name in ("signing", "crm", "rolled", "token", "outbound"):
        assert made[name].encode() not in data, name


def test_a_ciphertext_moved_to_another_column_does_not_decrypt():
    ring = Keyring({"k1": b"k" * 32}, "k1")
    sealed = ring.encrypt("s3cret", aad="sources.secret")
    assert ring.decrypt(sealed, aad="sources.secret") == "s3cret"
    with pytest.raises(ConfigError, match="authentication"):
        ring.decrypt(sealed, aad="sources.token")
    assert ring.decrypt("legacy-plaintext", aad="sources.secret") == "legacy-plaintext"


def test_key_file_is_created_private(tmp_path: Path):
    load_keyring(None, tmp_path)
    assert (tmp_path / "secret_keys.json").stat().st_mode & 0o777 == 0o600


def test_rotate_reencrypts_every_row_and_retires_the_old_key(api, engine, settings, tmp_path, monkeypatch):
    from memrelay.cli.main import cli

    # a file-based keyring in the data dir (the default deployment), shared by this process and the CLI
    data_dir = Path(settings.data_dir)
    monkeypatch.setattr(secretbox, "_ring", None)
    secretbox.configure_keyring(lambda: load_keyring(None, data_dir))
    made = _make_secrets(api, engine)
    with engine.db.engine.begin() as conn:  # a legacy row written before encryption at rest
        conn.execute(sa.text("UPDATE webhook_subscriptions SET secret = 'whsec_legacy-plaintext-4' "
                             "WHERE org_id = :o"), {"o": api.org_id})
    old = json.loads((data_dir / "secret_keys.json").read_text())
    before = _raw_rows(engine)
    assert f"mre1${old['primary']}$" in before and "whsec_legacy-plaintext-4" in before

    env = {"MEMRELAY_DATA_DIR": str(data_dir), "MEMRELAY_DATABASE_URL": settings.sql_url,
           "MEMRELAY_REDIS_URL": str(settings.redis_url), "MEMRELAY_MILVUS_URI": str(settings.milvus_target)}
    out = CliRunner().invoke(cli, ["secrets", "rotate"], env=env)
    assert out.exit_code == 0, out.output
    new = json.loads((data_dir / "secret_keys.json").read_text())
    assert new["primary"] != old["primary"] and list(new["keys"]) == [new["primary"]]
    after = _raw_rows(engine)
    assert f"mre1${old['primary']}$" not in after and f"mre1${new['primary']}$" in after
    assert "whsec_legacy-plaintext-4" not in after
    # a process that met the new key id re-reads the file; data is intact
    shown = api.post(f"/api/v1/sources/{made['form_id']}/reveal").json["data"]
    assert shown["token"] == made["token"]
    with engine.db.read() as s:
        (sub,) = s.scalars(sa.select(WebhookSubscription).where(WebhookSubscription.org_id == api.org_id)).all()
        assert sub.secret == "whsec_legacy-plaintext-4"  # the legacy row, now encrypted, reads the same
    assert api.client.post(made["form_path"], data={"email": "b@acme.io"}).status_code == 202


def test_a_process_meeting_a_new_key_id_rereads_the_key_file(tmp_path: Path):
    mine = load_keyring(None, tmp_path)  # this process's view
    rotated = Keyring({**mine.keys, "beef": b"n" * 32}, "beef")  # another process rotated
    secretbox.write_keyring_file(tmp_path / "secret_keys.json", rotated)
    sealed = rotated.encrypt("after-rotation", aad="sources.token")
    assert mine.decrypt(sealed, aad="sources.token") == "after-rotation"
    assert mine.primary == "beef"  # and it now encrypts with the new primary
