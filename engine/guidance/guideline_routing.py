"""Fast guideline routing: which guidelines (and which of their markdown sections) a message needs.

No LLM. Each guideline is split into sections on its markdown headings; the guideline (name, description,
tags, keywords) and every section are embedded once and cached in process, keyed by the guideline's
version, so an edit (a new version) or a deletion is picked up on the next call in every process.
A message is scored against them with one embedding and a few dot products, plus trigger-keyword and tag
matches; keyword hits make a guideline critical.
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import select

from memrelay.engine.core.tokens import count_tokens
from memrelay.engine.core.util import as_aware, utcnow
from memrelay.engine.domain.extraction.keywords import content_stems
from memrelay.engine.stores.db.models_llm import Guideline

if TYPE_CHECKING:
    from memrelay.engine.adapters.embedding import Embedder
    from memrelay.engine.stores.db.database import Database

STALE_AFTER = timedelta(days=30)
# WordLlama cosine: unrelated texts ~0.1-0.25, same topic ~0.4+. Calibrated on tests/engine/test_governance.py.
SUPPLEMENTARY_MIN = 0.38
CRITICAL_MIN = 0.62
RELATIVE_MARGIN = 0.25  # supplementary guidelines must score within this of the best (keyword bonus excluded)
KEYWORD_BONUS = 0.35
TAG_BONUS = 0.12
WHOLE_MAX_TOKENS = 300  # a guideline this small is always delivered whole
SECTION_MARGIN = 0.1  # sections within this of the best section are delivered too
MAX_SELECTED = 5

_HEADING_RE = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Section:
    heading: str  # "" for the text before the first heading
    text: str  # the section's markdown, heading line included
    hash: str
    tokens: int


@dataclass
class RoutedGuideline:
    """A guideline prepared for routing (cached per version)."""

    id: str
    name: str
    description: str
    content: str
    tags: list[str]
    keywords: list[str]
    version: int
    updated_at: datetime
    sections: list[Section]
    vector: np.ndarray  # name/description/tags/keywords
    section_vectors: np.ndarray  # one row per section
    keyword_re: re.Pattern[str] | None
    tag_stems: list[tuple[str, frozenset[str]]]

    @property
    def tokens(self) -> int:
        return sum(s.tokens for s in self.sections)

    @property
    def stale(self) -> bool:
        return is_stale(self.updated_at)


@dataclass
class Match:
    """One routed guideline with why it was chosen and which sections to deliver."""

    guideline: RoutedGuideline
    score: float
    similarity: float
    priority: str  # critical | supplementary
    reasons: list[str]
    sections: list[Section]
    whole: bool
    section_scores: dict[str, float] = field(default_factory=dict)


def is_stale(updated_at: datetime | None, now: datetime | None = None) -> bool:
    updated = as_aware(updated_at)
    return updated is not None and (now or utcnow()) - updated >= STALE_AFTER


def split_sections(guideline_id: str, markdown: str) -> list[Section]:
    """Sections of ``markdown`` split on headings (any level); text before the first heading is one too."""
    marks = [(m.start(), m.group(2).strip()) for m in _HEADING_RE.finditer(markdown)]
    bounds = ([(0, "")] if not marks or marks[0][0] > 0 else []) + marks
    out: list[Section] = []
    for i, (start, heading) in enumerate(bounds):
        end = bounds[i + 1][0] if i + 1 < len(bounds) else len(markdown)
        text = markdown[start:end].strip()
        if text:
            digest = hashlib.sha256(f"{guideline_id}\x00{text}".encode()).hexdigest()
            out.append(Section(heading, text, digest, count_tokens(text)))
    return out


def _stems(phrases: list[str]) -> list[tuple[str, frozenset[str]]]:
    return [(p, frozenset(content_stems(p))) for p in phrases if content_stems(p)]


def keyword_pattern(keywords: list[str]) -> re.Pattern[str] | None:
    """One case-insensitive pattern matching any keyword as whole words (plural/-ed/-ing forms too)."""
    alts = [r"\s+".join(re.escape(w) for w in k.split()) for k in keywords if k.strip()]
    if not alts:
        return None
    return re.compile(r"(?<!\w)(" + "|".join(sorted(alts, key=len, reverse=True)) + r")(?:s|es|ed|d|ing)?(?!\w)",
                      re.IGNORECASE)


def keyword_hits(pattern: re.Pattern[str] | None, text: str) -> list[str]:
    """The distinct keywords (lower-cased) ``pattern`` finds in ``text``."""
    if pattern is None:
        return []
    return list(dict.fromkeys(" ".join(m.group(1).lower().split()) for m in pattern.finditer(text)))


def prepare(row: Guideline, embedder: Embedder) -> RoutedGuideline:
    """Split and embed one guideline."""
    sections = split_sections(row.id, row.content or "") or [
        Section("", row.description or row.name, hashlib.sha256(f"{row.id}\x00".encode()).hexdigest(), 0)]
    header = " ".join([row.name, row.description or "", " ".join(row.tags or []), " ".join(row.trigger_keywords or [])])
    texts = [header] + [f"{row.name}. {s.heading}\n{s.text}" for s in sections]
    vectors = embedder.embed(texts)
    return RoutedGuideline(
        id=row.id, name=row.name, description=row.description or "", content=row.content or "",
        tags=list(row.tags or []), keywords=list(row.trigger_keywords or []), version=row.version,
        updated_at=as_aware(row.updated_at) or utcnow(), sections=sections, vector=vectors[0],
        section_vectors=vectors[1:], keyword_re=keyword_pattern(list(row.trigger_keywords or [])),
        tag_stems=_stems(list(row.tags or [])))


@dataclass(frozen=True)
class Snapshot:
    """An org's prepared guidelines with their vectors stacked for one matrix product per call."""

    guidelines: list[RoutedGuideline]
    headers: np.ndarray  # (n, dim)
    sections: np.ndarray  # (total sections, dim)
    offsets: np.ndarray  # first section row of each guideline

    @classmethod
    def build(cls, guidelines: list[RoutedGuideline]) -> Snapshot:
        if not guidelines:
            empty = np.zeros((0, 0), dtype=np.float32)
            return cls([], empty, empty, np.zeros(0, dtype=np.int64))
        sizes = [len(g.sections) for g in guidelines]
        return cls(guidelines, np.stack([g.vector for g in guidelines]),
                   np.concatenate([g.section_vectors for g in guidelines]),
                   np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64))


