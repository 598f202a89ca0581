"""LLMClient through litellm's real HTTP path against the local OpenAI-compatible fake server."""

from __future__ import annotations

import email.utils
import os
import time
from collections.abc import Iterator
from dataclasses import replace
from types import SimpleNamespace

import pytest
from pydantic import BaseModel

from memrelay.engine.adapters.llm import (
    BudgetExhausted,
    InMemoryBudget,
    LLMClient,
    LLMConfig,
    LLMInvalidOutput,
    LLMNotConfigured,
    LLMTimeout,
    LLMUpstreamError,
    Usage,
    require_llm,
)
from memrelay.engine.adapters.llm.retry import retry_after_seconds
from memrelay.engine.adapters.llm.runtime import litellm
from memrelay.engine.core.errors import PaymentRequired, ServiceUnavailable, UpstreamError, ValidationFailed
from memrelay.engine.core.settings import Settings
from tests.support.fake_llm import FakeLLMServer, fake_embedding

MODEL = "openai/gpt-4o-mini"
USER = [{"role": "user", "content": "Who founded Acme?"}]


class Person(BaseModel):
    name: str
    age: int


@pytest.fixture
def srv() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def config(srv: FakeLLMServer) -> LLMConfig:
    return LLMConfig(
        models={"basic": MODEL},
        api_base=srv.base_url,
        api_key="test",
        timeout_s=5,
        max_retries=2,
        backoff_base_s=0.01,
        backoff_max_s=0.05,
    )


@pytest.fixture
def usages() -> list[Usage]:
    return []


@pytest.fixture
def client(config: LLMConfig, usages: list[Usage]) -> LLMClient:
    return LLMClient(config, on_usage=usages.append)


def price(prompt_tokens: int, completion_tokens: int) -> float:
    prompt_cost, completion_cost = litellm.cost_per_token(
        model=MODEL, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
    )
    return prompt_cost + completion_cost


# --- offline runtime ------------------------------------------------------------------------------
def test_litellm_uses_the_bundled_cost_map_not_the_network() -> None:
    from litellm.litellm_core_utils.get_model_cost_map import get_model_cost_map_source_info

    info = get_model_cost_map_source_info()
    assert os.environ["LITELLM_LOCAL_MODEL_COST_MAP"].lower() == "true"
    assert info["source"] == "local" and info["is_env_forced"] is True
    assert litellm.model_cost["gpt-4o-mini"]["input_cost_per_token"] > 0
    assert litellm.disable_hf_tokenizer_download is True


# --- plain completion -----------------------------------------------------------------------------
def test_complete_returns_text_usage_and_cost(
    srv: FakeLLMServer, client: LLMClient, usages: list[Usage]
) -> None:
    srv.reply("Acme was founded by Ada.", usage={"prompt_tokens": 11, "completion_tokens": 6})

    result = client.complete(USER, max_tokens=50)

    assert result.text == "Acme was founded by Ada."
    assert result.model == MODEL and result.finish_reason == "stop"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens, result.usage.total_tokens) == (
        11,
        6,
        17,
    )
    assert result.usage.calls == 1 and result.usage.model == MODEL
    assert result.usage.cost_usd == pytest.approx(price(11, 6)) and result.usage.cost_usd > 0
    assert usages == [result.usage]
    (request,) = srv.chat_requests
    assert request.model == "gpt-4o-mini"
    assert request.headers["authorization"] == "Bearer test"
    assert request.messages == USER
    assert request.json["temperature"] == 0.2 and request.json["max_tokens"] == 50
    assert "response_format" not in request.json


def test_json_mode_asks_for_a_json_object(srv: FakeLLMServer, client: LLMClient) -> None:
    result = client.complete([{"role": "user", "content": "Reply in JSON: hi"}], json_mode=True)

    assert srv.chat_requests[0].json["response_format"] == {"type": "json_object"}
    assert result.text == '{"echo": "Reply in JSON: hi"}'


def test_unpriced_model_costs_zero(srv: FakeLLMServer, config: LLMConfig) -> None:
    client = LLMClient(replace(config, models={"basic": "openai/house-llama"}))

    result = client.complete(USER)

    assert srv.chat_requests[0].model == "house-llama"
    assert result.usage.cost_usd == 0.0 and result.usage.total_tokens > 0


def test_tiers_pick_their_model_and_fall_back(srv: FakeLLMServer, config: LLMConfig) -> None:
    client = LLMClient(replace(config, models={"basic": MODEL, "pro": "openai/gpt-4o"}))

    client.complete(USER, tier="pro")
    client.complete(USER, tier="ultra")  # no ultra model: falls back to pro
    client.complete(USER)

    assert [r.model for r in srv.chat_requests] == ["gpt-4o", "gpt-4o", "gpt-4o-mini"]
    with pytest.raises(ValidationFailed):
        client.complete(USER, tier="mega")
    assert len(srv.chat_requests) == 3


