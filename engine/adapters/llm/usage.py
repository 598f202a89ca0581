"""Token and cost accounting for LLM calls."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from memrelay.engine.adapters.llm.runtime import litellm

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Usage:
    """Tokens and dollars spent by one or more provider responses. ``a + b`` aggregates."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float = 0.0
    model: str = ""
    calls: int = 0  # provider responses that returned (and billed) tokens

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
            cost_usd=self.cost_usd + other.cost_usd,
            model=_merge_models(self.model, other.model),
            calls=self.calls + other.calls,
        )

    def __radd__(self, other: object) -> Usage:
        if other == 0:  # lets sum(usages) work
            return self
        return NotImplemented

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_response(cls, response: Any, model: str, prices: Prices | None = None) -> Usage:
        """Usage of one litellm ``ModelResponse``; cost from the configured or litellm's price, 0.0 when unknown."""
        raw = getattr(response, "usage", None)
        prompt = int(getattr(raw, "prompt_tokens", 0) or 0)
        completion = int(getattr(raw, "completion_tokens", 0) or 0)
        total = int(getattr(raw, "total_tokens", 0) or 0) or prompt + completion
        return cls(prompt, completion, total, response_cost(response, model, prices), model, calls=1)


def _merge_models(a: str, b: str) -> str:
    if not a or a == b:
        return b
    if not b:
        return a
    names = a.split("+")
    return a if b in names else f"{a}+{b}"


Prices = Mapping[str, tuple[float, float]]
"""Configured prices: model → (USD per input token, USD per output token)."""


def token_prices(model: str, prices: Prices | None = None) -> tuple[float, float] | None:
    """USD per (input, output) token: the configured price first, else litellm's map; None when unknown."""
    if prices and model in prices:
        return prices[model]
    try:
        prompt_cost, completion_cost = litellm.cost_per_token(model=model, prompt_tokens=1, completion_tokens=1)
    except Exception:  # litellm raises plain Exception for unmapped models
        return None
    return float(prompt_cost), float(completion_cost)


def response_cost(response: Any, model: str, prices: Prices | None = None) -> float:
    """Dollar cost of a response: a configured price, else litellm's; 0.0 for models with neither (local,
    custom — a budgeted client refuses those before sending, see :class:`UnpricedModel`)."""
    if prices and model in prices:
        raw = getattr(response, "usage", None)
        per_in, per_out = prices[model]
        return (int(getattr(raw, "prompt_tokens", 0) or 0) * per_in
                + int(getattr(raw, "completion_tokens", 0) or 0) * per_out)
    hidden = getattr(response, "_hidden_params", None) or {}
    if "response_cost" in hidden:  # litellm already priced it (None = unpriced model)
        return float(hidden["response_cost"] or 0.0)
    try:
        return float(litellm.completion_cost(completion_response=response, model=model) or 0.0)
    except Exception:  # litellm raises plain Exception for unmapped models
        log.debug("no price known for %s; counting cost 0", model)
        return 0.0


def estimate_cost(model: str, messages: list[dict[str, Any]], max_tokens: int | None,
                  prices: Prices | None = None) -> float:
    """Upper-ish estimate of a request's cost before sending it: prompt tokens plus ``max_tokens``."""
    try:
        prompt_tokens = litellm.token_counter(model=model, messages=messages)
    except Exception:  # exotic content; fall back to ~4 characters per token
        prompt_tokens = sum(len(str(m.get("content") or "")) for m in messages) // 4
    if prices and model in prices:
        per_in, per_out = prices[model]
        return prompt_tokens * per_in + (max_tokens or 0) * per_out
    try:
        prompt_cost, completion_cost = litellm.cost_per_token(
            model=model, prompt_tokens=prompt_tokens, completion_tokens=max_tokens or 0
        )
    except Exception:  # unpriced model
        return 0.0
    return float(prompt_cost + completion_cost)
