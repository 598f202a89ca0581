"""The composition root: the one place that builds memrelay's services and wires them together.

``build_services(settings)`` returns a :class:`Services` for this process. Edges — gateway views, worker jobs,
CLI commands — hold that object and pick the service they need (``services.memories.memorize(...)``). No
service ever receives ``Services``: each constructor names what it uses, often as a narrow ``Protocol``
(an ``Embedder``, an ``IndexWriter``, a ``BudgetedLLM``, a ``Memorizer`` ...), and nothing in
``memrelay.engine``, ``memrelay.connectors`` or ``memrelay.workflows`` imports this module.

What is built, bottom-up (each line uses only what is above it)::

    settings, db (SQL engine; connects on first query)
    stores        tenancy, collections, records(collections), sources, events
    egress        webhooks_out (outbound subscriptions, deliveries, the outbox dispatcher)
    adapters      vector_index (Milvus; connects on first use), embedder (LazyEmbedder; model loads on first use)
    index         MemoryIndex(db, embedder, vector_index)       -> IndexWriter / IndexSearch
    llm           LLMService(db, settings)                      -> BudgetedLLM (litellm imported on first run)
    memory        extractor(llm) [only with a model], memories, batches, deep_recall(llm) [only with a model],
                  recall(index, deep_recall), digests, similarity(index), query_properties(llm)
    enrichment    enrichment(collections, llm, embedder)
    guidance      governance(embedder, llm), generation(llm, governance, recall, digests, memories),
                  agents(generation)
    ingest        pipeline(records, memories), backfill(sources, records, memories)
    workflows     workflow_steps(records, memories, batches, recall, digests, generation),
                  workflow_runner(db, workflow_steps)

Why lazily: every attribute is a ``cached_property``, so a service (and its module) is built on first use and
then shared for the life of the process. A gateway thus starts without importing litellm (seconds), loading
the embedding model or connecting to Milvus (``tests/test_composition.py`` checks this); a worker pays those
costs once, on its first job, never per job. Build ``Services`` after any fork (in each gunicorn worker, in each RQ worker process):
it owns connection pools, the Milvus client and background flush timers, none of which may cross a fork.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from memrelay.engine.core.settings import Settings
from memrelay.engine.stores.db.database import Database

if TYPE_CHECKING:
    from memrelay.engine.adapters.embedding.lazy import LazyEmbedder
    from memrelay.engine.adapters.vector_index import VectorIndex
    from memrelay.engine.core.embedder import Embedder
    from memrelay.engine.egress.webhooks_out import WebhooksOut
    from memrelay.engine.enrichment.service import Enrichment
    from memrelay.engine.guidance.agents import Agents
    from memrelay.engine.guidance.generation import Generation
    from memrelay.engine.guidance.governance import Governance
    from memrelay.engine.ingest.backfill import Backfill
    from memrelay.engine.ingest.pipeline import EventPipeline
    from memrelay.engine.memory.batch import BatchMemorize
    from memrelay.engine.memory.deep_recall import DeepRecall
    from memrelay.engine.memory.digest import Digests
    from memrelay.engine.memory.index_sync import MemoryIndex
    from memrelay.engine.memory.llm_extractor import LLMExtractor
    from memrelay.engine.memory.memories import Memories
    from memrelay.engine.memory.query_properties import QueryProperties
    from memrelay.engine.memory.recall import Recall
    from memrelay.engine.memory.similar import Similarity
    from memrelay.engine.stores.collections import Collections
    from memrelay.engine.stores.event_log import EventLog
    from memrelay.engine.stores.metered_llm import LLMService
    from memrelay.engine.stores.records import Records
    from memrelay.engine.stores.sources import Sources
    from memrelay.engine.stores.tenancy import Tenancy
    from memrelay.workflows.runner import Runner
    from memrelay.workflows.steps import Steps


def build_services(settings: Settings) -> Services:
    """Every service of this process, built once (call it after any fork: in each gunicorn or RQ worker)."""
    return Services(settings)


class Services:
    """The services of one process, each built on first use (see the module docstring for the wiring)."""

    def __init__(self, settings: Settings, db: Database | None = None):
        self.settings = settings
        self.db = db or Database.from_settings(settings)
        from memrelay.engine.core.secretbox import configure_keyring, load_keyring
        from memrelay.engine.egress.crm_hosts import configure_crm_test_hosts
        from memrelay.engine.stores.properties import configure_source_clock_skew

        configure_source_clock_skew(settings.source_clock_skew_s)  # process-wide policies from settings
        configure_crm_test_hosts(settings.crm_test_host_list)
        configure_keyring(lambda: load_keyring(
            settings.secret_keys.get_secret_value() if settings.secret_keys else None, settings.data_dir))

    # --- SQL stores and egress --------------------------------------------------------------------
    @cached_property
    def tenancy(self) -> Tenancy:
        from memrelay.engine.stores.tenancy import Tenancy

        return Tenancy(self.db)

    @cached_property
    def collections(self) -> Collections:
        from memrelay.engine.stores.collections import Collections

        return Collections(self.db)

    @cached_property
    def records(self) -> Records:
        from memrelay.engine.stores.records import Records

        return Records(self.db, self.collections, soft_delete_days=self.settings.soft_delete_days)

    @cached_property
    def sources(self) -> Sources:
        from memrelay.connectors.registry import redact_config, token_in_path
        from memrelay.engine.stores.sources import Sources

        return Sources(self.db, redact=redact_config, token_in_path=token_in_path)

    @cached_property
    def events(self) -> EventLog:
        from memrelay.engine.stores.event_log import EventLog

        return EventLog(self.db, max_attempts=self.settings.event_max_attempts)

    @cached_property
    def webhooks_out(self) -> WebhooksOut:
        """Outbound webhook subscriptions, deliveries and the outbox dispatcher."""
        from memrelay.engine.egress.webhooks_out import RETRY_SCHEDULE_S, WebhooksOut

        schedule = self.settings.webhook_retry_schedule_s
        return WebhooksOut(self.db, schedule=tuple(schedule) if schedule else RETRY_SCHEDULE_S,
                           allow_local=self.settings.egress_allow_local_targets)

    # --- adapters ---------------------------------------------------------------------------------
    @cached_property
    def vector_index(self) -> VectorIndex:
        """The Milvus client wrapper (connects on first use)."""
        from pathlib import Path

        from memrelay.engine.adapters.vector_index import VectorIndex

        wanted = self.settings.milvus_wanted_file
        return VectorIndex(self.settings.milvus_target, on_demand=Path(wanted) if wanted else None)

    @cached_property
    def embedder(self) -> LazyEmbedder:
        """The configured embedder; the model itself loads on the first ``name``/``dim``/``embed``."""
        from memrelay.engine.adapters.embedding.lazy import LazyEmbedder

        return LazyEmbedder(self._load_embedder)

    def _load_embedder(self) -> Embedder:
        from memrelay.engine.adapters.embedding.factory import build_embedder

        key = self.settings.llm_api_key.get_secret_value() if self.settings.llm_api_key else None
        return build_embedder(self.settings.embedder, api_base=self.settings.llm_api_base, api_key=key)

    @cached_property
    def index(self) -> MemoryIndex:
        """Milvus kept in step with SQL: post-commit writes, reconcile, reindex, checks, ANN search."""
        from memrelay.engine.memory.index_sync import MemoryIndex

        return MemoryIndex(self.db, self.embedder, self.vector_index)

    @cached_property
    def llm(self) -> LLMService:
        """LLM calls with per-org budget and usage accounting (raises llm_not_configured when unset)."""
        from memrelay.engine.stores.metered_llm import LLMService

        return LLMService(self.db, self.settings)

    # --- memory -----------------------------------------------------------------------------------
    @cached_property
    def extractor(self) -> LLMExtractor | None:
        """LLM extraction for ``enhanced`` memorize and batch ``extractMemories``; None without a model."""
        if not self.settings.llm_configured:
            return None
        from memrelay.engine.memory.llm_extractor import LLMExtractor

        return LLMExtractor(self.llm)

    @cached_property
    def memories(self) -> Memories:
        from memrelay.engine.memory.memories import Memories

        return Memories(self.db, self.embedder, self.records, self.collections, self.index, self.extractor)

    @cached_property
    def batches(self) -> BatchMemorize:
        """Batch memorize runs (chunks processed by RQ jobs)."""
        from memrelay.engine.memory.batch import BatchMemorize

        return BatchMemorize(self.db, self.embedder, self.collections, self.index, self.extractor)

    @cached_property
    def deep_recall(self) -> DeepRecall | None:
        """Reflection rounds and answers over smart recall; None without a model (recall says so)."""
        if not self.settings.llm_configured:
            return None
        from memrelay.engine.memory.deep_recall import DeepRecall

        return DeepRecall(self.llm)

    @cached_property
    def recall(self) -> Recall:
        from memrelay.engine.memory.recall import Recall

        recall = Recall(self.db, self.embedder, self.index, self.deep_recall)
        recall.exact.snapshot_dir = self.settings.data_dir / "org_vectors"  # shared, memory-mapped (issue 16)
        recall.exact.max_rows = self.settings.exact_search_max_rows
        return recall

    @cached_property
    def digests(self) -> Digests:
        from memrelay.engine.memory.digest import Digests

        return Digests(self.db)

    @cached_property
    def similarity(self) -> Similarity:
        from memrelay.engine.memory.similar import Similarity

        return Similarity(self.db, self.embedder, self.index, exact=self.recall.exact)  # one org index per process

    @cached_property
    def query_properties(self) -> QueryProperties:
        """LLM-judged property search (``/memory/query-properties``); answers 503 without a model."""
        from memrelay.engine.memory.query_properties import QueryProperties

        return QueryProperties(self.db, self.llm, self.embedder)

    @cached_property
    def enrichment(self) -> Enrichment:
        """Inferred properties: LLM or offline inference, whole-collection runs, stale marks and refreshes."""
        from memrelay.engine.enrichment.service import Enrichment

        return Enrichment(self.db, self.collections, self.llm, self.embedder,
                          debounce_s=self.settings.enrichment_debounce_s)

    # --- guidance ---------------------------------------------------------------------------------
    @cached_property
    def governance(self) -> Governance:
        from memrelay.engine.guidance.governance import Governance

        return Governance(self.db, self.embedder, self.llm)

    @cached_property
    def generation(self) -> Generation:
        from memrelay.engine.guidance.generation import Generation

        return Generation(self.db, self.llm, guidelines=self.governance, recall=self.recall,
                          digests=self.digests, memories=self.memories)

    @cached_property
    def agents(self) -> Agents:
        from memrelay.engine.guidance.agents import Agents

        return Agents(self.db, self.generation)

    # --- ingest -----------------------------------------------------------------------------------
    @cached_property
    def pipeline(self) -> EventPipeline:
        """Logged inbound events → records, properties and memories."""
        from memrelay.engine.ingest.pipeline import EventPipeline

        return EventPipeline(self.records, self.memories)

    @cached_property
    def backfill(self) -> Backfill:
        """CRM backfills (``memrelay sync`` and the sync job)."""
        from memrelay.engine.ingest.backfill import Backfill

        return Backfill(self.sources, self.records, self.memories)

    # --- workflows --------------------------------------------------------------------------------
    @cached_property
    def workflow_steps(self) -> Steps:
        from memrelay.workflows.steps import Steps

        return Steps(db=self.db, settings=self.settings, records=self.records, memories=self.memories,
                     batches=self.batches, recall=self.recall, digests=self.digests, generation=self.generation,
                     allowlists=self.webhooks_out)

    @cached_property
    def workflow_runner(self) -> Runner:
        """Executes stored workflow runs (the workflow job and ``memrelay workflows run``)."""
        from memrelay.workflows.runner import Runner

        return Runner(self.db, self.workflow_steps)

    # --- process lifecycle ------------------------------------------------------------------------
    def migrate(self) -> None:
        """Bring the SQL schema to the newest migration."""
        from memrelay.engine.stores.db.migrate import upgrade

        upgrade(self.db.url)

    def close(self) -> None:
        """Close the Milvus client (if it was opened) and dispose the SQL pool."""
        if "vector_index" in self.__dict__:
            self.vector_index.close()
        self.db.dispose()
