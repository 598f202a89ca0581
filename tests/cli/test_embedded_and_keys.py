"""Embedded Redis lifecycle and the keys CLI."""

from __future__ import annotations

import redis
from click.testing import CliRunner

from memrelay.cli.main import cli
from memrelay.supervise.embedded import EmbeddedRedis


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


def test_doctor_reports_each_backend(tmp_path, monkeypatch, private_redis):
    monkeypatch.setenv("MEMRELAY_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("MEMRELAY_REDIS_URL", private_redis.url)
    monkeypatch.delenv("MEMRELAY_DATABASE_URL", raising=False)
    monkeypatch.setenv("MEMRELAY_MILVUS_URI", str(tmp_path / "milvus.db"))
    out = CliRunner().invoke(cli, ["doctor"])
    lines = {line[7:].split()[0]: line for line in out.output.splitlines() if line.startswith("[")}
    assert {"sql", "redis", "vector", "embedder", "llm"} <= set(lines), out.output
    assert lines["sql"].startswith("[ ok ]") and "sqlite" in lines["sql"]
    assert lines["redis"].startswith("[ ok ]") and "ping=True" in lines["redis"]
    assert lines["embedder"].startswith("[ ok ]") and "wordllama" in lines["embedder"] and "dim=256" in lines["embedder"]
    assert "not configured" in lines["llm"]
    assert out.exit_code == 0, out.output
    monkeypatch.setenv("MEMRELAY_REDIS_URL", "redis://127.0.0.1:1/0")
    bad = CliRunner().invoke(cli, ["doctor"])
    assert bad.exit_code == 1 and "[FAIL] redis" in bad.output
