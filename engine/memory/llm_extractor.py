"""AI extraction (``enhanced: true`` memorize): one LLM pass per chunk turning free text into

* typed values for the target collection's ``autoSystem`` properties (driven by their descriptions,
  coerced with :func:`memrelay.engine.domain.coercion.coerce`; values that do not coerce — e.g. an option that is not
  allowed — are dropped), each with a confidence, and
* open-set, self-contained facts (pronouns resolved, relative times anchored to the content timestamp)
  with quality scores (coreference, self-containment, temporal anchoring).

The result has the offline path's structure (:class:`memrelay.engine.domain.extraction.standard.OfflineExtraction`:
``facts``, ``values``, ``method`` = "llm", ``spans`` — each fact's chunk in the content); questions, filler and instructions the model returns anyway are dropped by the same rules, and the
memory engine applies its dedup and fresh-fact rules to the facts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from memrelay.engine.core.errors import ValidationFailed
from memrelay.engine.core.properties_types import PropertySpec, PropertyType
from memrelay.engine.core.util import utcnow
from memrelay.engine.domain.coercion import coerce
from memrelay.engine.domain.extraction.chunking import chunk_content
from memrelay.engine.domain.extraction.keywords import content_stems, property_keywords
from memrelay.engine.domain.extraction.offline import ExtractedValue, anchor_relative_dates
from memrelay.engine.domain.extraction.proactive import drop_reason
from memrelay.engine.stores.metered_llm import BudgetedLLM

if TYPE_CHECKING:
    from memrelay.engine.adapters.llm import Usage

CHUNK_TOKENS = 3000
DEFAULT_MAX_PROPERTIES = 40
MIN_CONFIDENCE = 0.3
TAG_BOOST = 0.5
QUALITY_KEYS = ("coreference", "selfContainment", "temporalAnchoring")


class _Value(BaseModel):
    name: str
    value: Any = None
    confidence: float = Field(0.7, ge=0, le=1)


class _Quality(BaseModel):
    coreference: float = Field(1.0, ge=0, le=1, description="Pronouns and references resolved to names.")
    selfContainment: float = Field(1.0, ge=0, le=1, description="Each fact understandable on its own.")
    temporalAnchoring: float = Field(1.0, ge=0, le=1, description="Relative times turned into dates.")


class ExtractionOutput(BaseModel):
    """What the model must return for one chunk."""

    facts: list[str] = Field(default_factory=list)
    properties: list[_Value] = Field(default_factory=list)
    quality: _Quality = Field(default_factory=_Quality)


@dataclass(frozen=True)
class ExtractionResult:
    """Facts, typed values and quality of one extraction; ``usage`` is what the LLM calls cost."""

    facts: list[str]
    values: list[ExtractedValue]
    quality: dict[str, float]
    usage: Usage | None = None
    chunks: int = 1
    method: str = "llm"
    spans: list[tuple[int, int]] | None = None  # per fact: the (start, end) of the content chunk it came from

    @property
    def properties(self) -> list[tuple[str, Any, float]]:
        return [(v.property_name, v.value, v.confidence) for v in self.values]


def select_properties(content: str, specs: list[PropertySpec], tags: list[str] | None,
                      limit: int) -> list[PropertySpec]:
    """The ``limit`` properties most likely to be mentioned: name/description keywords in the content,
    boosted when a property's tags match the request's tags (stable order for ties)."""
    if len(specs) <= limit:
        return list(specs)
    wanted = {t.casefold() for t in tags or []}
    text_stems = set(content_stems(content))

    def score(spec: PropertySpec) -> float:
        keys = property_keywords(spec)
        s = 1.0 if text_stems & keys.name else (0.5 if text_stems & keys.description else 0.0)
        if wanted & {t.casefold() for t in spec.tags}:
            s += TAG_BOOST
        return s

    ranked = sorted(enumerate(specs), key=lambda p: (-score(p[1]), p[0]))
    return [spec for _, spec in ranked[:limit]]


def describe(spec: PropertySpec) -> dict[str, Any]:
    """How a property is presented to the model."""
    out: dict[str, Any] = {"name": spec.propertyName, "type": spec.type.value}
    if spec.description:
        out["description"] = spec.description
    if spec.type == PropertyType.OPTIONS:
        out["allowedValues"] = spec.options or []
    if spec.type == PropertyType.DATE:
        out["format"] = "ISO-8601 date (YYYY-MM-DD)"
    return out


def build_messages(chunk: str, specs: list[PropertySpec], *, ts: datetime, subject: str | None,
                   prompt: str | None, part: tuple[int, int]) -> list[dict[str, str]]:
    rules = (
        "You extract memories about one CRM record from the content.\n"
        f"Content timestamp: {ts.isoformat()} (resolve 'yesterday', 'next week', 'in Q3' against it and "
        "write absolute dates).\n"
        f"The record is: {subject or 'the main person or company discussed'}.\n"
        "facts: short standalone statements, each understandable without the others: replace pronouns "
        "(he, she, they, we, it) with names, never write 'the above'. Only what the content says.\n"
        "properties: only for the properties listed, only when the content states the value; use the "
        "property's type, and for allowedValues one of them exactly. confidence 0..1 = how explicit.\n"
        "quality: rate your facts 0..1 on coreference, selfContainment and temporalAnchoring."
    )
    if prompt:
        rules += f"\nAdditional instructions: {prompt}"
    header = f"Content (part {part[0]} of {part[1]}):" if part[1] > 1 else "Content:"
    user = (f"Properties:\n{json.dumps([describe(s) for s in specs], ensure_ascii=False)}\n\n"
            f"{header}\n{chunk}")
    return [{"role": "system", "content": rules}, {"role": "user", "content": user}]


def validated_values(raw: list[_Value], specs: dict[str, PropertySpec], evidence: str) -> list[ExtractedValue]:
    """Keep values of known properties that coerce to the property's type with enough confidence."""
    out: list[ExtractedValue] = []
    for item in raw:
        spec = specs.get(item.name)
        if spec is None or item.value in (None, "", []) or item.confidence < MIN_CONFIDENCE:
            continue
        try:
            value = coerce(spec, item.value)
        except ValidationFailed:
            continue
        out.append(ExtractedValue(spec.propertyName, value, round(item.confidence, 3), evidence[:200], "llm"))
    return out


