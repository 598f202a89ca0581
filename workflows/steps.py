"""Step executors: each turns a rendered step into one engine call (never HTTP to memrelay itself).

:class:`Steps` receives the services steps call (built by the composition root); ``run`` dispatches on the
step's type.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from memrelay.engine.stores.db.database import Database
from memrelay.workflows import delivery, store
from memrelay.workflows.expressions import evaluate, render
from memrelay.workflows.models import (
    BatchMemorizeStep,
    ConditionStep,
    DeliverStep,
    DigestStep,
    EnrichStep,
    GenerateStep,
    MemorizeStep,
    RecallStep,
    SignalsStep,
    Step,
)

if TYPE_CHECKING:
    from memrelay.engine.core.settings import Settings
    from memrelay.engine.guidance.generation import DigestSource, Generator, MemoryRecall
    from memrelay.engine.memory.batch import BatchMemorize
    from memrelay.engine.memory.memories import Memorizer
    from memrelay.engine.stores.records import Records

Log = Callable[[str], None]


class AllowlistSource(Protocol):
    allow_local: bool
    """The operator's setting: may an org allowlist admit loopback / link-local targets?"""

    def allowlist(self, org_id: str) -> list[str]: ...


@dataclass(frozen=True)
class Steps:
    """The services workflow steps call; ``settings`` only tells whether an LLM is configured."""

    db: Database
    settings: Settings
    records: Records
    memories: Memorizer
    batches: BatchMemorize
    recall: MemoryRecall
    digests: DigestSource
    generation: Generator
    allowlists: AllowlistSource | None = None
    """The org's outbound allowlist (``WebhooksOut``) for delivery URLs rendered from run data; none: public only."""

    def run(self, org_id: str, step: Step, ctx: dict[str, Any], log: Log) -> dict[str, Any]:
        """Execute ``step`` with templates filled from ``ctx``; returns its JSON output."""
        execute: Callable[..., dict[str, Any]] = getattr(self, EXECUTORS[type(step)])
        return execute(org_id, step, ctx, log)

    def _memorize(self, org_id: str, step: MemorizeStep, ctx: dict[str, Any], log: Log) -> dict[str, Any]:
        from memrelay.engine.memory.memories import MemorizeRequest

        req = MemorizeRequest.model_validate({"content": render(step.content, ctx),
                                              "identifiers": render(step.identifiers, ctx),
                                              "tags": step.tags, "enhanced": step.enhanced, "source": "workflow"})
        out = self.memories.memorize(org_id, req)
        log(f"memorized {out['memoriesCreated']} memories on {out['recordId']}")
        return {k: out[k] for k in ("recordId", "type", "memoriesCreated", "duplicatesSkipped", "memoryIds")}

    def _batch(self, org_id: str, step: BatchMemorizeStep, ctx: dict[str, Any], log: Log) -> dict[str, Any]:
        from memrelay.engine.memory.batch import BatchMemorizeRequest

        rows = evaluate(step.rows.strip().removeprefix("{{").removesuffix("}}"), ctx)
        if not isinstance(rows, list):
            from memrelay.engine.core.errors import ValidationFailed

            raise ValidationFailed(f"batch-memorize rows must be a list, got {type(rows).__name__}")
        req = BatchMemorizeRequest.model_validate({"rows": rows, "mapping": render(step.mapping, ctx),
                                                   "tags": step.tags, "source": "workflow"})
        batches = self.batches
        run = batches.create_run(org_id, req)
        for chunk in run.chunks:
            batches.process_chunk(run.run_id, org_id, chunk.index, chunk.offset, req.mapping_json(), chunk.rows,
                                  source=req.source, tags=req.tags)
        status = batches.status(org_id, run.run_id)
        log(f"batch {run.run_id}: {len(rows)} rows")
        return status

    def _enrich(self, org_id: str, step: EnrichStep, ctx: dict[str, Any], log: Log) -> dict[str, Any]:
        from memrelay.engine.memory.memories import MemorizeRequest
        from memrelay.engine.stores.identity import Identifiers
        from memrelay.engine.stores.properties import Provenance

        ids = Identifiers.model_validate(render(step.identifiers, ctx))
        out: dict[str, Any] = {}
        if step.derive:
            values = {k: v for k, v in render(step.derive, ctx).items() if v not in (None, "")}
            res = self.records.upsert(org_id, ids, values, Provenance(source="workflow", actor="workflow"))
            out.update(recordId=res["recordId"], derived=sorted(values))
            log(f"derived {', '.join(sorted(values)) or 'nothing'}")
        text = render(step.extract_from, ctx) if step.extract_from else None
        if text:
            mem = self.memories.memorize(org_id, MemorizeRequest(content=str(text), identifiers=ids, tags=["enrichment"],
                                                                   source="workflow"))
            out.update(recordId=mem["recordId"], extracted=mem["propertiesExtracted"],
                       memoriesCreated=mem["memoriesCreated"])
            log(f"extracted {len(mem['propertiesExtracted'])} properties")
        return out

    def _recall(self, org_id: str, step: RecallStep, ctx: dict[str, Any], log: Log) -> dict[str, Any]:
        from memrelay.engine.memory.recall import RecallRequest

        req = RecallRequest.model_validate({"query": render(step.query, ctx), "identifiers": render(step.identifiers, ctx),
                                            "limit": step.limit})
        out = self.recall.smart_recall(org_id, req)
        texts = [r["text"] for r in out["results"]]
        log(f"recalled {len(texts)} memories")
        return {"memories": texts, "results": out["results"]}

    def _digest(self, org_id: str, step: DigestStep, ctx: dict[str, Any], log: Log) -> dict[str, Any]:
        from memrelay.engine.memory.digest import DigestRequest

        req = DigestRequest.model_validate({"identifiers": render(step.identifiers, ctx), "tokenBudget": step.token_budget})
        out = self.digests.digest(org_id, req)
        log(f"digest of {out['recordId']}: {out['tokenEstimate']} tokens")
        return out

    def _signals(self, org_id: str, step: SignalsStep, ctx: dict[str, Any], log: Log) -> dict[str, Any]:
        items = find_signals(self.db, org_id, tag=step.tag, since_hours=step.since_hours,
                             entity_type=step.entity_type, limit=step.limit)
        log(f"{len(items)} {step.entity_type} records with {step.tag!r} memories")
        return {"items": items, "count": len(items)}

    def _generate(self, org_id: str, step: GenerateStep, ctx: dict[str, Any], log: Log) -> dict[str, Any]:
        from memrelay.engine.adapters.llm import require_llm
        from memrelay.engine.guidance.generation import PromptRequest

        require_llm(self.settings, "workflow generation")
        ids = render(step.identifiers, ctx) if step.identifiers else {}
        body: dict[str, Any] = {"instructions": [{"prompt": render(p, ctx)} for p in step.instructions],
                                "identifiers": ids, "channel": step.channel,
                                "outputs": [{"name": o} for o in step.outputs]}
        if step.context:
            body["context"] = render(step.context, ctx)
        if step.memorize_back and ids:
            body["memorize"] = ids
        out = self.generation.generate(org_id, PromptRequest.model_validate(body))
        log(f"generated {', '.join(sorted(out['outputs']))} (review required: {out['review_required']})")
        return {"outputs": out["outputs"], **out["outputs"], "runId": out["runId"],
                "review_required": out["review_required"], "memorized": out["memorized"]}

    def _deliver(self, org_id: str, step: DeliverStep, ctx: dict[str, Any], log: Log) -> dict[str, Any]:
        text = str(render(step.text, ctx))
        if step.via == "email":
            out = delivery.send_email(str(render(step.to, ctx)), str(render(step.subject, ctx)), text)
            log(f"emailed {out['to']}")
            return {"via": "email", **out}
        body = {"text": text} if step.via == "slack" else {"text": text, **render(step.payload or {}, ctx)}
        allowlist = self.allowlists.allowlist(org_id) if self.allowlists is not None else []
        allow_local = self.allowlists.allow_local if self.allowlists is not None else False
        out = delivery.post_json(str(render(step.url, ctx)), body, written=step.url, allowlist=allowlist,
                                 allow_local=allow_local)
        log(f"posted to {step.via} ({out['status']})")
        return {"via": step.via, **out}

    def _condition(self, org_id: str, step: ConditionStep, ctx: dict[str, Any], log: Log) -> dict[str, Any]:
        expr = step.if_.strip()
        passed = bool(render(expr, ctx) if expr.startswith("{{") else evaluate(expr, ctx))
        log(f"condition {expr!r} is {passed}")
        return {"passed": passed}


def find_signals(db: Database, org_id: str, *, tag: str, since_hours: int, entity_type: str,
                 limit: int) -> list[dict[str, Any]]:
    """Records with memories tagged ``tag`` in the window, each with its keys (e.g. email)."""
    from memrelay.engine.core.util import utcnow

    found = store.records_with_tag(db, org_id, tag, utcnow() - timedelta(hours=since_hours),
                                   entity_type, limit)
    if found:
        from memrelay.engine.stores.identity import record_keys

        with db.read() as s:
            keys = record_keys(s, [f["record_id"] for f in found])
        for f in found:
            f["keys"] = keys.get(f["record_id"], {})
            f["email"] = f["keys"].get("email")
    return found


EXECUTORS: dict[type, str] = {  # step type -> the Steps method that runs it
    MemorizeStep: "_memorize", BatchMemorizeStep: "_batch", EnrichStep: "_enrich", RecallStep: "_recall",
    DigestStep: "_digest", SignalsStep: "_signals", GenerateStep: "_generate", DeliverStep: "_deliver",
    ConditionStep: "_condition",
}
