"""Generation (POST /api/v1/prompt): multi-step prompting over assembled context, with named outputs,
channel rules enforced by validation and bounded regeneration, deterministic guardrails, optional
LLM-judge evaluation and memorize-back. Nothing is written until every LLM step has succeeded."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator

from memrelay.engine.core.tokens import count_tokens, truncate
from memrelay.engine.domain import channels, guardrails
from memrelay.engine.stores.db.database import Database
from memrelay.engine.stores.identity import Identifiers
from memrelay.engine.stores.metered_llm import BudgetedLLM, LLMRun
from memrelay.engine.stores.outbox import emit

if TYPE_CHECKING:
    from memrelay.engine.guidance.governance import SmartGuidelinesRequest
    from memrelay.engine.memory.digest import DigestRequest
    from memrelay.engine.memory.memories import Memorizer
    from memrelay.engine.memory.recall import RecallRequest

SYSTEM_PROMPT = (
    "You write personalised business communication. Use only facts from the context below; never invent "
    "names, numbers, prices, dates or links. Never leave template placeholders such as [Name] or "
    "{{first_name}}. Links must be https. Follow the guidelines; critical ones are mandatory."
)
MAX_ROUTING_MESSAGE = 20_000  # SmartGuidelinesRequest.message's limit
MAX_ROUTING_NOTE = 2_000
DEFAULT_CRITERIA = ["Relevance to the instructions", "Faithfulness to the context", "Tone and clarity"]


class Instruction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=20_000)
    maxSteps: int = Field(3, ge=1, le=5, description="LLM calls this instruction may use (answer + regenerations).")


class OutputSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
    description: str = Field("", max_length=1000)


class MemorizeBack(Identifiers):
    """Where to store what was generated (record identifiers) and whether to store the outputs.

    ``captureToolResults`` (Personize: also memorize research tool results) is accepted; memrelay's prompt
    runs call no research tools, so there is nothing more to capture."""

    captureOutputs: bool = True
    captureToolResults: bool = False


class PromptRequest(BaseModel):
    """POST /api/v1/prompt."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    instructions: list[Instruction] = Field(min_length=1, max_length=10)
    context: str | None = Field(None, max_length=200_000)
    identifiers: Identifiers = Field(default_factory=Identifiers)
    outputs: list[OutputSpec] = Field(default_factory=list, max_length=20)
    channel: Literal["email", "sms", "push", "slack", "in_app"] | None = None
    evaluate: bool = False
    evaluationCriteria: list[str] = Field(default_factory=list, max_length=20)
    memorize: MemorizeBack | None = None
    sessionId: str | None = Field(None, min_length=1, max_length=200)
    useGuidelines: bool = True
    contextTokens: int = Field(3000, ge=100, le=32_000, description="Token budget for assembled memory context.")
    tier: Literal["basic", "pro", "ultra"] = "basic"
    run_async: bool = Field(False, alias="async")

    @model_validator(mode="before")
    @classmethod
    def _lift(cls, data: Any) -> Any:
        from memrelay.engine.memory.memories import lift_identifiers

        if isinstance(data, dict):
            memo = data.get("memorize")
            data = lift_identifiers({k: v for k, v in data.items() if k != "memorize"})
            if memo is not None:
                data["memorize"] = lift_identifiers(memo) if isinstance(memo, dict) else memo
            data = documented_prompt_shapes(data)
        return data

    @field_validator("evaluationCriteria", mode="before")
    @classmethod
    def _criteria(cls, v: Any) -> Any:
        """Personize documents ``evaluationCriteria`` as one string; memrelay also takes a list of criteria."""
        if isinstance(v, str):
            return [v.strip()] if v.strip() else []
        return [] if v is None else v

    @field_validator("outputs")
    @classmethod
    def _unique_outputs(cls, v: list[OutputSpec]) -> list[OutputSpec]:
        names = [o.name for o in v]
        if len(set(names)) != len(names):
            raise ValueError("output names must be unique")
        return v

    def output_specs(self) -> list[OutputSpec]:
        """Requested outputs plus the channel's required fields (channel descriptions fill gaps)."""
        specs = {o.name: o for o in self.outputs}
        if self.channel:
            for rule in channels.CHANNEL_SPECS[self.channel].fields:
                specs.setdefault(rule.name, OutputSpec(name=rule.name, description=rule.description))
        return list(specs.values())


