"""Helpers for LLM-layer tests: settings that point litellm at the local fake OpenAI-compatible server."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from memrelay.engine.core.settings import Settings
from tests.support.fake_llm import FakeLLMServer

MODEL = "openai/gpt-4o-mini"


def with_llm(settings: Settings, server: FakeLLMServer, **extra: Any) -> Settings:
    """``settings`` with the fake server as the LLM provider (fast retries and timeouts for tests)."""
    return settings.model_copy(update={"llm_model": MODEL, "llm_api_base": server.base_url,
                                       "llm_api_key": SecretStr("test"), "llm_max_retries": 1,
                                       "llm_timeout_s": 5.0, **extra})
