"""Budgets for models litellm cannot price (issue 17, item 7): refused with a clear error unless a price is
configured; a configured price is what the budget counts. Through litellm's real HTTP path (local fake)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from memrelay.engine.adapters.llm import BudgetExhausted, InMemoryBudget, LLMClient, LLMConfig
from memrelay.engine.adapters.llm.errors import UnpricedModel
from memrelay.engine.adapters.llm.usage import token_prices
from memrelay.engine.core.settings import Settings
from tests.support.fake_llm import FakeLLMServer

UNPRICED = "openai/memrelay-local-unpriced-model"
USER = [{"role": "user", "content": "Who founded Acme?"}]
USAGE = {"prompt_tokens": 1000, "completion_tokens": 500}


@pytest.fixture
def srv() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


def _config(srv: FakeLLMServer, **prices: tuple[float, float]) -> LLMConfig:
    return LLMConfig(models={"basic": UNPRICED}, api_base=srv.base_url, api_key="test", timeout_s=5,
                     max_retries=0, prices=dict(prices))


def test_litellm_has_no_price_for_the_test_model():
    assert token_prices(UNPRICED) is None and token_prices("openai/gpt-4o-mini") is not None


def test_a_budget_refuses_an_unpriced_model_before_any_request(srv: FakeLLMServer):
    client = LLMClient(_config(srv), budget=InMemoryBudget(limit_usd=5.0))
    with pytest.raises(UnpricedModel) as caught:
        client.complete(USER)
    assert caught.value.code == "llm_model_unpriced" and "MEMRELAY_LLM_PRICES" in caught.value.message
    assert srv.chat_requests == []


def test_without_a_budget_an_unpriced_model_still_runs(srv: FakeLLMServer):
    srv.reply("ok", usage=USAGE)
    out = LLMClient(_config(srv)).complete(USER)
    assert out.text == "ok" and out.usage.cost_usd == 0.0  # no budget to protect; usage still recorded
    assert len(srv.chat_requests) == 1


def test_a_configured_price_is_counted_and_enforced(srv: FakeLLMServer):
    per_in, per_out = 2.0 / 1e6, 8.0 / 1e6  # $2 / $8 per million tokens
    one_call = 1000 * per_in + 500 * per_out
    budget = InMemoryBudget(limit_usd=one_call * 1.5)
    client = LLMClient(_config(srv, **{UNPRICED: (per_in, per_out)}), budget=budget, on_usage=budget.record)
    srv.reply("ok", usage=USAGE, times=3)
    client.complete(USER, max_tokens=100)
    client.complete(USER, max_tokens=100)  # spent 1x of 1.5x: allowed
    with pytest.raises(BudgetExhausted):
        client.complete(USER, max_tokens=100)
    assert budget.spent_usd == pytest.approx(2 * one_call)


def test_prices_come_from_settings():
    settings = Settings(llm_model=UNPRICED, llm_prices={UNPRICED: {"input_per_mtok": 2, "output_per_mtok": 8}})
    assert LLMConfig.from_settings(settings).prices == {UNPRICED: (2e-6, 8e-6)}
    with pytest.raises(ValueError):
        Settings(llm_prices={UNPRICED: {"input_per_mtok": -1, "output_per_mtok": 1}})


def test_prices_parse_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MEMRELAY_LLM_PRICES", json.dumps({UNPRICED: {"input_per_mtok": 0.5, "output_per_mtok": 1.5}}))
    assert Settings().llm_prices[UNPRICED].output_per_mtok == 1.5
