"""The engine facade: one object per process holding the SQL store and the domain services.

Each service takes the engine (or what it needs from it) and is built lazily on first use, so a process
only loads what it touches (e.g. the embedder is loaded by the first memory operation).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any

from engine.collections import Collections
from engine.db.database import Database
from engine.event_log import EventLog
from engine.records import Records
from engine.settings import Settings
from engine.sources import Sources
from engine.tenancy import Tenancy
from engine.vector_index import VectorIndex

if TYPE_CHECKING:
    from engine.agents import Agents
    from engine.embedding import Embedder
    from engine.extraction.llm_extractor import LLMExtractor
    from engine.generation import Generation
    from engine.governance import Governance
    from engine.llm_service import LLMService
    from engine.memories import Memories
    from engine.recall import Recall
    from engine.webhooks_out import WebhooksOut


class Engine:
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
        from engine.embedding import build_embedder

        key = self.settings.llm_api_key.get_secret_value() if self.settings.llm_api_key else None
        return build_embedder(self.settings.embedder, api_base=self.settings.llm_api_base, api_key=key)

    @cached_property
    def memories(self) -> Memories:
        from engine.memories import Memories

        return Memories(self)

    @cached_property
    def recall(self) -> Recall:
        from engine.recall import Recall

        return Recall(self)

    @cached_property
    def llm(self) -> LLMService:
        """LLM calls with per-org budget and usage accounting (raises llm_not_configured when unset)."""
        from engine.llm_service import LLMService

        return LLMService(self)

    @cached_property
    def extractor(self) -> LLMExtractor:
        from engine.extraction.llm_extractor import LLMExtractor

        return LLMExtractor(self)

    @cached_property
    def governance(self) -> Governance:
        from engine.governance import Governance

        return Governance(self)

    @cached_property
    def generation(self) -> Generation:
        from engine.generation import Generation

        return Generation(self)

    @cached_property
    def agents(self) -> Agents:
        from engine.agents import Agents

        return Agents(self)

    @cached_property
    def deep_recall(self) -> Callable[..., Any]:
        """``deep_recall(org_id, req, fast_result)``: reflection rounds and answers over smart recall."""
        from engine.deep_recall import recall_deep

        return partial(recall_deep, self)

    @cached_property
    def webhooks_out(self) -> WebhooksOut:
        """Outbound webhook subscriptions, deliveries and the outbox dispatcher."""
        from engine.webhooks_out import WebhooksOut

        return WebhooksOut(self.db)

    def sync_index(self) -> None:
        """Push pending memory vectors and deletions to the index (safe to call any time)."""
        from engine.index_sync import reconcile

        reconcile(self)

    def vector_index_status(self) -> dict[str, object]:
        return self.vector_index.ping()

    def migrate(self) -> None:
        from engine.db.migrate import upgrade

        upgrade(self.db.url)

    def close(self) -> None:
        if "vector_index" in self.__dict__:
            self.vector_index.close()
        self.db.dispose()
