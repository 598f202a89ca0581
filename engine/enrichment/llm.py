"""The LLM inference path: one structured-output call per batch of records, each record's evidence cut to a
token budget; the model cites evidence by reference and may answer null (unknown). Cost is recorded per org
by the metered LLM run (``feature="enrichment"``)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field

from memrelay.engine.core.properties_types import PropertySpec, PropertyType
from memrelay.engine.enrichment.evidence import Evidence
from memrelay.engine.enrichment.inference import MIN_CONFIDENCE, Inference, typed_value, unknown
from memrelay.engine.stores.metered_llm import LLMRun

BATCH_RECORDS = 10
RECORD_TOKENS = 600
FEATURE = "enrichment"


class _Answer(BaseModel):
    record: int = Field(description="The record's number as given.")
    value: Any = Field(None, description="The value, or null when the evidence does not support one.")
    confidence: float = Field(0.0, ge=0, le=1)
    evidence: list[str] = Field(default_factory=list, description="References of the evidence used, e.g. m2, p1.")
    reasoning: str = Field("", description="One short sentence.")


class InferenceOutput(BaseModel):
    """What the model returns for one batch of records."""

    results: list[_Answer] = Field(default_factory=list)


def system_prompt(spec: PropertySpec) -> str:
    """The task: infer one standardised property from evidence only, null when unsupported."""
    assert spec.inferred is not None
    if spec.type == PropertyType.OPTIONS:
        shape = "one of " + json.dumps(spec.options)
    elif spec.type == PropertyType.BOOLEAN:
        shape = "true or false"
    else:
        shape = f"a {spec.type.value} value"
    return ("You infer one standardised attribute of CRM records from the evidence listed for each record. "
            "Use only that evidence. When it does not support an answer, give null: never guess.\n"
            f"Attribute: {spec.propertyName} ({shape}). {spec.description}\n"
            f"Instruction: {spec.inferred.instruction}\n"
            "For every record give its number, the value, your confidence (0-1), the references of the evidence "
            "you relied on, and one short sentence of reasoning.")


def user_prompt(evidence: list[Evidence], token_budget: int = RECORD_TOKENS) -> str:
    return "\n\n".join(f"### Record {i + 1}\n{ev.render(token_budget)}" for i, ev in enumerate(evidence))


class LLMInferrer:
    """Structured-output inference through one org-scoped, budgeted, metered LLM run."""

    mode = "llm"

    def __init__(self, run: LLMRun, *, batch_records: int = BATCH_RECORDS, record_tokens: int = RECORD_TOKENS):
        self.run = run
        self.batch_records = batch_records
        self.record_tokens = record_tokens

    def usage(self) -> dict[str, Any]:
        return self.run.usage_dict()

    def infer(self, spec: PropertySpec, evidence: list[Evidence]) -> list[Inference]:
        out: list[Inference] = []
        for start in range(0, len(evidence), self.batch_records):
            out.extend(self._batch(spec, evidence[start:start + self.batch_records]))
        return out

    def _batch(self, spec: PropertySpec, batch: list[Evidence]) -> list[Inference]:
        asked = [ev for ev in batch if not ev.empty]
        answers: dict[int, _Answer] = {}
        producer = "llm"
        if asked:
            messages = [{"role": "system", "content": system_prompt(spec)},
                        {"role": "user", "content": user_prompt(asked, self.record_tokens)}]
            result = self.run.client.structured(messages, InferenceOutput)
            producer = f"llm:{result.model}"
            answers = {a.record: a for a in result.value.results if 1 <= a.record <= len(asked)}
        by_record = {ev.record_id: answers.get(i + 1) for i, ev in enumerate(asked)}
        return [self._one(spec, ev, by_record.get(ev.record_id), producer) for ev in batch]

    @staticmethod
    def _one(spec: PropertySpec, ev: Evidence, answer: _Answer | None, producer: str) -> Inference:
        if ev.empty:
            return unknown(ev.record_id, producer, "no evidence")
        if answer is None:
            return unknown(ev.record_id, producer, "the model gave no answer for this record")
        value = typed_value(spec, answer.value)
        if value is None:
            return unknown(ev.record_id, producer, answer.reasoning or "the evidence does not support a value")
        if answer.confidence < MIN_CONFIDENCE:
            return unknown(ev.record_id, producer, f"confidence {answer.confidence:.2f} is too low")
        refs = ev.by_ref()
        cited = [refs[r] for r in dict.fromkeys(answer.evidence) if r in refs]
        return Inference(ev.record_id, value, round(answer.confidence, 3), producer, cited, answer.reasoning.strip())
