"""Fast guideline routing: which guidelines (and which of their markdown sections) a message needs.

No LLM. Each guideline is split into sections on its markdown headings and each section into sentences
(``routing_sentences``); the guideline (name, description, tags, keywords), every section and every sentence (its
heading in front) are embedded once and cached in process, keyed by the guideline's version, so an edit (a new
version) or a deletion is picked up on the next call in every process.

A message is scored against every guideline with one embedding, a few dot products and a lexical pass over
inverted indexes of the guidelines' stemmed words. Four signals, each roughly in [0, 1], weigh equally
(``SIGNAL_WEIGHT``):

* ``header``   — cosine of the message and the guideline's name, description, tags and keywords;
* ``sentence`` — the mean cosine of the message and the guideline's two best sentences;
* ``bm25``     — the mean BM25 of the message's words in the guideline's two best sentences (idf over all
  sentences of the org, divided by ``BM25_SCALE``): the rare words a task shares with a rule ("chargeback",
  "HIPAA"). Two sentences, not one, so that a single sentence sharing common words with the task by coincidence
  weighs half ("a next meeting is booked" and "book a meeting room");
* ``coverage`` — the idf-weighted share of the message's words found anywhere in the guideline (a word no
  guideline has counts fully, so off-topic messages score low everywhere);

plus ``HEADER_TERMS_WEIGHT`` x ``title``, the idf-weighted share of the message's words (compared on their first
``PREFIX_LEN`` letters, so "compliant" meets "compliance") found in the guideline's name, tags and description —
what its author says it is about — and ``KEYWORD_BONUS`` when a trigger keyword occurs. A guideline is selected
when its score reaches ``SUPPLEMENTARY_MIN`` (or it has a trigger keyword, or a section this close) and it is
``RELATIVE_MIN`` of the way from the median guideline's score (the message's level on unrelated guidelines) to
the best one (:func:`relative_bar`); a trigger keyword or a score of ``CRITICAL_MIN`` makes it critical. The
best section's cosine still chooses which sections are delivered and is the reported similarity.

Words are stemmed content words plus one concept token per acronym or expansion (``routing_lexicon``: "BAA" and
"business associate agreement" share a token); a guideline naming such a concept of the message that at most
``RARE_CONCEPT_MAX`` guidelines name is exempt from the relative rule.

Measured on bench/datasets/routing/ by bench/quality_routing.py (figures next to a cosine baseline), settings
chosen on the dev half. Sentence units and the median-based relative rule took dev from P 0.909/R 0.938 to
0.938/0.938 (the meeting-room task no longer routes); ``SUPPLEMENTARY_MIN`` 0.6-0.625 and ``RELATIVE_MIN``
0.65-0.7 are one plateau on dev, the middle is kept. Below the floor the old rule (70 % of the best score) adds
false positives fast (dev, floor 0.675 / 0.65 / 0.6: 5 / 7 / 10), the median-based one slowly (floor 0.55: 5).

Tried and not kept (dev gain that the held-out half did not confirm, or a dev loss): a broad B2B concept lexicon
(compliance, payment, legal, marketing-use, churn vocabulary) added to or replacing the words; a no-route rule
for tasks with no trigger keyword, no concept and no section closer than ~0.32 (it needs that broad lexicon to
keep recall, and took held-out precision from 0.92 to 0.89); exempting guidelines sharing any rare word (not only
a concept) with the task from the relative rule (dev precision 0.91 -> 0.81). Measured on dev and not kept: the
best single sentence instead of the best two (cosine or BM25: no better than sections); a logistic fusion of the
signals fitted on dev (leave-one-task-out: P 0.95 at R 0.63, or P 0.87 at R 0.81); per-guideline thresholds from
the scores each guideline gives the other guidelines' sentences (their mean 0.28-0.38 and spread 0.20-0.29 are
alike across guidelines, so a per-guideline bar changes nothing); a clause's own score instead of the whole
message's for the absolute rule of a clause's pick (one more false positive). Also measured on dev and not kept
(none changes the three dev misses, tasks 14, 30 and 40, which need meaning the embedder lacks: "lack a connector"
for a feature request, "shows everything green" against the status-page keyword): soft term matching on the
embedder's word vectors (WordLlama's nearest words are as much spelling as meaning: log~logo 0.82, sign~signup
0.71; soft BM25 at cosine 0.4-0.8 adds a false positive, soft coverage changes nothing, and leaving out pairs that
share a sub-word token leaves dev unchanged at 0.938/0.938); ColBERT-like max-sim of the task's tokens (idf-weighted)
over each sentence's token vectors, and of 1-6 word windows of the task over sentences, added or in place of the
sentence cosine (dev precision 0.79-0.91 even with SUPPLEMENTARY_MIN, RELATIVE_MIN and STRONG_SECTION_SIM re-chosen);
pseudo-relevance feedback (the task vector moved towards its three nearest sentences: score AUC 0.987 -> 0.992, but
with the thresholds re-chosen the same three misses); centring the vectors on the org's mean sentence, with or
without its first principal components removed (sentence AUC 0.966 -> 0.969 at best; recall 0.81-0.88 at these
thresholds); SIF-weighted token pooling, a/(a + p) with p from the org's guideline tokens (never both P and R kept);
the task embedded without stopwords (one more false positive).
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import select

from memrelay.engine.core.tokens import count_tokens
from memrelay.engine.core.util import as_aware, utcnow
from memrelay.engine.domain.extraction.keywords import content_stems
from memrelay.engine.guidance.routing_bm25 import Bm25
from memrelay.engine.guidance.routing_bm25 import idf as _idf
from memrelay.engine.guidance.routing_lexicon import concept_tokens, is_concept
from memrelay.engine.guidance.routing_sentences import sentence_text, split_sentences, top_k_mean
from memrelay.engine.stores.db.models_llm import Guideline

if TYPE_CHECKING:
    from memrelay.engine.adapters.embedding import Embedder
    from memrelay.engine.stores.db.database import Database

STALE_AFTER = timedelta(days=30)
SIGNAL_WEIGHT = 0.5  # of each of header, section, bm25 and coverage
BM25_SCALE = 10.0  # the best two sentences' mean BM25 / this ~ [0, 1] (a message sharing two or three rare words)
BM25_CAP = 1.5  # of the scaled BM25 signal
SUPPLEMENTARY_MIN = 0.6125
RELATIVE_MIN = 0.675  # every selected guideline is at least this share of the way from the median score to the best
CRITICAL_MIN = 1.1
STRONG_SECTION_SIM = 0.47
"""A section (or the guideline's name and description) this similar to the message passes the absolute rule on
its own: in a small org the lexical signals weigh little. Below 0.47 the dev half of bench/datasets/routing loses
precision; 0.47-0.5 leave both halves unchanged."""
KEYWORD_BONUS = 0.25
HEADER_TERMS_WEIGHT = 0.25  # of the ``title`` signal (chosen on the dev half of bench/datasets/routing)
PREFIX_LEN = 5
RELATIVE_MARGIN = RELATIVE_MIN  # the former name of the relative rule (route's ``margin`` argument)
WHOLE_MAX_TOKENS = 300  # a guideline this small is always delivered whole
SECTION_MARGIN = 0.1  # sections within this of the best section are delivered too
MAX_SELECTED = 5
MIN_BACKGROUND_GUIDELINES = 10  # the relative rule's median is taken over at least this many scores (0 padded)
RARE_CONCEPT_MAX = 2
"""A guideline naming an acronym of the message (routing_lexicon) that at most this many guidelines name is exempt
from the relative rule (it still needs the absolute one): a task about a BAA needs every guideline that says what
we do about business associate agreements, not only the one that also matches the rest of the task."""


def routing_terms(text: str) -> list[str]:
    """The stemmed content words of ``text`` plus one concept token per acronym or expansion it names."""
    stems = content_stems(text)
    return stems + concept_tokens(stems)


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
    section_terms: list[Counter[str]] = field(default_factory=list)  # stemmed words of each section
    sentence_vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    sentence_terms: list[Counter[str]] = field(default_factory=list)  # stemmed words of each sentence (>= 1)
    terms: frozenset[str] = frozenset()  # every stemmed word of the guideline (name, description, tags ...)
    head_terms: frozenset[str] = frozenset()  # PREFIX_LEN-letter prefixes of the name's, tags' and description's words

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
    sentences = [(s.heading, t) for s in sections for t in split_sentences(s.text)] or [
        (s.heading, s.text) for s in sections]
    texts = ([header] + [f"{row.name}. {s.heading}\n{s.text}" for s in sections]
             + [sentence_text(h, t) for h, t in sentences])
    vectors = embedder.embed(texts)
    head_terms = routing_terms(f"{row.name} {row.description or ''}")
    section_terms = [Counter(head_terms + routing_terms(s.text)) for s in sections]
    terms = frozenset(routing_terms(header)).union(*section_terms)
    return RoutedGuideline(
        id=row.id, name=row.name, description=row.description or "", content=row.content or "",
        tags=list(row.tags or []), keywords=list(row.trigger_keywords or []), version=row.version,
        updated_at=as_aware(row.updated_at) or utcnow(), sections=sections, vector=vectors[0],
        section_vectors=vectors[1:1 + len(sections)], keyword_re=keyword_pattern(list(row.trigger_keywords or [])),
        tag_stems=_stems(list(row.tags or [])), section_terms=section_terms, terms=terms,
        head_terms=frozenset(_prefixes(f"{row.name} {' '.join(row.tags or [])} {row.description or ''}")),
        sentence_vectors=vectors[1 + len(sections):], sentence_terms=[Counter(routing_terms(t)) for _, t in sentences])


def _prefixes(text: str) -> list[str]:
    return [_prefix(w) for w in routing_terms(text)]


def _prefix(word: str) -> str:
    return word if is_concept(word) else word[:PREFIX_LEN]


@dataclass(frozen=True)
class Snapshot:
    """An org's prepared guidelines with their vectors stacked for one matrix product per call."""

    guidelines: list[RoutedGuideline]
    headers: np.ndarray  # (n, dim)
    sections: np.ndarray  # (total sections, dim)
    offsets: np.ndarray  # first section row of each guideline
    lexicon: Lexicon | None = None
    sentences: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))  # (total, dim)
    sentence_offsets: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @classmethod
    def build(cls, guidelines: list[RoutedGuideline]) -> Snapshot:
        if not guidelines:
            empty = np.zeros((0, 0), dtype=np.float32)
            return cls([], empty, empty, np.zeros(0, dtype=np.int64))
        return cls(guidelines, np.stack([g.vector for g in guidelines]),
                   np.concatenate([g.section_vectors for g in guidelines]),
                   _starts([len(g.sections) for g in guidelines]), Lexicon.build(guidelines),
                   np.concatenate([g.sentence_vectors for g in guidelines]),
                   _starts([len(g.sentence_terms) for g in guidelines]))