def merge_values(values: list[ExtractedValue], specs: dict[str, PropertySpec]) -> list[ExtractedValue]:
    """One value per property: arrays are unioned, other types keep the most confident (latest on ties)."""
    merged: dict[str, ExtractedValue] = {}
    for v in values:
        prev = merged.get(v.property_name)
        if prev is None:
            merged[v.property_name] = v
        elif specs[v.property_name].type == PropertyType.ARRAY:
            union = list(dict.fromkeys([*prev.value, *v.value]))
            merged[v.property_name] = ExtractedValue(v.property_name, union, max(prev.confidence, v.confidence),
                                                     prev.evidence, "llm")
        elif v.confidence >= prev.confidence:
            merged[v.property_name] = v
    return list(merged.values())


class LLMExtractor:
    """LLM-backed extraction for ``enhanced`` memorize and batch ``extractMemories`` (a ``MemoryExtractor``)."""

    def __init__(self, llm: BudgetedLLM, *, chunk_tokens: int = CHUNK_TOKENS):
        self.llm = llm
        self.chunk_tokens = chunk_tokens

    def extract(self, *, content: str, properties: list[PropertySpec], ts: datetime | None = None,
                subject: str | None = None, prompt: str | None = None, max_properties: int | None = None,
                tags: list[str] | None = None, org_id: str | None = None) -> ExtractionResult:
        """Facts and typed values from ``content`` (one LLM call per chunk; usage billed to ``org_id``)."""
        ts = ts or utcnow()
        limit = DEFAULT_MAX_PROPERTIES if max_properties is None else max_properties
        specs = select_properties(content, [p for p in properties if p.autoSystem], tags, limit)
        by_name = {s.propertyName: s for s in specs}
        client = self.llm.run(org_id, "extraction").client if org_id else self.llm.unmetered_client()
        chunks = chunk_content(content, self.chunk_tokens)
        facts: list[str] = []
        spans: list[tuple[int, int]] = []
        cursor = 0
        values: list[ExtractedValue] = []
        quality: list[dict[str, float]] = []
        usage = None
        for i, chunk in enumerate(chunks, 1):
            messages = build_messages(chunk, specs, ts=ts, subject=subject, prompt=prompt, part=(i, len(chunks)))
            answer = client.structured(messages, ExtractionOutput)
            usage = answer.usage if usage is None else usage + answer.usage
            span = chunk_span(content, chunk, cursor)
            cursor = span[0]
            kept = [anchor_relative_dates(" ".join(f.split()), ts) for f in answer.value.facts
                    if f.strip() and not drop_reason(f)]
            for fact in kept:
                if fact not in facts:
                    facts.append(fact)
                    spans.append(span)
            values += validated_values(answer.value.properties, by_name, chunk) if limit else []
            quality.append(answer.value.quality.model_dump())
        return ExtractionResult(
            facts=facts, values=merge_values(values, by_name),
            quality={k: round(sum(q[k] for q in quality) / len(quality), 3) for k in QUALITY_KEYS},
            usage=usage, chunks=len(chunks), spans=spans)


def chunk_span(content: str, chunk: str, cursor: int = 0) -> tuple[int, int]:
    """Where a chunk (packed from the content's units, so not always a verbatim slice) sits in ``content``:
    from its first line to the end of its last line; the whole content when they cannot be found."""
    lines = [ln.strip() for ln in chunk.splitlines() if ln.strip()]
    if not lines:
        return 0, len(content)
    start = content.find(lines[0], cursor)
    if start < 0:
        return 0, len(content)
    last = content.find(lines[-1], start)
    end = last + len(lines[-1]) if last >= 0 else len(content)
    return start, end

