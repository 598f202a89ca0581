"""Settings: defaults, environment, and errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from memrelay.engine.core.errors import ConfigError
from memrelay.engine.core.settings import load_settings


def test_defaults_are_embedded(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for var in ("DATABASE_URL", "REDIS_URL", "MILVUS_URI", "LLM_MODEL", "DATA_DIR"):
        monkeypatch.delenv(f"MEMRELAY_{var}", raising=False)
    s = load_settings()
    assert s.data_dir == Path(".memrelay")
    assert s.sql_url == f"sqlite:///{tmp_path / '.memrelay' / 'memrelay.db'}"
    assert s.milvus_target == str(tmp_path / ".memrelay" / "milvus.db")
    assert s.uses_embedded_redis and not s.llm_configured
    assert (s.host, s.port) == ("127.0.0.1", 8080)


def test_environment_selects_scale_backends(monkeypatch):
    monkeypatch.setenv("MEMRELAY_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    monkeypatch.setenv("MEMRELAY_REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("MEMRELAY_MILVUS_URI", "http://milvus:19530")
    s = load_settings()
    assert s.sql_url == "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    assert not s.uses_embedded_redis and s.milvus_target == "http://milvus:19530"


@pytest.mark.parametrize(
    ("var", "value", "needle"),
    [
        ("MEMRELAY_PORT", "eighty", "MEMRELAY_PORT"),
        ("MEMRELAY_PORT", "70000", "MEMRELAY_PORT"),
        ("MEMRELAY_DATABASE_URL", "mysql://x", "MEMRELAY_DATABASE_URL"),
        ("MEMRELAY_REDIS_URL", "localhost:6379", "MEMRELAY_REDIS_URL"),
        ("MEMRELAY_WORKERS", "-1", "MEMRELAY_WORKERS"),
        ("MEMRELAY_LOG_LEVEL", "LOUD", "MEMRELAY_LOG_LEVEL"),
    ],
)
def test_invalid_settings_name_the_variable(monkeypatch, var, value, needle):
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert needle in err.value.message


def test_cli_reports_bad_settings(monkeypatch):
    from click.testing import CliRunner

    from memrelay.cli.main import cli

    monkeypatch.setenv("MEMRELAY_PORT", "nope")
    result = CliRunner().invoke(cli, ["keys", "list"])
    assert result.exit_code != 0 and "MEMRELAY_PORT" in result.output