def _starts(sizes: list[int]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)


@dataclass(frozen=True)
class Lexicon:
    """Inverted indexes of the guidelines' stemmed words: BM25 per sentence, idf coverage per guideline, header
    terms."""

    sentences: Bm25
    guideline_idf: dict[str, float]
    guideline_of: dict[str, list[int]]  # word -> guidelines having it
    n_guidelines: int
    head_of: dict[str, list[int]] = field(default_factory=dict)  # name/tags/description prefix -> guidelines
    head_idf: dict[str, float] = field(default_factory=dict)

    @classmethod
    def build(cls, guidelines: list[RoutedGuideline]) -> Lexicon:
        guideline_of: dict[str, list[int]] = {}
        head_of: dict[str, list[int]] = {}
        for gi, g in enumerate(guidelines):
            for word in g.terms:
                guideline_of.setdefault(word, []).append(gi)
            for prefix in g.head_terms:
                head_of.setdefault(prefix, []).append(gi)
        n_g = len(guidelines)
        return cls(Bm25.build([t for g in guidelines for t in g.sentence_terms]),
                   {w: _idf(n_g, len(gs)) for w, gs in guideline_of.items()}, guideline_of, n_g,
                   head_of, {p: _idf(n_g, len(gs)) for p, gs in head_of.items()})

    def header_terms(self, words: list[str]) -> np.ndarray:
        """Per guideline, the idf-weighted share of the message's words (as PREFIX_LEN-letter prefixes) that its
        name, tags or description contain; a word no guideline's header has weighs the most."""
        out = np.zeros(self.n_guidelines)
        unknown = _idf(self.n_guidelines, 0)
        total = 0.0
        for prefix in dict.fromkeys(_prefix(w) for w in words):
            idf = self.head_idf.get(prefix)
            if idf is None:
                total += unknown
                continue
            total += idf
            for gi in self.head_of[prefix]:
                out[gi] += idf
        return out / total if total > 0 else out

    def sentence_bm25(self, words: list[str]) -> np.ndarray:
        """BM25 of the message's (distinct, stemmed) words in every sentence row."""
        return self.sentences.scores(words)

    def coverage(self, words: list[str]) -> np.ndarray:
        """Per guideline, the idf-weighted share of the message's words it contains; a word no guideline has
        weighs the most (so a message about something else scores low everywhere)."""
        out = np.zeros(self.n_guidelines)
        unknown = _idf(self.n_guidelines, 0)
        total = 0.0
        for word in words:
            idf = self.guideline_idf.get(word)
            if idf is None:
                total += unknown
                continue
            total += idf
            for gi in self.guideline_of[word]:
                out[gi] += idf
        return out / total if total > 0 else out


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


