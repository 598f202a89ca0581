"""LLM-specific members of the shared error tree (:mod:`memrelay.engine.core.errors`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from memrelay.engine.core.errors import LLMNotConfigured, PaymentRequired, ServiceUnavailable, UpstreamError

if TYPE_CHECKING:
    from memrelay.engine.adapters.llm.usage import Usage

__all__ = ["BudgetExhausted", "LLMInvalidOutput", "LLMNotConfigured", "LLMTimeout", "LLMUpstreamError",
           "UnpricedModel"]


class LLMUpstreamError(UpstreamError):
    """The provider answered with an error (or not at all) after the retries memrelay allows."""

    code = "llm_upstream_error"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None, usage: Usage | None = None):
        super().__init__(message, details=details)
        self.usage = usage


class LLMTimeout(LLMUpstreamError):
    """The provider did not answer within ``MEMRELAY_LLM_TIMEOUT_S``."""

    code = "llm_timeout"


class LLMInvalidOutput(LLMUpstreamError):
    """The model's answer did not match the requested schema, even after one repair attempt."""

    code = "llm_invalid_output"


class BudgetExhausted(PaymentRequired):
    """The organisation's monthly LLM budget is spent (or this request would overspend it)."""

    code = "budget_exhausted"

    def __init__(self, *, limit_usd: float, spent_usd: float, estimated_usd: float = 0.0):
        super().__init__(
            f"monthly LLM budget exhausted: spent ${spent_usd:.4f} of ${limit_usd:.2f}",
            details={"limit_usd": limit_usd, "spent_usd": round(spent_usd, 6),
                     "estimated_usd": round(estimated_usd, 6)},
        )


class UnpricedModel(ServiceUnavailable):
    """A dollar budget applies but nobody knows what the model costs: refused rather than counted as $0."""

    code = "llm_model_unpriced"

    def __init__(self, model: str):
        super().__init__(
            f"the LLM model {model!r} has no known price, so a dollar budget cannot be enforced for it: "
            "configure its price in MEMRELAY_LLM_PRICES (USD per million input/output tokens) or remove the budget",
            details={"model": model, "setting": "MEMRELAY_LLM_PRICES"})
