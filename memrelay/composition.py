"""The engine facade: one object per process holding the SQL store and the domain services.

Each service takes the engine (or what it needs from it) and is built lazily on first use, so a process
only loads what it touches (e.g. the embedder is loaded by the first memory operation).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any

from memrelay.engine.adapters.vector_index import VectorIndex
from memrelay.engine.core.settings import Settings
from memrelay.engine.stores.collections import Collections
from memrelay.engine.stores.db.database import Database
from memrelay.engine.stores.event_log import EventLog
from memrelay.engine.stores.records import Records
from memrelay.engine.stores.sources import Sources
from memrelay.engine.stores.tenancy import Tenancy

if TYPE_CHECKING:
    from memrelay.engine.adapters.embedding import Embedder
    from memrelay.engine.egress.webhooks_out import WebhooksOut
    from memrelay.engine.guidance.agents import Agents
    from memrelay.engine.guidance.generation import Generation
    from memrelay.engine.guidance.governance import Governance
    from memrelay.engine.memory.llm_extractor import LLMExtractor
    from memrelay.engine.memory.memories import Memories
    from memrelay.engine.memory.recall import Recall
    from memrelay.engine.stores.metered_llm import LLMService


def build_services(settings: Settings) -> Services:
    """Every service of this process, built once (call it after any fork: in each gunicorn or RQ worker)."""
    return Services(settings)


class Services:
    """Everything the API or a job does is one call on a service reachable from here."""

    def __init__(self, settings: Settings, db: Database | None = None):
        self.settings = settings
        self.db = db or Database(settings.sql_url)

    @cached_property
    def tenancy(self) -> Tenancy:
        return Tenancy(self.db)

    @cached_property
    def collections(self) -> Collections:
        return Collections(self.db)

    @cached_property
    def records(self) -> Records:
        return Records(self.db, self.collections, soft_delete_days=self.settings.soft_delete_days)

    @cached_property
    def sources(self) -> Sources:
        return Sources(self.db)

    @cached_property
    def events(self) -> EventLog:
        return EventLog(self.db)

    @cached_property
    def vector_index(self) -> VectorIndex:
        return VectorIndex(self.settings.milvus_target)

    @cached_property
    def embedder(self) -> Embedder:
        from memrelay.engine.adapters.embedding import build_embedder

        key = self.settings.llm_api_key.get_secret_value() if self.settings.llm_api_key else None
        return build_embedder(self.settings.embedder, api_base=self.settings.llm_api_base, api_key=key)

    @cached_property
    def memories(self) -> Memories:
        from memrelay.engine.memory.memories import Memories

        return Memories(self)

    @cached_property
    def recall(self) -> Recall:
        from memrelay.engine.memory.recall import Recall

        return Recall(self)

    @cached_property
    def llm(self) -> LLMService:
        """LLM calls with per-org budget and usage accounting (raises llm_not_configured when unset)."""
        from memrelay.engine.stores.metered_llm import LLMService

        return LLMService(self)

    @cached_property
    def extractor(self) -> LLMExtractor:
        from memrelay.engine.memory.llm_extractor import LLMExtractor

        return LLMExtractor(self)

    @cached_property
    def governance(self) -> Governance:
        from memrelay.engine.guidance.governance import Governance

        return Governance(self)

    @cached_property
    def generation(self) -> Generation:
        from memrelay.engine.guidance.generation import Generation

        return Generation(self)

    @cached_property
    def agents(self) -> Agents:
        from memrelay.engine.guidance.agents import Agents

        return Agents(self)

    @cached_property
    def deep_recall(self) -> Callable[..., Any]:
        """``deep_recall(org_id, req, fast_result)``: reflection rounds and answers over smart recall."""
        from memrelay.engine.memory.deep_recall import recall_deep

        return partial(recall_deep, self)

    @cached_property
    def webhooks_out(self) -> WebhooksOut:
        """Outbound webhook subscriptions, deliveries and the outbox dispatcher."""
        from memrelay.engine.egress.webhooks_out import WebhooksOut

        return WebhooksOut(self.db)

    def sync_index(self) -> None:
        """Push pending memory vectors and deletions to the index (safe to call any time)."""
        from memrelay.engine.memory.index_sync import reconcile

        reconcile(self)

    def vector_index_status(self) -> dict[str, object]:
        return self.vector_index.ping()

    def migrate(self) -> None:
        from memrelay.engine.stores.db.migrate import upgrade

        upgrade(self.db.url)

    def close(self) -> None:
        if "vector_index" in self.__dict__:
            self.vector_index.close()
        self.db.dispose()