@dataclass(frozen=True)
class _Scored:
    """Every guideline's score for one message and the signals behind it."""

    score: np.ndarray  # SIGNAL_WEIGHT x (header + sentence + bm25 + coverage) + HEADER_TERMS_WEIGHT x title
    #                    + KEYWORD_BONUS on a keyword hit
    header: np.ndarray
    section_sims: np.ndarray  # every section row
    best_section: np.ndarray
    bm25: np.ndarray  # mean of the best TOP_K sentences' BM25, / BM25_SCALE
    coverage: np.ndarray
    keywords: list[list[str]]  # trigger keywords found, per guideline
    rare: np.ndarray  # per guideline: names an acronym of the message that few guidelines name
    sentence: np.ndarray  # mean cosine of the best TOP_K sentences (heading in front)


def _score(snap: Snapshot, message: str, qvec: np.ndarray) -> _Scored:
    words = list(dict.fromkeys(routing_terms(message)))
    section_sims = snap.sections @ qvec
    best_section = np.maximum.reduceat(section_sims, snap.offsets)
    header_sims = snap.headers @ qvec
    sentence = top_k_mean(snap.sentences @ qvec, snap.sentence_offsets)
    if snap.lexicon is not None:
        bm25 = top_k_mean(snap.lexicon.sentence_bm25(words), snap.sentence_offsets) / BM25_SCALE
        coverage = snap.lexicon.coverage(words)
        title = snap.lexicon.header_terms(words)
    else:
        bm25 = coverage = title = np.zeros(len(snap.guidelines))
    keywords = [keyword_hits(g.keyword_re, message) for g in snap.guidelines]
    score = (SIGNAL_WEIGHT * (header_sims + sentence + np.minimum(bm25, BM25_CAP) + coverage)
             + HEADER_TERMS_WEIGHT * title + np.array([KEYWORD_BONUS if k else 0.0 for k in keywords]))
    rare = np.zeros(len(snap.guidelines), dtype=bool)
    if snap.lexicon is not None:
        for w in words:
            gs = snap.lexicon.guideline_of.get(w)
            if gs and is_concept(w) and len(gs) <= RARE_CONCEPT_MAX:
                rare[gs] = True
    return _Scored(score, header_sims, section_sims, best_section, bm25, coverage, keywords, rare, sentence)


