"""Embedded Redis lifecycle and the keys CLI."""

from __future__ import annotations

import redis
from click.testing import CliRunner

from memrelay.cli import cli
from memrelay.embedded import EmbeddedRedis


def test_embedded_redis_starts_persists_and_stops(tmp_path):
    r = EmbeddedRedis(tmp_path / "redis" / "redis.sock").start()
    try:
        client = redis.Redis.from_url(r.url)
        client.set("k", "v")
        assert client.get("k") == b"v"
        assert client.config_get("appendonly")["appendonly"] == "yes"
        assert client.config_get("port")["port"] == "0"  # no TCP port: socket only
    finally:
        r.stop()
    assert not r.is_alive() and r.proc.poll() is not None
    # restarted on the same dir, the AOF brings the data back
    r2 = EmbeddedRedis(tmp_path / "redis" / "redis.sock").start()
    try:
        assert redis.Redis.from_url(r2.url).get("k") == b"v"
    finally:
        r2.stop()


def test_keys_create_list_revoke(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMRELAY_DATA_DIR", str(tmp_path / "d"))
    for var in ("MEMRELAY_DATABASE_URL", "MEMRELAY_REDIS_URL", "MEMRELAY_MILVUS_URI"):
        monkeypatch.delenv(var, raising=False)
    runner = CliRunner()
    out = runner.invoke(cli, ["keys", "create", "--org", "acme", "--scopes", "read,admin", "--name", "ops"])
    assert out.exit_code == 0, out.output
    key = next(line.split()[-1] for line in out.output.splitlines() if line.startswith("key:"))
    key_id = next(line.split()[-1] for line in out.output.splitlines() if line.startswith("key id:"))
    assert key.startswith("mr_")
    listed = runner.invoke(cli, ["keys", "list", "--org", "acme"])
    assert key_id in listed.output and "active" in listed.output and key not in listed.output
    bad = runner.invoke(cli, ["keys", "create", "--org", "acme", "--scopes", "root"])
    assert bad.exit_code != 0 and "scopes" in bad.output
    assert runner.invoke(cli, ["keys", "revoke", key_id]).exit_code == 0
    assert "revoked" in runner.invoke(cli, ["keys", "list"]).output
