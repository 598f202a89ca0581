"""Monthly LLM budget guard: checked before every provider request."""

from __future__ import annotations

import threading
from typing import Protocol, runtime_checkable

from memrelay.engine.adapters.llm.errors import BudgetExhausted
from memrelay.engine.adapters.llm.usage import Usage


@runtime_checkable
class BudgetGuard(Protocol):
    """Decides whether one more request may be sent for the current organisation."""

    def check(self, estimated_cost: float) -> None:
        """Raise :class:`BudgetExhausted` (402) when the budget is spent or would be overspent."""
        ...


def ensure_within_budget(limit_usd: float | None, spent_usd: float, estimated_usd: float) -> None:
    """The shared rule: no limit = unlimited; otherwise refuse once spent, or if this would overspend."""
    if limit_usd is None:
        return
    if spent_usd >= limit_usd or spent_usd + estimated_usd > limit_usd:
        raise BudgetExhausted(limit_usd=limit_usd, spent_usd=spent_usd, estimated_usd=estimated_usd)


class InMemoryBudget:
    """A single organisation's budget in process memory (tests, one-off scripts).

    Pass :meth:`record` as the client's ``on_usage`` so spending is counted::

        budget = InMemoryBudget(limit_usd=5.0)
        client = LLMClient(config, budget=budget, on_usage=budget.record)
    """

    def __init__(self, limit_usd: float | None, spent_usd: float = 0.0):
        self.limit_usd = limit_usd
        self._spent = spent_usd
        self._lock = threading.Lock()

    @property
    def spent_usd(self) -> float:
        with self._lock:
            return self._spent

    def check(self, estimated_cost: float) -> None:
        ensure_within_budget(self.limit_usd, self.spent_usd, estimated_cost)

    def record(self, usage: Usage) -> None:
        with self._lock:
            self._spent += usage.cost_usd
