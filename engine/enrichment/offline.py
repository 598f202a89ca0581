"""The offline inference path: rules over the record's own evidence, honest about its reach.

Only ``options`` and ``boolean`` properties can be answered. Each class (an option, or ``true``/``false``)
gets cue words: the declaration's ``keywords`` for it plus the content words of the instruction's clauses
that name it ("B2B if it sells to businesses …; B2C if …"); a word cueing more than one class is dropped.
Each evidence item votes for the one class whose cues it contains; items without a cue may vote by
embedding similarity to a class's description, only with a clear margin (half a vote). No votes, or a
tie, is "unknown" — absence of evidence for ``true`` is never reported as ``false``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from memrelay.engine.core.embedder import Embedder
from memrelay.engine.core.properties_types import PropertySpec, PropertyType
from memrelay.engine.domain.extraction.keywords import content_stems, stem, tokens
from memrelay.engine.enrichment.evidence import Evidence, Item
from memrelay.engine.enrichment.inference import MIN_CONFIDENCE, Inference, classes_of, typed_value, unknown

PRODUCER = "rule:offline-keywords-v1"
EMBED_WEIGHT = 0.5
EMBED_MIN_SIMILARITY = 0.55
EMBED_MARGIN = 0.12
RECENCY_DECAY = 0.7
"""Each older memory's vote counts this much of the next newer one's: current evidence outweighs old."""
_CLAUSES = re.compile(r"[.;\n]+")
_GENERIC = frozenset(stem(w) for w in """run runs use uses sell sells buy buys make makes work works get gets offer
    offers provide provides have has company companies customer customers product products service services
    business-model thing things mainly mostly mostly primarily directly only other""".split())
"""Words of an instruction that name no class by themselves ("B2B if it *sells* to businesses")."""
_BOOLEAN_LABELS = {"true": ("true", "yes"), "false": ("false",)}


@dataclass(frozen=True)
class ClassCues:
    """What the classifier looks for: stemmed cue words and a description to embed, per class."""

    stems: dict[str, frozenset[str]]
    descriptions: dict[str, str]


def class_cues(spec: PropertySpec) -> ClassCues:
    """Cue stems and descriptions of each class of ``spec`` (see the module docstring)."""
    assert spec.inferred is not None
    classes = classes_of(spec)
    labels = {c: _labels(spec, c) for c in classes}
    label_stems = {stem(t) for ls in labels.values() for label in ls for t in tokens(label)}
    raw: dict[str, set[str]] = {c: set() for c in classes}
    clauses: dict[str, list[str]] = {c: [] for c in classes}
    for clause in _CLAUSES.split(spec.inferred.instruction):
        words = {t.lower() for t in tokens(clause)}
        named = [c for c in classes if any(set(tokens(label.lower())) <= words for label in labels[c])]
        if len(named) == 1:
            raw[named[0]].update(s for s in content_stems(clause) if s not in label_stems and s not in _GENERIC)
            clauses[named[0]].append(clause.strip())
    for key, cue_words in spec.inferred.keywords.items():
        target = next((c for c in classes if c.lower() == str(key).lower()), None)
        if target is not None:
            for word in cue_words:
                raw[target].update(content_stems(word))
                clauses[target].append(word)
    shared = {s for c in classes for s in raw[c] if sum(s in raw[o] for o in classes) > 1}
    return ClassCues({c: frozenset(raw[c] - shared) for c in classes},
                     {c: " ".join(clauses[c]) for c in classes if clauses[c]})


def _labels(spec: PropertySpec, cls: str) -> tuple[str, ...]:
    return _BOOLEAN_LABELS[cls] if spec.type == PropertyType.BOOLEAN else (cls,)


class OfflineInferrer:
    """Keyword and embedding classifier over each record's own evidence (no network, no cost)."""

    mode = "offline"

    def __init__(self, embedder: Embedder | None = None):
        self.embedder = embedder

    def usage(self) -> dict[str, Any]:
        return {"model": PRODUCER, "calls": 0, "promptTokens": 0, "completionTokens": 0, "totalTokens": 0,
                "costUsd": 0.0}

    def infer(self, spec: PropertySpec, evidence: list[Evidence]) -> list[Inference]:
        if not classes_of(spec):
            return [unknown(e.record_id, PRODUCER, f"offline inference answers options and boolean properties "
                                                   f"only; {spec.propertyName} is {spec.type.value}")
                    for e in evidence]
        cues = class_cues(spec)
        similarity = self._similarities(cues, evidence)
        return [self._classify(spec, cues, ev, similarity.get(ev.record_id, {})) for ev in evidence]

    def _classify(self, spec: PropertySpec, cues: ClassCues, ev: Evidence,
                  similarity: dict[str, dict[str, float]]) -> Inference:
        votes = {c: 0.0 for c in cues.stems}
        cited: dict[str, list[Item]] = {c: [] for c in cues.stems}
        voting_memories = 0
        for item in ev.items:  # properties first, then memories newest first
            words = set(content_stems(item.text))
            hit = [c for c, s in cues.stems.items() if words & s]
            cls, weight = (hit[0], 1.0) if len(hit) == 1 else (None, 0.0)
            if not hit and item.ref in similarity:
                cls, weight = _clear_winner(similarity[item.ref]), EMBED_WEIGHT
            if cls is None:
                continue
            if item.kind == "memory":
                weight *= RECENCY_DECAY ** voting_memories
                voting_memories += 1
            votes[cls] += weight
            cited[cls].append(item)
        ranked = sorted(votes.items(), key=lambda kv: -kv[1])
        (best, top), second = ranked[0], (ranked[1][1] if len(ranked) > 1 else 0.0)
        if top == 0:
            return unknown(ev.record_id, PRODUCER, "no evidence mentions any cue of this property"
                           if not ev.empty else "no evidence")
        if abs(top - second) < 1e-9:
            return unknown(ev.record_id, PRODUCER, "the evidence points both ways equally")
        confidence = round(min(0.9, 0.5 + 0.4 * (top - second) / (top + second) * min(1.0, top / 2)), 3)
        value = typed_value(spec, best)
        if value is None or confidence < MIN_CONFIDENCE:
            return unknown(ev.record_id, PRODUCER, "the evidence is too weak")
        return Inference(ev.record_id, value, confidence, PRODUCER, cited[best],
                         f"{len(cited[best])} evidence item(s) match {best!r} cues; {second:g} vote(s) against")

    def _similarities(self, cues: ClassCues, evidence: list[Evidence]) -> dict[str, dict[str, dict[str, float]]]:
        """Cosine similarity of each cue-less item to each described class: {record: {ref: {class: sim}}}."""
        if self.embedder is None or len(cues.descriptions) < 2:
            return {}
        todo = [(ev.record_id, item) for ev in evidence for item in ev.items
                if not any(set(content_stems(item.text)) & s for s in cues.stems.values())]
        if not todo:
            return {}
        classes = sorted(cues.descriptions)
        protos = self.embedder.embed([cues.descriptions[c] for c in classes])
        vectors = self.embedder.embed([item.text for _, item in todo])
        sims = np.asarray(vectors) @ np.asarray(protos).T
        out: dict[str, dict[str, dict[str, float]]] = {}
        for (rid, item), row in zip(todo, sims, strict=True):
            out.setdefault(rid, {})[item.ref] = {c: float(v) for c, v in zip(classes, row, strict=True)}
        return out


def _clear_winner(sims: dict[str, float]) -> str | None:
    ranked = sorted(sims.items(), key=lambda kv: -kv[1])
    if len(ranked) < 2:
        return None
    (cls, best), (_, second) = ranked[0], ranked[1]
    return cls if best >= EMBED_MIN_SIMILARITY and best - second >= EMBED_MARGIN else None
