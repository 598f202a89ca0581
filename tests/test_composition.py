"""The composition root: every service built once per process, wired with explicit dependencies (never the
container), and nothing heavy (embedding model, litellm, Milvus) loaded until a request needs it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlalchemy import inspect

from memrelay.composition import Services
from memrelay.engine.core.settings import Settings
from memrelay.engine.memory.memories import MemorizeRequest

SERVICE_NAMES = [name for name, attr in vars(Services).items() if isinstance(attr, cached_property)]


def test_each_service_is_built_once_and_shared_by_its_dependants(engine: Services) -> None:
    assert engine.memories is engine.memories
    assert engine.generation.recall is engine.recall and engine.generation.memories is engine.memories
    assert engine.generation.guidelines is engine.governance and engine.agents.generation is engine.generation
    assert engine.pipeline.memories is engine.memories and engine.backfill.records is engine.records
    assert engine.memories.index is engine.index is engine.batches.index
    assert engine.workflow_runner.steps is engine.workflow_steps
    assert engine.workflow_steps.generation is engine.generation


def test_no_service_receives_the_container(engine: Services) -> None:
    for name in SERVICE_NAMES:
        service = getattr(engine, name)
        held = vars(service).values() if hasattr(service, "__dict__") else []
        assert not any(isinstance(value, Services) for value in held), name


def test_without_a_model_llm_features_are_absent_not_faked(engine: Services) -> None:
    assert engine.extractor is None and engine.deep_recall is None
    assert engine.memories.extractor is None and engine.recall.deep is None


def test_the_migrations_create_every_table_the_models_declare(engine: Services) -> None:
    from memrelay.engine.stores.db.schema import metadata

    assert set(metadata.tables) <= set(inspect(engine.db.engine).get_table_names())


BUILD_EVERYTHING = textwrap.dedent("""
    import json, sys
    from memrelay.composition import build_services
    from memrelay.engine.core.settings import Settings
    from memrelay.gateway.app import create_app

    settings = Settings.model_validate_json(sys.argv[1])
    services = build_services(settings)
    services.migrate()
    app = create_app(settings, services=services)
    for name in json.loads(sys.argv[2]):
        getattr(services, name)
    print(json.dumps({"embedderLoaded": services.embedder.loaded,
                      "imported": sorted(m for m in ("litellm", "pymilvus", "wordllama", "hubspot", "simple_salesforce")
                                         if m in sys.modules)}))
""")


def _run(settings: Settings, names: list[str]) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", BUILD_EVERYTHING, settings.model_dump_json(), json.dumps(names)],
                         capture_output=True, text=True, timeout=120, cwd=Path(__file__).parent.parent)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_building_the_app_and_every_service_loads_no_model_llm_milvus_or_crm_sdk(settings: Settings) -> None:
    configured = settings.model_copy(update={"llm_model": "openai/gpt-4o-mini"})  # LLM services exist too
    assert _run(configured, SERVICE_NAMES) == {"embedderLoaded": False, "imported": []}


def test_the_embedder_loads_on_first_use_and_once(engine: Services, api: Any) -> None:
    embedder = engine.embedder
    assert not embedder.loaded
    engine.memories.memorize(api.org_id, MemorizeRequest(content="Uses Postgres.", email="a@b.io", tags=["t"]))
    assert embedder.loaded and embedder.get() is embedder.get()
