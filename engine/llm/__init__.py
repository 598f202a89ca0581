"""LLM access for the engine: one sync client over litellm, with retries, usage accounting and budgets.

Importing anything here first configures litellm to stay offline (see :mod:`engine.llm.runtime`).
"""

from engine.llm.budget import BudgetGuard, InMemoryBudget, ensure_within_budget
from engine.llm.client import Completion, LLMClient, Structured
from engine.llm.config import TIERS, LLMConfig, Tier, require_llm
from engine.llm.errors import (
    BudgetExhausted,
    LLMInvalidOutput,
    LLMNotConfigured,
    LLMTimeout,
    LLMUpstreamError,
)
from engine.llm.usage import Usage

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
