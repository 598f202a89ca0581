"""LLM usage accounting and the per-org monthly budget, both in SQL (shared by every process).

Imports nothing from :mod:`memrelay.engine.adapters.llm` at module level: importing litellm takes seconds, and the gateway
must start without paying for it.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from memrelay.engine.core.util import utcnow
from memrelay.engine.stores.db.database import Database
from memrelay.engine.stores.db.models import Org
from memrelay.engine.stores.db.models_llm import LLMUsageRow

if TYPE_CHECKING:
    from memrelay.engine.adapters.llm import Usage


def month_start(now: datetime | None = None) -> datetime:
    """Midnight UTC on the first day of ``now``'s month (budgets reset monthly)."""
    now = now or utcnow()
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


class UsageStore:
    """Writes one row per public LLM call and sums an org's spending."""

    def __init__(self, db: Database):
        self.db = db

    def record(self, org_id: str, usage: Usage, *, feature: str, run_id: str | None = None) -> None:
        """Persist ``usage`` in its own transaction (spending is recorded even if the caller later fails)."""
        with self.db.session() as s:
            s.add(LLMUsageRow(org_id=org_id, feature=feature[:60], run_id=run_id, model=usage.model[:200] or "?",
                              calls=usage.calls, prompt_tokens=usage.prompt_tokens,
                              completion_tokens=usage.completion_tokens, total_tokens=usage.total_tokens,
                              cost_usd=usage.cost_usd, created_at=utcnow()))

    def spent_usd(self, org_id: str, since: datetime | None = None) -> float:
        """Dollars spent by ``org_id`` since ``since`` (default: the start of this month)."""
        with self.db.read() as s:
            total = s.scalar(select(func.coalesce(func.sum(LLMUsageRow.cost_usd), 0.0)).where(
                LLMUsageRow.org_id == org_id, LLMUsageRow.created_at >= (since or month_start())))
        return float(total or 0.0)

    def summary(self, org_id: str, since: datetime | None = None) -> dict[str, Any]:
        """Per-feature calls, tokens and cost since ``since`` (default: this month)."""
        with self.db.read() as s:
            rows = s.execute(select(LLMUsageRow.feature, func.sum(LLMUsageRow.calls),
                                    func.sum(LLMUsageRow.total_tokens), func.sum(LLMUsageRow.cost_usd))
                             .where(LLMUsageRow.org_id == org_id,
                                    LLMUsageRow.created_at >= (since or month_start()))
                             .group_by(LLMUsageRow.feature)).all()
        return {f: {"calls": int(c or 0), "totalTokens": int(t or 0), "costUsd": round(float(u or 0), 8)}
                for f, c, t, u in rows}


def org_budget_limit(db: Database, org_id: str, default: float | None) -> float | None:
    """``org.settings["monthly_budget_usd"]`` when set, else the process default (None = unlimited)."""
    with db.read() as s:
        org_settings = s.scalar(select(Org.settings).where(Org.id == org_id)) or {}
    raw = org_settings.get("monthly_budget_usd")
    return float(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else default


class SqlBudget:
    """:class:`memrelay.engine.adapters.llm.BudgetGuard` over the ``llm_usage`` table for one org."""

    def __init__(self, store: UsageStore, org_id: str, limit_usd: float | None):
        self.store = store
        self.org_id = org_id
        self.limit_usd = limit_usd

    def check(self, estimated_cost: float) -> None:
        from memrelay.engine.adapters.llm import ensure_within_budget

        if self.limit_usd is None:
            return
        ensure_within_budget(self.limit_usd, self.store.spent_usd(self.org_id), estimated_cost)
