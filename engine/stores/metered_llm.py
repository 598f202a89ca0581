"""The engine's LLM entry point (``memrelay.engine.adapters.llm``): org-scoped runs with the SQL budget and usage sink.

Every LLM-backed feature opens one :class:`LLMRun` per request::

    run = llm.run(org_id, "generation")          # llm: an LLMService (a BudgetedLLM)
    text = run.client.complete(messages).text
    response["usage"] = run.usage_dict()

Without ``MEMRELAY_LLM_MODEL`` opening a run raises ``LLMNotConfigured`` (503) — never a fake answer.
litellm is imported on first use only (it takes seconds), so the gateway starts fast.
"""

from __future__ import annotations

import threading
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

from memrelay.engine.core.errors import LLMNotConfigured
from memrelay.engine.core.util import new_id
from memrelay.engine.stores.db.database import Database
from memrelay.engine.stores.usage_store import SqlBudget, UsageStore, org_budget_limit

if TYPE_CHECKING:
    from memrelay.engine.adapters.llm import LLMClient, LLMConfig, Usage
    from memrelay.engine.core.settings import Settings


def ensure_configured(settings: Settings, feature: str) -> None:
    """Raise LLMNotConfigured (503, naming MEMRELAY_LLM_MODEL) unless a model is configured."""
    if not settings.llm_configured:
        raise LLMNotConfigured(feature)


class LLMRun:
    """An org-scoped client whose calls are budget-checked, recorded in SQL and tallied for the response."""

    def __init__(self, service: LLMService, org_id: str, feature: str, run_id: str | None = None):
        from memrelay.engine.adapters.llm import LLMClient, Usage

        self.org_id = org_id
        self.feature = feature
        self.run_id = run_id or new_id("run")
        self._store = service.store
        self._usage = Usage()
        self._lock = threading.Lock()
        limit = org_budget_limit(service.db, org_id, service.settings.llm_monthly_budget_usd)
        self.client = LLMClient(service.config, budget=SqlBudget(service.store, org_id, limit),
                                on_usage=self._on_usage)

    def _on_usage(self, usage: Usage) -> None:
        with self._lock:
            self._usage += usage
        self._store.record(self.org_id, usage, feature=self.feature, run_id=self.run_id)

    @property
    def usage(self) -> Usage:
        with self._lock:
            return self._usage

    def usage_dict(self) -> dict[str, Any]:
        """The run's usage as returned in API responses."""
        u = self.usage
        return {"model": u.model, "calls": u.calls, "promptTokens": u.prompt_tokens,
                "completionTokens": u.completion_tokens, "totalTokens": u.total_tokens,
                "costUsd": round(u.cost_usd, 8)}


class BudgetedLLM(Protocol):
    """What LLM-backed features need: org-scoped, budgeted runs (and an unmetered client)."""

    def run(self, org_id: str, feature: str, *, run_id: str | None = None) -> LLMRun: ...

    def unmetered_client(self) -> LLMClient: ...


class LLMService:
    """Builds :class:`LLMRun` objects; holds the (validated) LLM config and the usage store.

    Cheap to build: litellm is imported when the first run opens a client."""

    def __init__(self, db: Database, settings: Settings):
        self.db = db
        self.settings = settings
        self.store = UsageStore(db)

    @property
    def configured(self) -> bool:
        return self.settings.llm_configured

    @cached_property
    def config(self) -> LLMConfig:
        """The validated LLM config (raises LLMNotConfigured, 503, without a model)."""
        from memrelay.engine.adapters.llm import require_llm

        return require_llm(self.settings)

    def run(self, org_id: str, feature: str, *, run_id: str | None = None) -> LLMRun:
        """An org-scoped run for ``feature``; raises LLMNotConfigured (503) without a model."""
        ensure_configured(self.settings, feature)
        return LLMRun(self, org_id, feature, run_id)

    def unmetered_client(self) -> LLMClient:
        """A client without org budget or SQL usage rows (callers that cannot name an org)."""
        from memrelay.engine.adapters.llm import LLMClient

        return LLMClient(self.config)
