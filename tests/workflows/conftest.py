"""Fixtures for workflow tests: delivery sinks and an engine whose LLM is the local fake server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from memrelay.composition import Services
from memrelay.engine.core.settings import Settings
from tests.support.fake_llm import FakeLLMServer
from tests.support.llm_env import with_llm
from tests.workflows.sinks import HttpSink, SmtpSink, schema_responder


@pytest.fixture
def slack() -> Iterator[HttpSink]:
    sink = HttpSink()
    yield sink
    sink.close()


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpSink]:
    sink = SmtpSink()
    monkeypatch.setenv("MEMRELAY_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("MEMRELAY_SMTP_PORT", str(sink.port))
    yield sink
    sink.close()


@pytest.fixture
def llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(responder=schema_responder) as server:
        yield server


@pytest.fixture
def llm_engine(settings: Settings, llm: FakeLLMServer) -> Iterator[Services]:
    e = Services(with_llm(settings, llm))
    yield e
    e.close()


@pytest.fixture
def app(settings: Settings, engine: Services):  # type: ignore[no-untyped-def]
    """The app with the workflows blueprint (registered here until gateway/blueprints lists it)."""
    from memrelay.gateway.app import create_app
    from memrelay.gateway.blueprints import workflows

    application = create_app(settings, services=engine)
    if "workflows" not in application.blueprints:
        application.register_blueprint(workflows.bp)
    return application


@pytest.fixture(scope="session")
def n8n_install():  # type: ignore[no-untyped-def]
    """The pinned n8n on Node 24 (installed once into the cache; marker n8n tests only)."""
    from tests.workflows.n8n_runtime import install

    return install()


@pytest.fixture(scope="session")
def node_package(n8n_install, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """n8n-nodes-memrelay built and linted with @n8n/node-cli (dev tools cached by lockfile hash)."""
    from tests.workflows.n8n_runtime import build_package

    return build_package(n8n_install.node, tmp_path_factory.mktemp("pkg") / "n8n-nodes-memrelay")