# --- structured output ----------------------------------------------------------------------------
def test_structured_validates_the_answer(srv: FakeLLMServer, client: LLMClient, usages: list[Usage]) -> None:
    srv.reply_json({"name": "Ada", "age": 36})

    result = client.structured(USER, Person)

    assert result.value == Person(name="Ada", age=36)
    assert result.usage.calls == 1 and usages == [result.usage]
    (request,) = srv.chat_requests
    assert request.json["response_format"] == {"type": "json_object"}
    system = request.messages[0]
    assert system["role"] == "system" and '"age"' in system["content"] and "JSON" in system["content"]
    assert request.messages[1:] == USER


def test_structured_accepts_a_fenced_answer(srv: FakeLLMServer, client: LLMClient) -> None:
    srv.reply('```json\n{"name": "Ada", "age": 36}\n```')

    assert client.structured(USER, Person).value.age == 36
    assert len(srv.chat_requests) == 1


def test_structured_extends_an_existing_system_prompt(srv: FakeLLMServer, client: LLMClient) -> None:
    srv.reply_json({"name": "Ada", "age": 36})

    client.structured([{"role": "system", "content": "You extract people."}, *USER], Person)

    messages = srv.chat_requests[0].messages
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[0]["content"].startswith("You extract people.") and '"age"' in messages[0]["content"]


def test_one_repair_attempt_fixes_invalid_output(srv: FakeLLMServer, client: LLMClient) -> None:
    srv.reply_json({"name": "Ada", "age": "thirty-six"}, usage={"prompt_tokens": 40, "completion_tokens": 9})
    srv.reply_json({"name": "Ada", "age": 36}, usage={"prompt_tokens": 70, "completion_tokens": 8})

    result = client.structured(USER, Person)

    assert result.value == Person(name="Ada", age=36)
    first, repair = srv.chat_requests
    assert repair.messages[:-2] == first.messages
    assert repair.messages[-2] == {"role": "assistant", "content": '{"name": "Ada", "age": "thirty-six"}'}
    assert repair.messages[-1]["role"] == "user" and "age" in repair.messages[-1]["content"]
    assert (result.usage.prompt_tokens, result.usage.completion_tokens, result.usage.calls) == (110, 17, 2)
    assert result.usage.cost_usd == pytest.approx(price(40, 9) + price(70, 8))


def test_invalid_twice_raises_llm_invalid_output(
    srv: FakeLLMServer, client: LLMClient, usages: list[Usage]
) -> None:
    srv.reply_invalid_json(times=2)

    with pytest.raises(LLMInvalidOutput) as caught:
        client.structured(USER, Person)

    err = caught.value
    assert isinstance(err, UpstreamError) and err.http_status == 502 and err.code == "llm_invalid_output"
    assert err.details["schema"] == "Person" and len(err.details["errors"]) == 2
    assert len(srv.chat_requests) == 2  # exactly one repair
    assert err.usage is not None and err.usage.calls == 2
    assert usages == [err.usage]  # tokens spent on failed output are still reported


# --- retries --------------------------------------------------------------------------------------
def test_429_retry_after_is_honoured(srv: FakeLLMServer, client: LLMClient) -> None:
    srv.fail(429, retry_after=1, message="Rate limit reached for gpt-4o-mini")

    started = time.monotonic()
    result = client.complete(USER)
    elapsed = time.monotonic() - started

    first, second = srv.chat_requests
    assert second.received_at - first.received_at >= 0.95  # backoff alone would be ~0.02 s
    assert elapsed >= 0.95
    assert result.text.startswith("fake reply") and result.usage.calls == 1


def test_retry_after_ms_is_honoured(srv: FakeLLMServer, client: LLMClient) -> None:
    srv.fail(429, headers={"retry-after-ms": "400"})

    client.complete(USER)

    first, second = srv.chat_requests
    assert second.received_at - first.received_at >= 0.38


def test_retry_after_longer_than_allowed_fails_fast(srv: FakeLLMServer, config: LLMConfig) -> None:
    client = LLMClient(replace(config, max_retry_after_s=5))
    srv.fail(429, retry_after=120, message="quota exceeded")

    started = time.monotonic()
    with pytest.raises(LLMUpstreamError) as caught:
        client.complete(USER)

    assert time.monotonic() - started < 60  # it did not wait the 120 s asked for
    assert len(srv.chat_requests) == 1
    assert caught.value.details["retry_after"] == 120 and caught.value.details["provider_status"] == 429


def test_retry_after_http_date_is_parsed() -> None:
    now = time.time()
    exc = SimpleNamespace(
        litellm_response_headers={"Retry-After": email.utils.formatdate(now + 30, usegmt=True)}
    )

    assert retry_after_seconds(exc, now=now) == pytest.approx(30, abs=1)  # type: ignore[arg-type]
    assert retry_after_seconds(SimpleNamespace(), now=now) is None  # type: ignore[arg-type]