_CLAUSE_RE = re.compile(r"(?<=[.?!;:])\s+")
MIN_CLAUSE_WORDS = 3  # content words a clause needs to be routed on its own


def clauses(message: str) -> list[str]:
    """The sentences/clauses of a multi-intent message ("Prospect is on Tableau and says Power BI is cheaper.
    Write a reply that addresses price.") that carry at least MIN_CLAUSE_WORDS content words; [] for one."""
    parts = [p for p in _CLAUSE_RE.split(message.strip()) if len(content_stems(p)) >= MIN_CLAUSE_WORDS]
    return parts if len(parts) > 1 else []


def _candidates(scored: _Scored, min_score: float, margin: float | None) -> set[int]:
    """Guidelines passing the absolute rule (``min_score``, or a trigger keyword: the author said the guideline
    applies) and the relative rule (at least ``margin`` of the way from the median score to the best one)."""
    bar = relative_bar(scored.score, margin) if margin is not None else -math.inf
    return {i for i, v in enumerate(scored.score.tolist())
            if (v >= min_score or scored.keywords[i]
                or max(scored.best_section[i], scored.header[i]) >= STRONG_SECTION_SIM)
            and (v >= bar or (bool(scored.rare[i]) and v >= min_score))}


def relative_bar(scores: np.ndarray, margin: float) -> float:
    """The score a guideline needs to be chosen next to the best one: ``margin`` of the way from the median
    guideline's score (what the message scores on an unrelated guideline) up to the best score. A small org's
    scores count as MIN_BACKGROUND_GUIDELINES, the missing ones 0 (no guideline, no relevance): among three
    guidelines the median is no unrelated one."""
    padded = np.concatenate([scores, np.zeros(max(0, MIN_BACKGROUND_GUIDELINES - len(scores)))])
    median = float(np.median(padded))
    return median + margin * (float(scores.max()) - median)


