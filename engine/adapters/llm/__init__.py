"""LLM access for the engine: one sync client over litellm, with retries, usage accounting and budgets.

Importing anything here first configures litellm to stay offline (see :mod:`memrelay.engine.adapters.llm.runtime`).
"""

from memrelay.engine.adapters.llm.budget import BudgetGuard, InMemoryBudget, ensure_within_budget
from memrelay.engine.adapters.llm.client import Completion, LLMClient, Structured
from memrelay.engine.adapters.llm.config import TIERS, LLMConfig, Tier, require_llm
from memrelay.engine.adapters.llm.errors import (
    BudgetExhausted,
    LLMInvalidOutput,
    LLMNotConfigured,
    LLMTimeout,
    LLMUpstreamError,
)
from memrelay.engine.adapters.llm.usage import Usage

__all__ = [
    "TIERS",
    "BudgetExhausted",
    "BudgetGuard",
    "Completion",
    "InMemoryBudget",
    "LLMClient",
    "LLMConfig",
    "LLMInvalidOutput",
    "LLMNotConfigured",
    "LLMTimeout",
    "LLMUpstreamError",
    "Structured",
    "Tier",
    "Usage",
    "ensure_within_budget",
    "require_llm",
]