def documented_prompt_shapes(data: dict[str, Any]) -> dict[str, Any]:
    """Personize's spellings of a prompt request, as memrelay's: a single-shot ``prompt`` (one instruction),
    string ``instructions`` (``{prompt, maxSteps: 1}``) and ``evaluate: {criteria, serverSide}`` (evaluation
    on, its criteria as ``evaluationCriteria``)."""
    data = dict(data)
    single = data.get("prompt")
    if isinstance(single, str) and "instructions" not in data:
        data["instructions"] = [{"prompt": data.pop("prompt")}]
    if isinstance(data.get("instructions"), list):
        data["instructions"] = [{"prompt": i, "maxSteps": 1} if isinstance(i, str) else i
                                for i in data["instructions"]]
    evaluate = data.get("evaluate")
    if isinstance(evaluate, dict):
        criteria = evaluate.get("criteria")
        data["evaluate"] = True
        if criteria and not data.get("evaluationCriteria"):
            data["evaluationCriteria"] = criteria
    return data


class _Criterion(BaseModel):
    criterion: str
    score: float = Field(ge=0, le=10)
    notes: str = ""


class _Evaluation(BaseModel):
    score: float = Field(ge=0, le=10, description="Overall quality 0-10.")
    criteria: list[_Criterion] = Field(default_factory=list)
    summary: str = ""


_OUTPUT_MARKER_RE = re.compile(r'<output\s+name\s*=\s*["\']([A-Za-z_][A-Za-z0-9_]*)["\']\s*>(.*?)</output\s*>',
                               re.S | re.I)


def split_output_markers(text: str) -> tuple[str, dict[str, str]]:
    """Personize's output protocol: ``<output name="x">value</output>`` markers in a response become named
    outputs (a later marker of the same name wins); the text comes back with the markers removed."""
    found = {name: value.strip() for name, value in _OUTPUT_MARKER_RE.findall(text)}
    cleaned = _OUTPUT_MARKER_RE.sub("", text)
    return re.sub(r"[ \t]+\n", "\n", cleaned).strip(), found