def route(snap: Snapshot, message: str, qvec: np.ndarray, *,
          max_selected: int = MAX_SELECTED, min_score: float = SUPPLEMENTARY_MIN,
          margin: float | None = RELATIVE_MIN,
          embed: Callable[[list[str]], np.ndarray] | None = None) -> list[Match]:
    """Score every guideline against ``message``; the selected ones, best first. ``margin`` is the share of
    the best score a guideline must reach (None: no relative rule, e.g. deep mode's candidate list).

    Multi-intent messages: with ``embed`` (the embedder's ``embed``), each clause of a message of several
    (:func:`clauses`) is routed too, and a guideline that is among the best for one clause is selected when its
    score for the whole message passes the absolute rule — the second intent of a task is not lost to the
    relative rule of the first."""
    if not snap.guidelines:
        return []
    message_stems = set(content_stems(message))
    full = _score(snap, message, qvec)
    picked = _candidates(full, min_score, margin)
    parts = clauses(message) if embed is not None and margin is not None else []
    if parts and embed is not None:
        for part, vec in zip(parts, embed(parts), strict=True):
            picked |= {i for i in _candidates(_score(snap, part, vec), min_score, margin)
                       if full.score[i] >= min_score or full.keywords[i]
                       or max(full.best_section[i], full.header[i]) >= STRONG_SECTION_SIM}
    order = sorted(picked, key=lambda i: (-float(full.score[i]), snap.guidelines[i].name))
    chosen: list[Match] = []
    for i in order[:max_selected]:
        g, score, keywords = snap.guidelines[i], float(full.score[i]), full.keywords[i]
        sim = float(max(full.header[i], full.best_section[i]))
        priority = "critical" if keywords or score >= CRITICAL_MIN else "supplementary"
        start = int(snap.offsets[i])
        own = full.section_sims[start:start + len(g.sections)]
        reasons = ([f"keyword: {k}" for k in keywords] + [f"tag: {t}" for t in phrase_hits(g.tag_stems, message_stems)]
                   + [f"similarity: {sim:.2f}", f"lexical: {float(full.bm25[i]):.2f}/{float(full.coverage[i]):.2f}"])
        sections, whole = _sections_for(g, own, keywords)
        chosen.append(Match(g, round(score, 4), round(sim, 4), priority, reasons, sections, whole,
                            {s.heading: round(float(v), 4) for s, v in zip(g.sections, own, strict=True)}))
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
