"""One interface for both inference paths: an :class:`Inferrer` turns evidence into :class:`Inference` values,
each either a typed value with a confidence and the evidence it cites, or unknown (``value is None``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from memrelay.engine.core.errors import MemrelayError
from memrelay.engine.core.properties_types import PropertySpec, PropertyType
from memrelay.engine.domain.coercion import coerce
from memrelay.engine.enrichment.evidence import Evidence, Item

MIN_CONFIDENCE = 0.5
"""Below this an answer is reported as unknown, never stored as a fact."""


@dataclass(frozen=True)
class Inference:
    """The answer for one record: ``value`` None means unknown (nothing is written)."""

    record_id: str
    value: Any
    confidence: float
    producer: str
    cited: list[Item] = field(default_factory=list)
    reasoning: str = ""

    @property
    def known(self) -> bool:
        return self.value is not None


class Inferrer(Protocol):
    """An inference path. ``mode`` is ``llm`` or ``offline``; ``usage`` what it has spent so far."""

    mode: str

    def infer(self, spec: PropertySpec, evidence: list[Evidence]) -> list[Inference]:
        """One inference per evidence, in order."""
        ...

    def usage(self) -> dict[str, Any]:
        ...


def unknown(record_id: str, producer: str, reasoning: str) -> Inference:
    return Inference(record_id, None, 0.0, producer, [], reasoning)


def typed_value(spec: PropertySpec, raw: Any) -> Any:
    """``raw`` as the property's type, or None when it is no valid value ("unknown", an option not allowed)."""
    if raw is None or (isinstance(raw, str) and raw.strip().lower() in ("", "unknown", "null", "none", "n/a")):
        return None
    try:
        return coerce(spec, raw)
    except MemrelayError:
        return None


def classes_of(spec: PropertySpec) -> list[str]:
    """The answers a classifier can give: the options, or ``true``/``false``; empty for other types."""
    if spec.type == PropertyType.OPTIONS:
        return list(spec.options or [])
    if spec.type == PropertyType.BOOLEAN:
        return ["true", "false"]
    return []