def test_500_is_retried_then_succeeds(srv: FakeLLMServer, client: LLMClient, usages: list[Usage]) -> None:
    srv.fail(500, times=2)
    srv.reply("recovered", usage={"prompt_tokens": 5, "completion_tokens": 1})

    result = client.complete(USER)

    assert result.text == "recovered"
    assert len(srv.chat_requests) == 3
    assert (result.usage.total_tokens, result.usage.calls) == (6, 1)  # failed attempts bill nothing
    assert usages == [result.usage]


def test_exhausted_retries_raise_upstream_error_with_provider_message(
    srv: FakeLLMServer, client: LLMClient, usages: list[Usage]
) -> None:
    srv.fail(503, times=5, message="The engine is currently overloaded")

    with pytest.raises(UpstreamError) as caught:
        client.complete(USER)

    err = caught.value
    assert err.http_status == 502 and err.code == "llm_upstream_error"
    assert "The engine is currently overloaded" in err.message and "litellm." not in err.message
    assert err.details == {"model": MODEL, "attempts": 3, "provider_status": 503}
    assert len(srv.chat_requests) == 3  # 1 + max_retries
    assert usages == []  # nothing was billed


def test_unreachable_provider_is_retried_then_reported(config: LLMConfig) -> None:
    with FakeLLMServer() as dead:
        base = dead.base_url  # a port nothing listens on once the server stops
    client = LLMClient(replace(config, api_base=base, max_retries=1))

    with pytest.raises(LLMUpstreamError) as caught:
        client.complete(USER)

    assert caught.value.details["attempts"] == 2
    assert "connection" in caught.value.message.lower()


def test_400_is_not_retried(srv: FakeLLMServer, client: LLMClient) -> None:
    srv.fail(400, message="Invalid value for 'temperature'")

    with pytest.raises(UpstreamError) as caught:
        client.complete(USER)

    assert len(srv.chat_requests) == 1
    assert caught.value.details["provider_status"] == 400 and caught.value.details["attempts"] == 1
    assert "Invalid value for 'temperature'" in caught.value.message


def test_timeout_raises_llm_timeout_without_retrying(srv: FakeLLMServer, config: LLMConfig) -> None:
    client = LLMClient(replace(config, timeout_s=0.5))
    srv.delay(3)
    with pytest.raises(LLMTimeout) as caught:
        client.complete(USER)

    err = caught.value
    assert err.code == "llm_timeout" and err.http_status == 502 and err.details["timeout_s"] == 0.5
    assert len(srv.chat_requests) == 1


# --- budget ---------------------------------------------------------------------------------------
def test_exhausted_budget_refuses_before_any_request(srv: FakeLLMServer, config: LLMConfig) -> None:
    client = LLMClient(config, budget=InMemoryBudget(limit_usd=5.0, spent_usd=5.0))

    with pytest.raises(PaymentRequired) as caught:
        client.structured(USER, Person)

    err = caught.value
    assert isinstance(err, BudgetExhausted) and err.http_status == 402 and err.code == "budget_exhausted"
    assert err.details["limit_usd"] == 5.0 and err.details["spent_usd"] == 5.0
    assert srv.requests == []


def test_budget_tracks_spending_until_exhausted(srv: FakeLLMServer, config: LLMConfig) -> None:
    usage = {"prompt_tokens": 1000, "completion_tokens": 1000}
    one_call = price(1000, 1000)
    budget = InMemoryBudget(limit_usd=one_call * 1.5)
    client = LLMClient(config, budget=budget, on_usage=budget.record)
    srv.reply("ok", usage=usage, times=3)

    client.complete(USER)
    client.complete(USER)  # allowed: spent (1x) is below the limit (1.5x)
    with pytest.raises(BudgetExhausted):
        client.complete(USER)

    assert budget.spent_usd == pytest.approx(2 * one_call)
    assert len(srv.chat_requests) == 2


def test_budget_would_be_overspent_by_max_tokens(srv: FakeLLMServer, config: LLMConfig) -> None:
    client = LLMClient(config, budget=InMemoryBudget(limit_usd=price(0, 1000) / 2))

    with pytest.raises(BudgetExhausted) as caught:
        client.complete(USER, max_tokens=1000)

    assert caught.value.details["estimated_usd"] > caught.value.details["limit_usd"]
    assert srv.requests == []


def test_budget_is_checked_before_every_attempt(srv: FakeLLMServer, config: LLMConfig) -> None:
    checks: list[float] = []

    class CountingBudget:
        def check(self, estimated_cost: float) -> None:
            checks.append(estimated_cost)

    srv.fail(500)
    LLMClient(config, budget=CountingBudget()).complete(USER)

    assert len(checks) == len(srv.chat_requests) == 2
    assert checks[0] > 0  # priced estimate of the prompt