class GuidelineIndex:
    """Per-process cache of prepared guidelines, refreshed against SQL versions on every lookup."""

    def __init__(self, db: Database, embedder_factory: Any):
        self.db = db
        self._embedder_factory = embedder_factory
        self._by_org: dict[str, Snapshot] = {}
        self._lock = threading.Lock()

    def invalidate(self, org_id: str) -> None:
        with self._lock:
            self._by_org.pop(org_id, None)

    def snapshot(self, org_id: str) -> Snapshot:
        """The org's live guidelines, prepared (only new or changed versions are re-embedded)."""
        with self.db.read() as s:
            current: dict[str, int] = {gid: ver for gid, ver in s.execute(select(Guideline.id, Guideline.version)
                                       .where(Guideline.org_id == org_id, Guideline.deleted_at.is_(None)))}
            with self._lock:
                snap = self._by_org.get(org_id)
            cached = {g.id: g for g in snap.guidelines} if snap else {}
            if snap is not None and {gid: g.version for gid, g in cached.items()} == current:
                return snap
            stale_ids = [gid for gid, ver in current.items() if gid not in cached or cached[gid].version != ver]
            rows = list(s.scalars(select(Guideline).where(Guideline.id.in_(stale_ids)))) if stale_ids else []
        if rows:
            embedder = self._embedder_factory()
            for row in rows:
                cached[row.id] = prepare(row, embedder)
        fresh = sorted((g for gid, g in cached.items() if gid in current and g.version == current[gid]),
                       key=lambda g: (g.name, g.id))
        snap = Snapshot.build(fresh)
        with self._lock:
            self._by_org[org_id] = snap
        return snap


def phrase_hits(phrases: list[tuple[str, frozenset[str]]], message_stems: set[str]) -> list[str]:
    """Phrases all of whose content words occur in the message (stemmed)."""
    return [p for p, stems in phrases if stems <= message_stems]


def route(snap: Snapshot, message: str, qvec: np.ndarray, *,
          max_selected: int = MAX_SELECTED, min_score: float = SUPPLEMENTARY_MIN,
          margin: float | None = RELATIVE_MARGIN) -> list[Match]:
    """Score every guideline against ``message``; the selected ones, best first."""
    if not snap.guidelines:
        return []
    message_stems = set(content_stems(message))
    section_sims = snap.sections @ qvec
    sims = np.maximum(snap.headers @ qvec, np.maximum.reduceat(section_sims, snap.offsets))
    scored: list[tuple[float, float, RoutedGuideline, list[str], list[str]]] = []
    for g, sim in zip(snap.guidelines, sims.tolist(), strict=True):
        keywords = keyword_hits(g.keyword_re, message)
        tags = phrase_hits(g.tag_stems, message_stems)
        score = sim + (TAG_BONUS if tags else 0.0)
        if keywords or score >= min_score:
            scored.append((score + (KEYWORD_BONUS if keywords else 0.0), sim, g, keywords, tags))
    if not scored:
        return []
    scored.sort(key=lambda t: (-t[0], t[2].name))
    best = max(score - (KEYWORD_BONUS if keywords else 0.0) for score, _, _, keywords, _ in scored)
    chosen: list[Match] = []
    for score, sim, g, keywords, tags in scored:
        priority = "critical" if keywords or score >= CRITICAL_MIN else "supplementary"
        if priority != "critical" and margin is not None and score < best - margin:
            continue
        start = int(snap.offsets[snap.guidelines.index(g)])
        own = section_sims[start:start + len(g.sections)]
        reasons = [f"keyword: {k}" for k in keywords] + [f"tag: {t}" for t in tags] + [f"similarity: {sim:.2f}"]
        sections, whole = _sections_for(g, own, keywords)
        chosen.append(Match(g, round(score, 4), round(sim, 4), priority, reasons, sections, whole,
                            {s.heading: round(float(v), 4) for s, v in zip(g.sections, own, strict=True)}))
        if len(chosen) == max_selected:
            break
    return chosen


def _sections_for(g: RoutedGuideline, sims: np.ndarray, keywords: list[str]) -> tuple[list[Section], bool]:
    """Whole guideline when small or single-section; else the sections near the best one (plus the
    preamble and any section containing a trigger keyword)."""
    if g.tokens <= WHOLE_MAX_TOKENS or len(g.sections) == 1:
        return list(g.sections), True
    top = float(sims.max())
    keep = []
    for s, sim in zip(g.sections, sims, strict=True):
        keyword_here = bool(keywords) and bool(set(keyword_hits(g.keyword_re, s.text)) & set(keywords))
        if s.heading == "" or float(sim) >= top - SECTION_MARGIN or keyword_here:
            keep.append(s)
    return keep, len(keep) == len(g.sections)
