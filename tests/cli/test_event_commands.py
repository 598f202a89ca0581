"""`memrelay events list|show|replay`, `memrelay mappings lint`, `memrelay sources create`."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import redis
from click.testing import CliRunner

from memrelay.cli.main import cli
from memrelay.composition import Services
from memrelay.engine.core.settings import load_settings


def _env(monkeypatch, tmp_path, private_redis):
    monkeypatch.setenv("MEMRELAY_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("MEMRELAY_REDIS_URL", private_redis.url)
    for var in ("MEMRELAY_DATABASE_URL", "MEMRELAY_MILVUS_URI"):
        monkeypatch.delenv(var, raising=False)


def test_events_list_show_replay(tmp_path, monkeypatch, private_redis):
    _env(monkeypatch, tmp_path, private_redis)
    runner = CliRunner()
    out = runner.invoke(cli, ["sources", "create", "--org", "acme", "--connector", "hubspot", "--secret", "s"])
    assert out.exit_code == 0, out.output
    src = json.loads(out.output)
    assert src["webhookPath"] == f"/webhooks/hubspot/{src['id']}" and src["secret"] == "s"
    eng = Services(load_settings())
    ids, _ = eng.events.record(eng.tenancy.org_by_name("acme").id, src["id"], [
        {"connector": "hubspot", "dedup_key": f"k{i}", "event_type": "contact.creation", "object_type": "contact",
         "object_id": str(i), "occurred_at": datetime.now(UTC), "payload": {"n": i}} for i in range(2)])
    eng.events.claim(ids[0])
    eng.events.max_attempts = 1
    assert eng.events.fail(ids[0], "ValidationFailed: boom") == "dead"
    listed = runner.invoke(cli, ["events", "list", "--failed"])
    assert ids[0] in listed.output and "dead" in listed.output and ids[1] not in listed.output
    shown = json.loads(runner.invoke(cli, ["events", "show", ids[0]]).output)
    assert shown["payload"] == {"n": 0} and shown["lastError"] == "ValidationFailed: boom"
    redis.Redis.from_url(private_redis.url).flushdb()
    replayed = runner.invoke(cli, ["events", "replay", "--failed"])
    assert replayed.exit_code == 0, replayed.output
    assert "replayed 1 event(s), 1 enqueued" in replayed.output
    assert eng.events.get(None, ids[0]).status == "received"
    assert redis.Redis.from_url(private_redis.url).lrange("rq:queue:events", 0, -1) == [ids[0].encode()]
    assert runner.invoke(cli, ["events", "replay"]).exit_code != 0


def test_mappings_lint_points_at_the_line(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("version: 1\nconnector: generic\nobjects:\n  lead:\n    entity_type: contact\n"
                    "    keys:\n      email: email\n    properties:\n      first_name: name\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nconnector: generic\nobjects:\n  lead:\n    entity_type: contact\n"
                   "    keys:\n      email: email\n    properties:\n      first_name: {source: name, transform: [shout]}\n")
    runner = CliRunner()
    ok = runner.invoke(cli, ["mappings", "lint", str(good)])
    assert ok.exit_code == 0 and "ok" in ok.output
    res = runner.invoke(cli, ["mappings", "lint", str(bad)])
    assert res.exit_code == 1 and ":9" in res.output and "shout" in res.output
