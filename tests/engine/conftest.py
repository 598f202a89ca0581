"""Engine test fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from memrelay.composition import Services
from memrelay.engine.core.settings import Settings
from tests.support.fake_llm import FakeLLMServer
from tests.support.llm_env import with_llm


@pytest.fixture
def eng(settings: Settings, llm: FakeLLMServer) -> Iterator[Services]:
    """Services built with a model configured against the local fake LLM server."""
    e = Services(with_llm(settings, llm))
    yield e
    e.close()
