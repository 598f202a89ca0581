"""The enrichment service: infer one property for given records, whole-collection runs (start, chunk, status,
resume), and keeping inferred values current (sweep the change feed, refresh what is due)."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from memrelay.engine.core.embedder import Embedder
from memrelay.engine.core.errors import MemrelayError
from memrelay.engine.core.properties_types import PropertySpec
from memrelay.engine.core.util import utcnow
from memrelay.engine.enrichment import freshness, runs
from memrelay.engine.enrichment.declarations import declared_path, inferred_by_type, require_inferred
from memrelay.engine.enrichment.evidence import gather
from memrelay.engine.enrichment.inference import Inferrer
from memrelay.engine.enrichment.llm import FEATURE, RECORD_TOKENS, LLMInferrer, system_prompt, user_prompt
from memrelay.engine.enrichment.offline import OfflineInferrer
from memrelay.engine.enrichment.runs import EnrichmentRunRequest
from memrelay.engine.enrichment.writer import apply_inferences
from memrelay.engine.stores.collections import Collections, normalise_entity_type
from memrelay.engine.stores.db.database import Database
from memrelay.engine.stores.db.models import Collection, Record
from memrelay.engine.stores.db.models_enrichment import EnrichmentStale
from memrelay.engine.stores.metered_llm import LLMService, ensure_configured
from memrelay.engine.stores.search import SearchQuery, run_search
from memrelay.engine.stores.usage_store import org_budget_limit

log = logging.getLogger(__name__)
ESTIMATE_SAMPLE = 20
REFRESH_BATCH = 200
SEARCH_PAGE = 1000
RETRY_AFTER = timedelta(minutes=15)
"""A refresh that failed (no model for an ``llm`` declaration, budget exhausted) is retried this much later."""


class Enrichment:
    """Inferred properties: inference, runs and freshness (see :mod:`memrelay.engine.enrichment`)."""

    def __init__(self, db: Database, collections: Collections, llm: LLMService, embedder: Embedder | None, *,
                 debounce_s: float = 30.0):
        self.db, self.collections, self.llm, self.embedder = db, collections, llm, embedder
        self.debounce_s = debounce_s
        self.clock: Callable[[], datetime] = utcnow
        """Now, for stale marks' due times (tests move it instead of waiting)."""

    # --- inference ---------------------------------------------------------------------------
    def resolve_mode(self, mode: str) -> str:
        """``auto`` → ``llm`` with a configured model, else ``offline``; ``llm`` without one answers 503."""
        if mode == "auto":
            return "llm" if self.llm.configured else "offline"
        if mode == "llm":
            ensure_configured(self.llm.settings, "enrichment")
        return mode

    def inferrer(self, org_id: str, mode: str, run_id: str | None = None) -> Inferrer:
        if self.resolve_mode(mode) == "llm":
            return LLMInferrer(self.llm.run(org_id, FEATURE, run_id=run_id))
        return OfflineInferrer(self.embedder)

    def infer(self, org_id: str, entity_type: str, name: str, record_ids: list[str], *, mode: str = "auto",
              run_id: str | None = None) -> dict[str, Any]:
        """Infer ``name`` for ``record_ids`` and write the known values (and clear inferred values whose
        evidence is gone); counts by outcome and the usage. ``auto`` takes the declaration's path."""
        with self.db.read() as s:
            schema = self.collections.schema_for(s, org_id, entity_type)
            spec = require_inferred(schema, entity_type, name)
        inferrer = self.inferrer(org_id, declared_path(spec) if mode == "auto" else mode, run_id)
        with self.db.read() as s:
            records = list(s.scalars(select(Record).where(Record.org_id == org_id, Record.id.in_(record_ids),
                                                          Record.deleted_at.is_(None)).order_by(Record.id)))
            evidence = gather(s, org_id, records, spec)
        inferences = inferrer.infer(spec, [evidence[r.id] for r in records])
        with self.db.session() as s:
            counts = apply_inferences(s, org_id, spec, schema, inferences, mode=inferrer.mode, run_id=run_id)
            freshness.clear_for(s, [r.id for r in records], name)
        return {"counts": dict(counts), "processed": len(records), "mode": inferrer.mode,
                "usage": inferrer.usage(),
                "results": [{"recordId": i.record_id, "value": i.value, "confidence": i.confidence,
                             "producer": i.producer, "reasoning": i.reasoning} for i in inferences]}

    # --- whole-collection runs ----------------------------------------------------------------
    def start_run(self, org_id: str, req: EnrichmentRunRequest) -> dict[str, Any]:
        """Create a run over the collection's records (or the filter's matches), in chunks. An LLM run is
        estimated first and refused (402) when the org's remaining budget cannot cover the estimate."""
        with self.db.read() as s:
            entity_type = self._entity_type(s, org_id, req.collection)
            schema = self.collections.schema_for(s, org_id, entity_type)
            spec = require_inferred(schema, entity_type, req.property)
            mode = self.resolve_mode(declared_path(spec) if req.mode == "auto" else req.mode)
            record_ids = self._targets(s, org_id, entity_type, req)
            estimate = self._estimate(s, org_id, spec, record_ids) if mode == "llm" else 0.0
        budget = self._budget(org_id) if mode == "llm" else None
        if budget is not None:
            from memrelay.engine.adapters.llm import ensure_within_budget

            ensure_within_budget(budget["limitUsd"], budget["spentUsd"], estimate)
        query = {"groups": [g.model_dump() for g in req.groups], "logic": req.logic} if req.groups else None
        if req.dryRun:
            return {"dryRun": True, "collection": entity_type, "property": spec.propertyName, "mode": mode,
                    "total": len(record_ids), "estimateUsd": round(estimate, 6), "budget": budget}
        with self.db.session() as s:
            run = runs.create_run(s, org_id, entity_type, spec.propertyName, mode, record_ids, req.chunkSize,
                                  estimate_usd=estimate, query=query)
            return {**runs.run_to_dict(run), "budget": budget}

    def process_chunk(self, run_id: str, org_id: str, index: int) -> dict[str, Any]:
        """Infer and write one chunk of a run, once (a done chunk is skipped); a failure is recorded on the
        chunk and raised."""
        with self.db.read() as s:
            run = runs.get_run(s, org_id, run_id)
            chunk = runs.get_chunk(s, run_id, index)
            if chunk.status == "done":
                return {"runId": run_id, "chunk": index, "skipped": True}
            entity_type, name, mode, ids = run.entity_type, run.property, run.mode, list(chunk.record_ids)
        try:
            result = self.infer(org_id, entity_type, name, ids, mode=mode, run_id=run_id)
        except MemrelayError as exc:
            self._chunk_failed(run_id, index, f"{exc.code}: {exc.message}")
            raise
        except Exception as exc:
            self._chunk_failed(run_id, index, f"{exc.__class__.__name__}: {exc}")
            raise
        with self.db.session() as s:
            run = runs.get_run(s, org_id, run_id, lock=True)
            chunk = runs.get_chunk(s, run_id, index)
            if chunk.status != "done":
                chunk.status, chunk.error, chunk.updated_at = "done", None, utcnow()
                chunk.attempts += 1
                runs.record_chunk(run, Counter(result["counts"]), float(result["usage"].get("costUsd") or 0.0),
                                  result["processed"], runs.failed_chunk_count(s, run_id))
            return {"runId": run_id, "chunk": index, **result["counts"], "status": run.status}

    def _chunk_failed(self, run_id: str, index: int, error: str) -> None:
        with self.db.session() as s:
            run = runs.get_run(s, None, run_id, lock=True)
            chunk = runs.get_chunk(s, run_id, index)
            chunk.status, chunk.error, chunk.updated_at = "failed", error[:2000], utcnow()
            chunk.attempts += 1
            run.status, run.error, run.updated_at = "failed", error[:2000], utcnow()

    def status(self, org_id: str, run_id: str) -> dict[str, Any]:
        """Progress, counts by outcome, chunks, estimate and cost of a run."""
        with self.db.read() as s:
            run = runs.get_run(s, org_id, run_id)
            return runs.run_to_dict(run, runs.failed_chunk_count(s, run_id), runs.spent_usd(s, run))

    def pending_chunks(self, org_id: str, run_id: str) -> list[int]:
        """The chunks a resume must (re-)run."""
        with self.db.read() as s:
            runs.get_run(s, org_id, run_id)
            return runs.pending_chunks(s, run_id)

    def resume(self, org_id: str, run_id: str) -> list[int]:
        """Put a run back to ``running`` and return the chunks still to do."""
        with self.db.session() as s:
            run = runs.get_run(s, org_id, run_id, lock=True)
            pending = runs.pending_chunks(s, run_id)
            if pending:
                run.status, run.error, run.updated_at = "running", None, utcnow()
            return pending

    def _entity_type(self, s: Session, org_id: str, ref: str) -> str:
        by_name = s.scalar(select(Collection.entity_type).where(Collection.org_id == org_id, Collection.name == ref,
                                                                Collection.archived_at.is_(None)))
        return by_name or self.collections.type_name(s, org_id, normalise_entity_type(ref))

    def _targets(self, s: Session, org_id: str, entity_type: str, req: EnrichmentRunRequest) -> list[str]:
        if not req.groups:
            return list(s.scalars(select(Record.id).where(Record.org_id == org_id, Record.entity_type == entity_type,
                                                          Record.deleted_at.is_(None)).order_by(Record.id)))
        ids: list[str] = []
        while True:
            q = SearchQuery.model_validate({"identifiers": {"type": entity_type}, "groups": req.groups,
                                            "logic": req.logic, "offset": len(ids), "limit": SEARCH_PAGE})
            page, total = run_search(s, self.collections, org_id, q)
            ids.extend(r.id for r in page)
            if not page or len(ids) >= total:
                return ids

    def _estimate(self, s: Session, org_id: str, spec: PropertySpec, record_ids: list[str]) -> float:
        """Dollars the run should cost: prompts of a sample of records, priced per token, scaled to all."""
        from memrelay.engine.adapters.llm.usage import estimate_cost

        if not record_ids:
            return 0.0
        sample = list(s.scalars(select(Record).where(Record.id.in_(record_ids[:ESTIMATE_SAMPLE]))))
        evidence = gather(s, org_id, sample, spec)
        messages = [{"role": "system", "content": system_prompt(spec)},
                    {"role": "user", "content": user_prompt([evidence[r.id] for r in sample], RECORD_TOKENS)}]
        per_sample = estimate_cost(self.llm.config.model_for("basic"), messages, 60 * len(sample))
        return per_sample * len(record_ids) / len(sample)

    def _budget(self, org_id: str) -> dict[str, Any]:
        limit = org_budget_limit(self.db, org_id, self.llm.settings.llm_monthly_budget_usd)
        spent = self.llm.store.spent_usd(org_id)
        return {"limitUsd": limit, "spentUsd": round(spent, 8),
                "remainingUsd": None if limit is None else round(max(0.0, limit - spent), 8)}

    # --- keeping values current ---------------------------------------------------------------
    def org_ids(self) -> list[str]:
        """Orgs that declare at least one inferred property."""
        with self.db.read() as s:
            orgs = sorted(set(s.scalars(select(Collection.org_id).where(Collection.archived_at.is_(None)))))
            return [o for o in orgs if inferred_by_type(s, self.collections, o)]

    def sweep(self, org_id: str) -> dict[str, Any]:
        """Read the org's change feed and mark dependent inferred properties stale; returns the marks touched
        and when the earliest mark is due."""
        with self.db.session() as s:
            inferred = inferred_by_type(s, self.collections, org_id)
            changes, _ = freshness.read_feed(s, org_id)
            marked = freshness.mark_stale(s, org_id, changes, inferred, debounce_s=self.debounce_s,
                                          now=self.clock()) if inferred else 0
            s.flush()
            due = freshness.next_due(s, org_id)
        return {"orgId": org_id, "changes": len(changes), "marked": marked, "nextDueAt": due}

    def refresh_due(self, org_id: str, *, limit: int = REFRESH_BATCH) -> dict[str, Any]:
        """Re-infer the stale properties that are due, each by its declared path (``auto``: the LLM when
        configured, else offline). Marks whose refresh fails are retried ``RETRY_AFTER`` later."""
        now = self.clock()
        with self.db.read() as s:
            marks = [(m.id, m.marks, m.record_id, m.property) for m in freshness.due_marks(s, org_id, limit, now)]
            types = dict(s.execute(select(Record.id, Record.entity_type).where(
                Record.id.in_({m[2] for m in marks}))).all()) if marks else {}
        counts: Counter[str] = Counter()
        groups: dict[tuple[str, str], list[tuple[int, int, str]]] = {}
        for mark_id, seen, rid, name in marks:
            if rid in types:
                groups.setdefault((types[rid], name), []).append((mark_id, seen, rid))
        for (entity_type, name), items in groups.items():
            try:
                result = self.infer(org_id, entity_type, name, [rid for _, _, rid in items])
            except MemrelayError as exc:  # e.g. budget exhausted: the marks stay and are retried later
                log.warning("refreshing %s.%s for org %s failed: %s", entity_type, name, org_id, exc.message)
                counts["failed"] += len(items)
                with self.db.session() as s:
                    freshness.postpone(s, [mid for mid, _, _ in items], now + RETRY_AFTER)
                continue
            counts.update(result["counts"])
            with self.db.session() as s:
                freshness.clear_marks(s, [(mid, seen) for mid, seen, _ in items])
        with self.db.read() as s:
            due = freshness.next_due(s, org_id)
        return {"orgId": org_id, "refreshed": len(marks), "counts": dict(counts), "nextDueAt": due}

    def stale(self, org_id: str) -> dict[str, Any]:
        """Stale marks per property (how many, how many due, the policy)."""
        with self.db.read() as s:
            return freshness.stale_summary(s, org_id, self.clock())

    def stale_records(self, org_id: str, name: str) -> list[str]:
        with self.db.read() as s:
            return list(s.scalars(select(EnrichmentStale.record_id).where(
                EnrichmentStale.org_id == org_id, EnrichmentStale.property == name).order_by(EnrichmentStale.id)))
