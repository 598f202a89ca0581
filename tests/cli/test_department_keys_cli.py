"""``memrelay keys create --entity-types … --collections … --guideline-tags …`` makes a department key: stored on
the key row, shown by ``keys list``, and resolved by the tenancy store with its restriction."""

from __future__ import annotations

from click.testing import CliRunner

from memrelay.cli.main import cli
from memrelay.cli.support import open_services


def test_keys_create_a_department_key(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MEMRELAY_DATA_DIR", str(tmp_path / "d"))
    for var in ("MEMRELAY_DATABASE_URL", "MEMRELAY_REDIS_URL", "MEMRELAY_MILVUS_URI"):
        monkeypatch.delenv(var, raising=False)
    runner = CliRunner()
    out = runner.invoke(cli, ["keys", "create", "--org", "acme", "--name", "support", "--entity-types",
                              "Contact, ticket", "--guideline-tags", "support"])
    assert out.exit_code == 0, out.output
    assert "access: entityTypes=contact,ticket, guidelineTags=support" in out.output
    key = next(line.split()[-1] for line in out.output.splitlines() if line.startswith("key:"))
    key_id = next(line.split()[-1] for line in out.output.splitlines() if line.startswith("key id:"))
    listed = runner.invoke(cli, ["keys", "list", "--org", "acme"]).output
    assert key_id in listed and "[entityTypes=contact,ticket, guidelineTags=support]" in listed
    info = open_services().tenancy.authenticate(key)
    assert info.access.entity_types == frozenset({"contact", "ticket"})
    assert info.access.guideline_tags == frozenset({"support"}) and info.access.collections is None
    plain = runner.invoke(cli, ["keys", "create", "--org", "acme"])
    assert plain.exit_code == 0 and "access:" not in plain.output
    empty = runner.invoke(cli, ["keys", "create", "--org", "acme", "--entity-types", " , "])
    assert empty.exit_code != 0 and "entityTypes" in empty.output
