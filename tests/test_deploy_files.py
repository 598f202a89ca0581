"""The Dockerfile, docker-compose.yml and docs/operations.md stay honest: no Docker engine runs here, so
their structure is checked against the code — every ``MEMRELAY_*`` variable they set is a real setting,
every command a real ``memrelay`` command, every file the image copies exists, every service a
``depends_on`` or URL names is defined."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

from memrelay.cli.main import cli
from memrelay.engine.core.settings import ENV_PREFIX, Settings

REPO = Path(__file__).resolve().parents[1]
SETTINGS = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
DEFAULT = re.compile(r"^\$\{[A-Z_]+:-(.*)\}$")


def _compose() -> dict[str, Any]:
    data = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def _default(value: object) -> str:
    """``${VAR:-default}`` -> ``default`` (what compose uses when VAR is unset)."""
    m = DEFAULT.match(str(value))
    return m.group(1) if m else str(value)


def _dockerfile() -> list[str]:
    lines, current = [], ""
    for raw in (REPO / "Dockerfile").read_text().splitlines():
        if raw.lstrip().startswith("#") or not raw.strip():
            continue
        current += raw.rstrip().removesuffix("\\") + " "
        if not raw.rstrip().endswith("\\"):
            lines.append(current.strip())
            current = ""
    return lines


def test_dockerfile_is_multi_stage_non_root_with_a_healthcheck_and_copies_what_exists() -> None:
    lines = _dockerfile()
    stages = [ln for ln in lines if ln.upper().startswith("FROM ")]
    assert len(stages) >= 2 and any(" AS " in s.upper() for s in stages)
    users = [ln.split()[1] for ln in lines if ln.upper().startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    health = [ln for ln in lines if ln.upper().startswith("HEALTHCHECK ")]
    assert len(health) == 1 and "/healthz" in health[0]
    for ln in lines:
        if ln.upper().startswith("COPY ") and "--from=" not in ln:
            for src in ln.split()[1:-1]:
                assert (REPO / src).exists(), f"Dockerfile copies missing {src}"
    env = " ".join(ln for ln in lines if ln.upper().startswith("ENV "))
    for var in re.findall(r"(MEMRELAY_[A-Z_]+)=", env):
        assert var in SETTINGS, f"Dockerfile sets unknown setting {var}"
    assert "MEMRELAY_HOST=0.0.0.0" in env  # reachable from outside the container
    entry = [ln for ln in lines if ln.upper().startswith(("ENTRYPOINT", "CMD"))]
    assert '["memrelay"]' in entry[0] and yaml.safe_load(entry[1].split(None, 1)[1])[0] in cli.commands


def test_compose_runs_postgres_redis_milvus_and_several_gateways_and_workers() -> None:
    services = _compose()["services"]
    assert {"postgres", "redis", "milvus", "gateway", "worker", "migrate"} <= set(services)
    assert "milvusdb/milvus" in services["milvus"]["image"] and services["milvus"]["command"][-1] == "standalone"
    for role in ("gateway", "worker"):
        assert int(_default(services[role]["deploy"]["replicas"])) >= 2
    expected = {"gateway": "serve", "worker": "worker", "migrate": "migrate"}
    for name, command in expected.items():
        svc = services[name]
        assert svc["build"] == "." and svc["command"][0] == command and command in cli.commands
        assert "MEMRELAY_DATABASE_URL" in svc["environment"]
    assert "8080" in str(services["gateway"]["ports"][0]).rsplit(":", 1)[1]
    # a worker gets longer than its drain grace before Docker kills it
    grace = float(services["worker"]["command"][services["worker"]["command"].index("--grace") + 1])
    assert float(services["worker"]["stop_grace_period"].removesuffix("s")) > grace


def test_compose_settings_and_references_are_real() -> None:
    compose = _compose()
    services = compose["services"]
    for name, svc in services.items():
        for dep in svc.get("depends_on", {}):
            assert dep in services, f"{name} depends on undefined {dep}"
        for vol in svc.get("volumes", []):
            named = vol.split(":", 1)[0]
            assert named.startswith((".", "/")) or named in compose["volumes"], f"{name}: volume {named}"
        env = svc.get("environment", {})
        if name in ("gateway", "worker", "migrate"):
            for var in env:
                assert var in SETTINGS, f"{name} sets {var}, which is no memrelay setting"
            settings = Settings(**{k.removeprefix(ENV_PREFIX).lower(): _default(v) for k, v in env.items()
                                   if _default(v) != ""})
            for url in (settings.database_url, settings.redis_url, settings.milvus_uri):
                assert url and urlparse(url).hostname in services, f"{name}: {url} names no service"
    # the app's backends are what the compose file runs
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["gateway"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_operations_doc_and_readme_name_only_real_settings_and_commands() -> None:
    doc = (REPO / "docs" / "operations.md").read_text()
    for section in ("Sizing", "Backups", "Upgrades", "Scaling"):
        assert f"## {section}" in doc
    for var in set(re.findall(r"MEMRELAY_[A-Z_]+[A-Z]", doc)):
        assert var in SETTINGS or var.startswith(("MEMRELAY_TEST_", "MEMRELAY_GATEWAYS", "MEMRELAY_WORKER_REPLICAS",
                                                  "MEMRELAY_PUBLISH_PORTS")), f"docs name unknown {var}"
    for command in set(re.findall(r"`memrelay ([a-z-]+)", doc)):
        assert command in cli.commands, f"docs name unknown command memrelay {command}"
    readme = (REPO / "README.md").read_text()
    for name in Settings.model_fields:
        if name.startswith(("db_", "redis_")) and name != "redis_url":
            assert f"`{name.upper()}`" in readme, f"README's settings line misses {name.upper()}"