# --- usage ----------------------------------------------------------------------------------------
def test_usage_accumulates_across_retries_and_repair(
    srv: FakeLLMServer, client: LLMClient, usages: list[Usage]
) -> None:
    srv.fail(500)
    srv.reply_invalid_json(usage={"prompt_tokens": 30, "completion_tokens": 12})
    srv.fail(429, retry_after=0)
    srv.reply_json({"name": "Ada", "age": 36}, usage={"prompt_tokens": 50, "completion_tokens": 7})

    result = client.structured(USER, Person)

    assert len(srv.chat_requests) == 4
    assert result.usage == Usage(80, 19, 99, pytest.approx(price(30, 12) + price(50, 7)), MODEL, 2)
    assert usages == [result.usage]


def test_usage_is_addable() -> None:
    a = Usage(10, 2, 12, 0.5, "openai/gpt-4o-mini", 1)
    b = Usage(5, 1, 6, 0.25, "openai/gpt-4o", 1)

    assert a + b == Usage(15, 3, 18, 0.75, "openai/gpt-4o-mini+openai/gpt-4o", 2)
    assert sum([a, a]) == Usage(20, 4, 24, 1.0, "openai/gpt-4o-mini", 2)
    assert Usage() + a == a


def test_failed_repair_request_still_reports_the_first_calls_usage(
    srv: FakeLLMServer, client: LLMClient, usages: list[Usage]
) -> None:
    srv.reply_invalid_json(usage={"prompt_tokens": 30, "completion_tokens": 12})
    srv.fail(400, message="context length exceeded")

    with pytest.raises(LLMUpstreamError) as caught:
        client.structured(USER, Person)

    assert caught.value.usage == usages[0]
    assert usages[0].prompt_tokens == 30 and usages[0].calls == 1


# --- configuration --------------------------------------------------------------------------------
def test_not_configured_names_the_setting(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path, llm_model=None)

    with pytest.raises(LLMNotConfigured) as caught:
        require_llm(settings, feature="guideline extraction")

    err = caught.value
    assert isinstance(err, ServiceUnavailable) and err.http_status == 503 and err.code == "llm_not_configured"
    assert "MEMRELAY_LLM_MODEL" in err.message and "guideline extraction" in err.message
    with pytest.raises(LLMNotConfigured):
        LLMClient.from_settings(settings)


def test_config_from_settings(tmp_path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        llm_model="ollama/llama3",
        llm_model_pro="anthropic/claude-sonnet-4-5",
        llm_api_base="http://127.0.0.1:11434",
        llm_api_key="sk-secret",
        llm_timeout_s=12,
        llm_max_retries=4,
    )

    config = require_llm(settings)

    assert config.models == {
        "basic": "ollama/llama3",
        "pro": "anthropic/claude-sonnet-4-5",
        "ultra": "anthropic/claude-sonnet-4-5",
    }
    assert (config.api_base, config.api_key, config.timeout_s, config.max_retries) == (
        "http://127.0.0.1:11434",
        "sk-secret",
        12,
        4,
    )
    assert "sk-secret" not in repr(config)


# --- the fake server itself (other suites rely on it) ---------------------------------------------
def test_fake_embeddings_are_deterministic(srv: FakeLLMServer) -> None:
    srv.embedding_dim = 8
    response = litellm.embedding(
        model="openai/text-embedding-3-small",
        input=["alpha", "beta", "alpha"],
        api_base=srv.base_url,
        api_key="k",
    )

    vectors = [item["embedding"] for item in response.data]
    assert len(vectors[0]) == 8 and vectors[0] == vectors[2] != vectors[1]
    assert vectors[0] == pytest.approx(fake_embedding("alpha", 8))
    assert sum(v * v for v in vectors[1]) == pytest.approx(1.0)
    assert response.usage.prompt_tokens == 3
    assert srv.embedding_requests[0].model == "text-embedding-3-small"


def test_fake_streams_when_asked(srv: FakeLLMServer) -> None:
    srv.reply("one two three")
    stream = litellm.completion(
        model=MODEL, messages=USER, api_base=srv.base_url, api_key="k", stream=True, num_retries=0
    )

    assert "".join(chunk.choices[0].delta.content or "" for chunk in stream) == "one two three"


def test_fake_requires_its_api_key_when_told() -> None:
    with FakeLLMServer(require_api_key="right") as guarded:
        config = LLMConfig(models={"basic": MODEL}, api_base=guarded.base_url, api_key="wrong", max_retries=3)
        with pytest.raises(UpstreamError) as caught:
            LLMClient(config).complete(USER)

    assert caught.value.details["provider_status"] == 401
    assert len(guarded.requests) == 1  # auth errors are not retried