def parse_output_value(raw: str) -> Any:
    """An output value as Personize answers it: JSON-parsed when it parses (``"3"`` → 3), else the string."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def outputs_model(specs: list[OutputSpec]) -> type[BaseModel]:
    """A pydantic model with one required string field per named output (for structured output)."""
    fields: dict[str, Any] = {o.name: (str, Field(description=o.description or o.name)) for o in specs}
    return create_model("GeneratedOutputs", **fields)


class GuidelineSource(Protocol):
    """Smart guidelines for a message (:class:`~memrelay.engine.guidance.governance.Governance`)."""

    def smart_guidelines(self, org_id: str, req: SmartGuidelinesRequest) -> dict[str, Any]: ...


class MemoryRecall(Protocol):
    """Smart recall (:class:`~memrelay.engine.memory.recall.Recall`)."""

    def smart_recall(self, org_id: str, req: RecallRequest) -> dict[str, Any]: ...


class DigestSource(Protocol):
    """Record digests (:class:`~memrelay.engine.memory.digest.Digests`)."""

    def digest(self, org_id: str, req: DigestRequest) -> dict[str, Any]: ...


class Generator(Protocol):
    """What agents and workflow steps need of :class:`Generation`."""

    def generate(self, org_id: str, req: PromptRequest, *, run_id: str | None = None) -> dict[str, Any]: ...


class Generation:
    """Prompt runs over memory context and guidelines; memorize-back stores the result."""

    def __init__(self, db: Database, llm: BudgetedLLM, *, guidelines: GuidelineSource, recall: MemoryRecall,
                 digests: DigestSource, memories: Memorizer):
        self.db, self.llm = db, llm
        self.guidelines, self.recall, self.digests, self.memories = guidelines, recall, digests, memories

    # --- context -----------------------------------------------------------------------------
    def _guidelines(self, org_id: str, message: str, session_id: str) -> dict[str, Any]:
        from memrelay.engine.guidance.governance import SmartGuidelinesRequest

        return self.guidelines.smart_guidelines(
            org_id, SmartGuidelinesRequest(message=message[:MAX_ROUTING_MESSAGE], sessionId=session_id))

    def _memory_context(self, org_id: str, req: PromptRequest,
                        query: str) -> tuple[str, list[str], list[dict[str, Any]]]:
        """Digest + smart recall for the identified record, fetched in parallel: the context text, its
        sources and the digest's inferred values (the record's and its linked records')."""
        from memrelay.engine.memory.digest import DigestRequest
        from memrelay.engine.memory.recall import RecallRequest

        ids = _plain(req.identifiers)
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="gen-ctx") as pool:
            # each task runs in a copy of the caller's context: its department scope (access) applies there too
            digest = pool.submit(copy_context().run, self.digests.digest, org_id,
                                 DigestRequest(identifiers=ids, tokenBudget=req.contextTokens * 2 // 3))
            found = pool.submit(copy_context().run, self.recall.smart_recall, org_id,
                                RecallRequest(query=query[:10_000], identifiers=ids, limit=8))
            digested = digest.result()
            memories = [m["text"] for m in found.result()["results"]]
        markdown = digested["markdown"]
        seen = set(markdown.splitlines())
        extra = [f"- {t}" for t in memories if not any(t in line for line in seen)]
        text = markdown + ("\n\n## Relevant memories\n" + "\n".join(extra) if extra else "")
        return (truncate(text, req.contextTokens, suffix="\n…"), ["smart_digest", "smart_recall"],
                digested.get("inferred", []))

    # --- run ---------------------------------------------------------------------------------
    def generate(self, org_id: str, req: PromptRequest, *, run_id: str | None = None) -> dict[str, Any]:
        """Run every instruction in order and return the named outputs with checks and usage."""
        run = self.llm.run(org_id, "generation", run_id=run_id)
        session_id = req.sessionId or run.run_id
        sources: list[str] = ["given"] if req.context else []
        memory = req.context or ""
        guideline_reports: list[dict[str, Any]] = []
        inferred: list[dict[str, Any]] = []  # the record's inferred attributes steer guideline routing
        if not req.context and req.identifiers.keys():
            memory, found, inferred = self._memory_context(org_id, req, " ".join(i.prompt for i in req.instructions))
            sources += found
        if req.useGuidelines:
            guideline_reports.append(self._guidelines(
                org_id, routing_message(req.instructions[0].prompt, inferred), session_id))
        messages: list[dict[str, Any]] = [{"role": "system", "content": self._system(memory, guideline_reports)}]
        steps: list[dict[str, Any]] = []
        specs = req.output_specs()
        final: dict[str, str] = {}
        marked: dict[str, str] = {}  # <output> markers of free-text steps, last write wins
        free_text: str | None = None
        channel_report: dict[str, Any] | None = None
        for i, instruction in enumerate(req.instructions):
            if i and req.useGuidelines:
                g_report = self._guidelines(org_id, routing_message(instruction.prompt, inferred), session_id)
                guideline_reports.append(g_report)
                if g_report["compiledContext"]:
                    messages.append({"role": "system", "content": "Additional guidelines:\n"
                                     + g_report["compiledContext"]})
            last = i == len(req.instructions) - 1
            if last and specs:
                structured, channel_report, attempts = self._final_step(run, req, messages, instruction, specs)
                final = {**marked, **structured}
                steps.append({"prompt": instruction.prompt, "output": structured, "attempts": attempts})
            else:
                raw = run.client.complete([*messages, {"role": "user", "content": instruction.prompt}],
                                          tier=req.tier).text
                free_text, markers = split_output_markers(raw)
                marked.update(markers)
                messages += [{"role": "user", "content": instruction.prompt}, {"role": "assistant", "content": raw}]
                steps.append({"prompt": instruction.prompt, "output": free_text, "attempts": 1})
                if last:
                    final = {**marked, "output": free_text}
        context_text = "\n".join([memory, *(r["compiledContext"] for r in guideline_reports),
                                  *(i.prompt for i in req.instructions)])
        report = guardrails.check(final, context=context_text)
        evaluation = self._evaluate(run, req, final, context_text) if req.evaluate else None
        review_reasons = report.reasons + [f"channel: {v}" for v in (channel_report or {}).get("violations", [])]
        outputs = {k: parse_output_value(v) for k, v in final.items()}
        result: dict[str, Any] = {
            "runId": run.run_id, "text": response_text(final, None if specs else free_text),
            "outputs": outputs, **{k: v for k, v in outputs.items() if k not in _RESERVED},
            "metadata": {"toolCalls": [], "toolResults": []},
            "steps": steps, "channel": channel_report,
            "guardrails": report.as_dict(), "review_required": bool(review_reasons),
            "reviewReasons": review_reasons, "evaluation": evaluation,
            "context": {"sources": sources + (["smart_guidelines"] if guideline_reports else []),
                        "memoryTokens": count_tokens(memory) if memory else 0,
                        "guidelines": [g["name"] for r in guideline_reports for g in r["guidelines"]
                                       if g["delivery"] != "already_delivered"],
                        "guidelineTokensSaved": sum(r["tokensSaved"] for r in guideline_reports),
                        "routingAttributes": inferred if guideline_reports else [],
                        "sessionId": session_id},
        }
        result["memorized"] = self._memorize_back(org_id, req.memorize, req.channel, final) if req.memorize else None
        with self.db.session() as s:
            emit(s, org_id, "generation.completed", {
                "runId": run.run_id, "channel": req.channel, "outputs": sorted(final),
                "reviewRequired": result["review_required"], "recordId": (result["memorized"] or {}).get("recordId"),
                "evaluationScore": evaluation["score"] if evaluation else None})
        result["usage"] = run.usage_dict()
        return result

    @staticmethod
    def _system(memory: str, guideline_reports: list[dict[str, Any]]) -> str:
        parts = [SYSTEM_PROMPT]
        if memory:
            parts.append("## Context\n" + memory)
        compiled = "\n\n".join(r["compiledContext"] for r in guideline_reports if r["compiledContext"])
        if compiled:
            parts.append("## Guidelines\n" + compiled)
        return "\n\n".join(parts)

    def _final_step(self, run: LLMRun, req: PromptRequest, messages: list[dict[str, Any]],
                    instruction: Instruction, specs: list[OutputSpec]
                    ) -> tuple[dict[str, str], dict[str, Any] | None, int]:
        """Structured outputs, regenerated with feedback while channel rules or blocking guardrails fail
        (at most ``instruction.maxSteps`` calls). Returns (outputs, channel report, attempts)."""
        schema = outputs_model(specs)
        ask = instruction.prompt
        if req.channel:
            ask += "\n\n" + channels.CHANNEL_SPECS[req.channel].instructions()
        conversation = [*messages, {"role": "user", "content": ask}]
        outputs: dict[str, str] = {}
        attempts = 0
        while attempts < instruction.maxSteps:
            attempts += 1
            value = run.client.structured(conversation, schema, tier=req.tier).value
            outputs = {k: str(v) for k, v in value.model_dump().items()}
            problems = channels.violations(req.channel, outputs) + [
                f.message for f in guardrails.check(outputs, context="").blocking]
            if not problems:
                break
            conversation += [{"role": "assistant", "content": value.model_dump_json()},
                             {"role": "user", "content": "Rewrite it. Fix these problems: " + "; ".join(problems)}]
        if not req.channel:
            return outputs, None, attempts
        remaining = channels.violations(req.channel, outputs)
        return outputs, {"name": req.channel, "compliant": not remaining, "violations": remaining,
                         "attempts": attempts}, attempts

    def _evaluate(self, run: LLMRun, req: PromptRequest, outputs: dict[str, str], context: str) -> dict[str, Any]:
        criteria = req.evaluationCriteria or DEFAULT_CRITERIA
        messages = [
            {"role": "system", "content": "You are a strict reviewer. Score the generated output 0-10 overall "
                                          "and per criterion, with a short note for each criterion."},
            {"role": "user", "content": "Criteria:\n" + "\n".join(f"- {c}" for c in criteria)
             + f"\n\nContext the writer had:\n{truncate(context, 4000)}\n\nOutput:\n"
             + "\n".join(f"{k}: {v}" for k, v in outputs.items())}]
        judged = run.client.structured(messages, _Evaluation, tier=req.tier).value
        return judged.model_dump()

    def _memorize_back(self, org_id: str, memo: MemorizeBack, channel: str | None,
                       outputs: dict[str, str]) -> dict[str, Any]:
        """Store the generated message on the record as one memory tagged ``generated``, verbatim: it quotes
        what was produced, so relative dates in it ("next Tuesday") are not rewritten; no property writes."""
        from memrelay.engine.memory.memories import MemorizeRequest

        ids = _plain(Identifiers.model_validate(memo.model_dump(include=set(Identifiers.model_fields))))
        what = f"Generated {channel} message" if channel else "Generated content"
        body = "; ".join(f"{k}: {v}" for k, v in outputs.items() if k != "body_html") if memo.captureOutputs \
            else ", ".join(outputs)
        tags = ["generated", *([channel] if channel else [])]
        request = MemorizeRequest(content=f"{what} — {body}", identifiers=ids, tags=tags, source="generation",
                                  max_properties=0, verbatim=True)
        stored = self.memories.memorize(org_id, request)
        return {"recordId": stored["recordId"], "memoryIds": stored["memoryIds"]}


def routing_message(prompt: str, inferred: list[dict[str, Any]]) -> str:
    """The text guidelines are routed with: the task, plus a line naming the record's inferred attributes
    (``Known attributes (inferred): company_type: B2C``) so attribute-specific guidelines are picked."""
    pairs = dict.fromkeys(f"{a['property']}: {_value_text(a['value'])}" for a in inferred)
    if not pairs:
        return prompt
    note = ("\n\nKnown attributes (inferred): " + "; ".join(pairs))[:MAX_ROUTING_NOTE]
    return prompt[:MAX_ROUTING_MESSAGE - len(note)] + note


def _value_text(value: Any) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def response_text(outputs: dict[str, str], free_text: str | None) -> str:
    """Personize's ``data.text``, the cleaned response: a ``text`` output (SMS), else the last free-text
    step's answer without its markers, else the structured outputs' values."""
    if "text" in outputs:
        return outputs["text"]
    if free_text is not None:
        return free_text
    return "\n\n".join(v for v in outputs.values() if v)


def _plain(ids: Identifiers) -> dict[str, Any]:
    """Identifiers as a plain dict (the semantic request models lift identifiers from dicts)."""
    return ids.model_dump(exclude_none=True, exclude_defaults=True)


_RESERVED = {"runId", "text", "metadata", "outputs", "steps", "channel", "guardrails", "review_required",
             "reviewReasons", "evaluation", "context", "memorized", "usage"}

