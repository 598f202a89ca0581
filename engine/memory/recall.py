"""Smart recall: semantic search over memories.

* **Entity-scoped** (identifiers given): the record's own memories are scored exactly, in process, from
  the SQL source of truth (cached per record, see :mod:`memrelay.engine.memory.entity_vectors`) — other records' memories
  are never even loaded, so nothing can leak across entities.
* **Org-wide** (no identifiers): Milvus finds candidates (partition key and filter on the org), then every
  hit is re-checked and re-scored against SQL (same org, record live) before it is returned.

Fast mode is vector similarity + filters + a small recency boost; deep mode is a :class:`DeepMode` (the LLM
layer's :class:`~memrelay.engine.memory.deep_recall.DeepRecall`) and falls back to fast mode, saying so, when
no LLM is configured.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import Text, bindparam, cast, literal, select, text, union_all
from sqlalchemy.orm import Session

from memrelay.engine.adapters.vector_index import from_blobs
from memrelay.engine.core.embedder import Embedder, TextVectorCache
from memrelay.engine.core.errors import ValidationFailed
from memrelay.engine.core.util import as_aware, iso, utcnow
from memrelay.engine.domain import readings
from memrelay.engine.domain.extraction.keywords import content_stems
from memrelay.engine.domain.semantics import (
    answers_on,
    answers_role_of,
    newer_value_on,
    question_topics,
    retires_value_on,
    statement_topics,
    topic_family,
    topic_label,
    value_kinds,
)
from memrelay.engine.memory import index_sync
from memrelay.engine.memory.entity_vectors import (
    STAMP_COLUMNS,
    EntityVectorCache,
    EntityVectors,
    Stamps,
    stale_topics,
    stamps_from,
)
from memrelay.engine.memory.hybrid import idf_of, keyword_coverage, query_terms, terms_of
from memrelay.engine.memory.index_sync import IndexSearch
from memrelay.engine.memory.memories import SELF_TYPE, lift_identifiers, self_identifiers
from memrelay.engine.memory.org_vectors import ExactOrgIndex
from memrelay.engine.memory.recall_filters import compile_filters
from memrelay.engine.memory.score_calibration import Calibration, calibration_for
from memrelay.engine.stores.access_filter import execute_read
from memrelay.engine.stores.collections import normalise_entity_type
from memrelay.engine.stores.db.database import Database
from memrelay.engine.stores.db.models import Collection, EntityType, Memory, PropertyValue, Record, RecordKey
from memrelay.engine.stores.identity import Holder, Identifiers, holders, not_found, record_keys

# score = similarity + keyword + recency + supersession, in [0, 1] — the parts ``explain: true`` returns. Each
# lift takes its share of what is left below 1, so the score never saturates and the parts sum exactly:
#   similarity   = s = C(cosine), C the embedder's calibration curve (score_calibration.py); in a scoped recall the
#                  cosine is the subject-free one (``subjectFreeCosine`` in explain, ``rawCosine`` the plain one): the
#                  question without the record's names against each memory without their direction (SubjectFree
#                  below), so a memory is not ranked by how much of it is the record's name
#   keyword      = C(cosine + KEYWORD_WEIGHT x k) - s + topicLift, k = the idf-weighted share of the query's terms the
#                  memory contains (hybrid.py; in a scoped recall the terms of the question without the record's
#                  names, plus the kinds of value it asks for — a date for "when", a person for "who": answer kinds
#                  below), or TOPIC_MATCH when the memory answers the CRM topic the query asks
#                  about (semantics.question_topics / answers_on: "Where is X hosted?" / "X left Google Cloud and
#                  now runs on AWS"), whichever is larger: the lift a keyword match gives. C is fitted on this fused
#                  signal, so a threshold keeps its meaning with the keyword part in.
#                  topicLift = TOPIC_SHARE x (1 - C(cosine + KEYWORD_WEIGHT x k)) for a memory answering the asked topic
#                  (``topicLift`` in explain, part of keyword): it states the answer ("Which database ...?" / "analytics
#                  now runs on Snowflake"), so it outranks sentences that merely share the entity's name with the
#                  question (a static embedding scores "At Acme, the pilot starts Monday" close to any question
#                  naming Acme)
#   recency      = RECENCY_WEIGHT x r x (1 - s - keyword), r = 0.5 ** (age in days / RECENCY_HALF_LIFE_DAYS)
#   supersession = -SUPERSEDED_PENALTY x (s + keyword + recency) for a superseded memory (only returned
#                  with includeSuperseded), and for a live memory whose value on the asked topic is outdated: a
#                  newer memory replaced it (its provenance's staleTopics, memory_store._mark_stale_topics: it
#                  stays visible for its other claims), or a newer candidate of the same record states another
#                  value on that topic (semantics.newer_value_on: the newest statement on the topic answers
#                  first) or one at least as new names its value as a former one (semantics.retires_value_on);
#                  such a memory gets no topic match or topic lift either (``staleTopic`` in explain)
KEYWORD_WEIGHT = 0.3  # cosine units a full keyword match adds before calibration
TOPIC_MATCH = 1.0  # the keyword match of a memory on the question's topic (a full match: it answers the question)
TOPIC_SHARE = 0.75  # the share of what is left below 1 an answer on the asked topic gains
RECENCY_WEIGHT = 0.05
RECENCY_HALF_LIFE_DAYS = 180.0
SUPERSEDED_PENALTY = 0.2
# org-wide with filters: up to this many matching memories are all scored exactly (a selective filter never
# loses a match to the index's top-k cut); more matches mean an unselective filter, and the index's candidates,
# filtered and widened, find enough of them
FILTER_SCAN_MAX = 2_000
DEEP_NOTE = "deep mode needs an LLM (set MEMRELAY_LLM_MODEL); answered in fast mode"
MAX_SCOPE = 500  # records one identifier may scope a recall to (a company's contacts, deals, tickets)
NO_TYPE = "\x00none"  # a type filter nothing can match (type and collections exclude each other)


class RecallRequest(BaseModel):
    """POST /api/v1/smart-recall (Personize's smartRecall: snake or camel case, ``fast_mode``, ``min_score``)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    query: str = Field(min_length=1, max_length=10_000)
    identifiers: Identifiers = Field(default_factory=Identifiers)
    type: str | None = Field(None, description="Entity type filter (case-insensitive), e.g. 'Contact'.")
    collectionNames: list[str] = Field(default_factory=list,
                                       description="Only memories of records of these collections' entity types.")
    tags: list[str] = Field(default_factory=list)
    limit: int = Field(10, ge=1, le=200)
    minScore: float = Field(0.0, ge=-1.0, le=1.0,
                            description="Minimum score of a result (alias: min_score); 0 (the default) or less: "
                                        "no threshold, every match comes back.")
    mode: Literal["fast", "deep"] = "fast"
    include_property_values: bool = Field(False, alias="includePropertyValues")
    groupByRecord: bool = False
    include_superseded: bool = Field(False, alias="includeSuperseded")
    generate_answer: bool = Field(False, alias="generateAnswer", description="Deep mode: answer from the memories.")
    about: Literal["lead", "self"] = "lead"
    filters: dict[str, Any] | None = Field(None, description="Metadata filters (mem0 syntax): {field: value}, "
                                           "{field: {eq|ne|in|nin|gt|gte|lt|lte|contains|icontains: v}}, "
                                           "AND/OR/NOT lists; applied before ranking.")
    include_expired: bool = Field(False, alias="includeExpired", description="Also return expired memories.")
    explain: bool = Field(False, description="Each hit's score parts (similarity, keyword, recency, "
                                             "supersession) and the filter conditions it matched.")
    hybrid: bool = Field(True, description="Add the keyword part to the score (false: similarity and recency).")

    @field_validator("filters")
    @classmethod
    def _valid_filters(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            compile_filters(value)  # FilterError is a ValueError: a 422 naming the problem
        return value

    @model_validator(mode="before")
    @classmethod
    def _lift(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            for snake, camel in (("include_property_values", "includePropertyValues"),
                                 ("include_superseded", "includeSuperseded"), ("generate_answer", "generateAnswer"),
                                 ("include_expired", "includeExpired")):
                if camel in data and snake not in data:
                    data[snake] = data.pop(camel)
            for alias, name in (("min_score", "minScore"), ("group_by_record", "groupByRecord"),
                                ("collection_names", "collectionNames")):
                if alias in data and name not in data:
                    data[name] = data.pop(alias)
            if isinstance(data.get("collectionName"), str) and "collectionNames" not in data:
                data["collectionNames"] = [data.pop("collectionName")]
            if data.get("mode") == "full":  # the SDK's former name of deep mode
                data["mode"] = "deep"
            if "mode" not in data and "fast_mode" in data:
                data["mode"] = "fast" if data["fast_mode"] else "deep"
            if "mode" not in data and (data.get("enable_reflection") or data.get("enableReflection")):
                data["mode"] = "deep"
            if data.get("about") is None:
                data.pop("about", None)
            top_type = data.get("type")
            data = lift_identifiers({k: v for k, v in data.items() if k != "type"})
            data["type"] = top_type
        return data

    @property
    def entity_type(self) -> str | None:
        """The type filter, given top-level or inside ``identifiers``."""
        return self.type or self.identifiers.type

    @property
    def score_floor(self) -> float | None:
        """The threshold results' ``score`` must reach, or None: Personize's ``minScore`` is 0-1 and 0 means
        "show me everything", so a threshold of 0 or below filters nothing (scores of unrelated text can be
        negative)."""
        return self.minScore if self.minScore > 0 else None

    def for_key(self, key_id: str | None) -> RecallRequest:
        """``about: "self"`` resolved to the API key's own record (unchanged otherwise)."""
        if self.about != "self":
            return self
        return self.model_copy(update={"identifiers": self_identifiers(key_id), "type": SELF_TYPE})


class _Keep:
    """Which memories a request may return at all: live (unless includeSuperseded), not expired (unless
    includeExpired), carrying one of the tags, passing the metadata filters. ``hits`` (when given)
    receives, for each kept memory, the filter conditions it matched."""

    def __init__(self, req: RecallRequest):
        self.req = req
        self.tags = set(req.tags)
        self.predicate = compile_filters(req.filters) if req.filters is not None else None
        self.now = utcnow()
        self.trivial = not self.tags and self.predicate is None

    def __call__(self, row: dict[str, Any], hits: list[list[str]] | None) -> bool:
        if row.get("supersededBy") and not self.req.include_superseded:
            return False
        expires = row.get("expiresAt")
        if expires is not None and expires <= self.now and not self.req.include_expired:
            return False
        if self.tags and not self.tags & set(row.get("tags") or []):
            return False
        matched: list[str] = []
        if self.predicate is not None and not self.predicate(row, matched):
            return False
        if hits is not None:
            hits.append(matched)
        return True


def _stems(row: dict[str, Any]) -> frozenset[str]:
    """A memory's keyword stems, memoised on the (cached) row: the words of its text plus the words naming the
    CRM topics it speaks to (:func:`~memrelay.engine.domain.semantics.topic_label`), so a topic question ("Who
    is the decision maker?") finds a fact worded without the topic's noun ("Final sign-off moved to Priya")."""
    got = row.get("_stems")
    if got is None:
        text = row["text"]
        label = topic_label(text)
        got = row["_stems"] = terms_of(f"{text} {label}" if label else text)
    return got


TEXT_MEMOS = ("_stems", "_topics", "_kinds", "_doc", "_answers")
"""What scoring memoises on a cached row from the memory's text alone (and the query, in the memo's key): kept for
an unchanged memory when its record's cache entry is reloaded (EntityVectorCache.text_memos). Not ``_staleFamilies``
(from its provenance) nor ``_outdated`` (from the other memories on the topic)."""


def _topics(row: dict[str, Any]) -> frozenset[str]:
    """The topic families a memory speaks to (semantics.statement_topics), memoised on the (cached) row."""
    got = row.get("_topics")
    if got is None:
        got = row["_topics"] = statement_topics(row["text"])
    return got


def _stale_families(row: dict[str, Any]) -> frozenset[str]:
    """The topic families on which a newer memory replaced this (live) memory's value, memoised on the row."""
    got = row.get("_staleFamilies")
    if got is None:
        got = row["_staleFamilies"] = frozenset(topic_family(k) for k in row.get("staleTopics") or ())
    return got


def topic_parts(query: str, rows: list[dict[str, Any]], *, answers: bool = True,
                index: RowIndex | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(stale, topical) of each memory for ``query`` — what :func:`score_parts` reads.

    ``stale``: the memory's value on a topic the query asks about is outdated — a newer memory replaced it (its
    provenance's staleTopics), or a newer candidate of the same record states another value on that topic
    (:func:`_outdated_groups`). ``topical``: :func:`topic_matches`, but 0 where stale (0 everywhere unless
    ``answers``). Read from the rows' :class:`RowIndex` (``index``: a cached record's; else one built for these
    rows): only the rows on an asked topic family, in row order, have their answer computed."""
    n = len(rows)
    asked = question_topics(query)
    if not asked:
        return np.zeros(n, dtype=bool), np.zeros(n)
    whose = _whose(query, asked) if answers else frozenset()
    index = RowIndex(rows) if index is None else index
    stale_of, topics_of = index.stale(), index.topics()
    marked = {i for family in asked for i in stale_of.get(family, ())}
    stale = np.zeros(n, dtype=bool)
    topical = np.zeros(n, dtype=np.float64)
    if marked:
        stale[list(marked)] = True
    on_topic: dict[Any, list[int]] = {}
    for i in sorted({i for family in asked for i in topics_of.get(family, ())} - marked):
        r = rows[i]
        if r.get("ts") is not None:
            on_topic.setdefault(r.get("recordId"), []).append(i)
        if answers:
            topical[i] = _answers(r, asked, whose)
    if on_topic:
        stale |= _outdated_groups(asked, rows, on_topic)
    return stale, np.where(stale, 0.0, topical)


def _outdated_groups(asked: frozenset[str], rows: list[dict[str, Any]], on_topic: dict[Any, list[int]]) -> np.ndarray:
    """True for each memory on an asked topic family (``on_topic``: record -> its rows on the topic, ``ts`` set) when
    a newer candidate of the same record, on the same topic, states a value it does not (semantics.newer_value_on), or
    one at least as new names its value as a former one (semantics.retires_value_on): the newest statement on the
    topic answers the question first. Nothing is hidden — the older memory only yields its lead on this question.

    A record's answer depends only on its rows on the topic: it is memoised on the first of them (a cached row lives
    as long as its record's memories are unchanged), keyed by the asked topics and the rows' ids."""
    out = np.zeros(len(rows), dtype=bool)
    for idx in on_topic.values():
        if len(idx) < 2:
            continue
        memo = rows[idx[0]].setdefault("_outdated", {})
        key = (asked, tuple(rows[i].get("memoryId") for i in idx))
        got = memo.get(key)
        if got is None:
            got = memo[key] = tuple(_outdated_by(rows[i], [rows[j] for j in idx if j != i], asked) for i in idx)
        out[idx] = got
    return out


def _outdated_by(mine: dict[str, Any], others: list[dict[str, Any]], asked: frozenset[str]) -> bool:
    return any((o["ts"] > mine["ts"] and newer_value_on(mine["text"], o["text"], asked))
               or (o["ts"] >= mine["ts"] and retires_value_on(mine["text"], o["text"], asked)) for o in others)


def topic_matches(query: str, rows: list[dict[str, Any]]) -> np.ndarray:
    """1.0 for each memory answering a topic the query asks about (semantics.question_topics, semantics.answers_on:
    it speaks to the topic and does not name only former values there), else 0."""
    asked = question_topics(query)
    if not asked:
        return np.zeros(len(rows))
    whose = _whose(query, asked)
    return np.array([_answers(r, asked, whose) for r in rows])


def _whose(query: str, asked: frozenset[str]) -> frozenset[str]:
    """The names a role question asks about (lower-cased), else none."""
    return frozenset(w.lower() for w in _QUESTION_NAME_RE.findall(query)) if "role" in asked else frozenset()


def _answers(row: dict[str, Any], asked: frozenset[str], whose: frozenset[str]) -> float:
    """:func:`topic_matches` of one memory, memoised on the (cached) row per asked topics and names."""
    on = asked & _topics(row)
    if not on:
        return 0.0
    memo = row.setdefault("_answers", {})
    got = memo.get((asked, whose))
    if got is None:
        got = memo[(asked, whose)] = 1.0 if answers_on(row["text"], asked) and (
            not whose or on != {"role"} or answers_role_of(row["text"], whose)) else 0.0
    return got


# Capitalised words after a question's first word: the names it asks about ("What is Ewa Lis's role?" asks for Ewa's
# role: another person's title is no answer).
_QUESTION_NAME_RE = re.compile(r"(?<=\S)\s+((?-i:[A-Z])[^\W\d_]+)(?:['’]s)?")


# --- answer types: what kind of value a question asks for ----------------------------------------------------------
# A static embedding cannot tell "When is the budget round?" from "The budget round was discussed"; the kind of value
# the question wants can: a date for "when", a count for "how many", an amount for "what budget", a person for "who",
# a place for "where". Each kind the question asks for is one more keyword term ("=when", "=count", ...) that a memory
# stating such a value contains, weighed by its idf over the candidates like any word (hybrid.keyword_coverage): a
# rare kind lifts the few memories holding one, a kind every memory holds weighs nothing. A person counts only if the
# memory names someone besides the record itself (its names are what a scoped question is about, not an answer).
_ASKS = {
    "=when": re.compile(r"^\s*(?:and\s+|so\s+)?(?:when|by when|how soon|since when|until when)\b|\bwhat (?:date|day|"
                        r"month|year|quarter|time ?frame)\b", re.I),
    "=count": re.compile(r"\bhow (?:many|big|large)\b|\bwhat(?:'s| is) the (?:size|number)\b", re.I),
    "=money": re.compile(r"\b(?:budget|cost|costs|price|pricing|spend|spending|how much|deal size|deal value|worth|"
                         r"afford|revenue|arr|funding|raised|invest\w*)\b", re.I),
    "=person": re.compile(r"^\s*(?:and\s+|so\s+)?(?:who|whom|whose)\b|\bwhich (?:person|people|colleague|executive|"
                          r"exec|manager|stakeholder)\b", re.I),
    "=place": re.compile(r"^\s*(?:and\s+|so\s+)?where (?:is|are|was|were|do|does)\b(?!.*\b(?:keep|kept|store|stored|"
                         r"track|tracked|log|logged|live|lives|stand|stands|sit|sits)\b)|\b(?:located|headquartered|"
                         r"which (?:city|country|region))\b", re.I),
}
@lru_cache(maxsize=4096)
def answer_kinds_asked(query: str) -> frozenset[str]:
    """The kinds of value a question asks for ("=when", "=count", "=money", "=person", "=place")."""
    return frozenset(kind for kind, rx in _ASKS.items() if rx.search(query))


def _kinds(row: dict[str, Any]) -> tuple[frozenset[str], frozenset[str]]:
    """(the value kinds a memory states besides people, the people it names), memoised on the (cached) row."""
    got = row.get("_kinds")
    if got is None:
        got = row["_kinds"] = value_kinds(row["text"])
    return got


def _doc(row: dict[str, Any], asked: frozenset[str], subject: frozenset[str]) -> frozenset[str]:
    """A memory's keyword terms with the asked answer kinds it holds, memoised on the (cached) row."""
    memo = row.setdefault("_doc", {})
    got = memo.get((asked, subject))
    if got is None:
        got = memo[(asked, subject)] = _stems(row) | answer_kinds([row], asked, subject)[0]
    return got


def _docs(rows: list[dict[str, Any]], asked: frozenset[str], subject: frozenset[str]) -> list[frozenset[str]]:
    """:func:`_doc` of each row, reading the memo in the loop (one call per row would cost more than the lookup)."""
    key = (asked, subject)
    out = []
    for r in rows:
        memo = r.get("_doc")
        got = memo.get(key) if memo is not None else None
        out.append(got if got is not None else _doc(r, asked, subject))
    return out


class RowIndex:
    """Which rows of one cached record hold each keyword stem, topic family and stale family (built from the rows'
    memos, each part on first use, kept with the record's cache entry): a question's keyword and topic parts then
    visit only the rows holding one of its terms, with the same results as a pass over every row."""

    __slots__ = ("rows", "_stems", "_topics", "_stale", "_kinds")

    def __init__(self, rows: list[dict[str, Any]]):
        self.rows = rows
        self._stems: dict[str, list[int]] | None = None
        self._topics: dict[str, list[int]] | None = None
        self._stale: dict[str, list[int]] | None = None
        self._kinds: dict[tuple[frozenset[str], frozenset[str]], dict[str, list[int]]] = {}

    @staticmethod
    def _of(rows: list[dict[str, Any]], sets: Callable[[dict[str, Any]], frozenset[str]]) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for i, r in enumerate(rows):
            for term in sets(r):
                out.setdefault(term, []).append(i)
        return out

    def stems(self) -> dict[str, list[int]]:
        if self._stems is None:
            self._stems = self._of(self.rows, _stems)
        return self._stems

    def topics(self) -> dict[str, list[int]]:
        if self._topics is None:
            self._topics = self._of(self.rows, _topics)
        return self._topics

    def stale(self) -> dict[str, list[int]]:
        if self._stale is None:
            self._stale = self._of(self.rows, _stale_families)
        return self._stale

    def kinds(self, asked: frozenset[str], subject: frozenset[str]) -> dict[str, list[int]]:
        """The rows whose doc (:func:`_doc`) holds each asked answer kind."""
        got = self._kinds.get((asked, subject))
        if got is None:
            docs = _docs(self.rows, asked, subject)
            got = self._kinds[(asked, subject)] = {k: [i for i, d in enumerate(docs) if k in d] for k in asked}
        return got


def row_index(ev: EntityVectors) -> RowIndex:
    """The :class:`RowIndex` of a cached record's rows, kept in its entry's memo."""
    got = ev.memo.get("rowIndex")
    if got is None:
        got = ev.memo["rowIndex"] = RowIndex(ev.rows)
    return got


def indexed_coverage(query: str, rows: list[dict[str, Any]], index: RowIndex, asked: frozenset[str],
                     subject: frozenset[str]) -> np.ndarray:
    """:func:`~memrelay.engine.memory.hybrid.keyword_coverage` of ``query`` over the rows' docs (:func:`_docs`),
    read from ``index``: identical values (the same sets, summed in the same order), computed for the rows holding
    a query term only."""
    terms = set(query_terms(query)) | asked
    out = np.zeros(len(rows), dtype=np.float64)
    if not terms or not rows:
        return out
    stems, kinds = index.stems(), (index.kinds(asked, subject) if asked else {})
    holding = {term: (kinds.get(term, ()) if term in asked else stems.get(term, ())) for term in terms}
    idf = {term: idf_of(len(holding[term]), len(rows)) for term in terms}
    total = sum(idf.values())
    if total <= 0:
        return out
    for i in sorted({i for held in holding.values() for i in held}):
        doc = _doc(rows[i], asked, subject) if asked else _stems(rows[i])
        out[i] = sum(idf[term] for term in doc & terms) / total
    return out


def answer_kinds(rows: list[dict[str, Any]], asked: frozenset[str], subject: frozenset[str]) -> list[frozenset[str]]:
    """The asked kinds each memory holds a value of (a person only if not one of the ``subject`` words)."""
    out = []
    for r in rows:
        kinds, people = _kinds(r)
        held = kinds & asked
        if "=person" in asked and any(set(p.split()) - subject for p in people):
            held = held | {"=person"}
        out.append(held)
    return out


# --- subject-neutral similarity (scoped recall) --------------------------------------------------------------------
# In a scoped recall every candidate is about the same record, so the record's own names (its person and company
# names, the email's local part and domain) tell candidates apart by nothing — yet with a static embedding (an
# average of token vectors) they dominate the cosine: a short "At <company>, <detail>." outscores "<company> is based
# in <city>." for "Where is <company> based?", most of either vector being the name. The subject-free cosine compares the
# question without those names with each memory without their direction: the names' vectors span a small subspace,
# the query (names removed from its text) and every memory vector are projected off it, and a memory's remaining
# norm divides its dot product (floored at SUBJECT_MIN_NORM: a memory that is nothing but the names has no content
# to compare). The cosine recall calibrates is the blend (1 - SUBJECT_FREE_WEIGHT) x cosine + SUBJECT_FREE_WEIGHT x
# subject-free cosine; org-wide recall, and a question that is nothing but the names, keep the plain cosine.
# Per record, the names, their words and the basis of their vectors are cached with the record's memory vectors
# (EntityVectorCache.subject, re-read when a write changes the record's properties or keys), and a question that
# names none of them is not embedded again: a warm scoped recall embeds the question once and reads no names.
SUBJECT_FREE_WEIGHT = 1.0
SUBJECT_MIN_NORM = 0.5
SUBJECT_PROPERTIES = ("first_name", "last_name", "name", "full_name", "company_name", "company", "domain",
                      "website", "website_url")
_SUBJECT_WORD_RE = re.compile(r"[^\W_][\w&.'’-]*")
_HOST_PROPERTIES = frozenset({"domain", "website", "website_url"})
_GENERIC_HOST_LABELS = frozenset("www com org net co io mail app gmail outlook hotmail yahoo icloud".split())


def subject_names(s: Session, record_ids: list[str]) -> list[str]:
    """The names the records go by: their name and company properties, their email's local part and domain label
    and their website's host label ("katarzyna.nowak@vistula-components.pl" -> "katarzyna nowak",
    "vistula components"), each once, longest first."""
    names: dict[str, None] = {}

    def add(value: Any) -> None:
        if isinstance(value, str):
            text = " ".join(re.sub(r"[._+\-]+", " ", value).split()) if "@" not in value else ""
            if text and len(text) <= 80:
                names.setdefault(text, None)

    ids = record_ids[:MAX_SCOPE]
    keys: dict[str, dict[str, str]] = {}  # record -> its first email and website_url keys (as record_keys renders)
    params = {"ids": ids, "names": SUBJECT_PROPERTIES}
    for kind, rid, name, value, _ in execute_read(s, _NAME_ROWS, params):
        if kind == 0:  # a property value, as its JSON text
            value = json.loads(value) if value is not None else None
            add(_host_label(value) if name in _HOST_PROPERTIES and isinstance(value, str) else value)
        else:
            keys.setdefault(rid, {}).setdefault(name, value)
    for rid in ids:
        email = keys.get(rid, {}).get("email")
        if email is not None and "@" in email:
            local, _, domain = email.partition("@")
            add(local)
            add(_host_label(domain))
        if (site := keys.get(rid, {}).get("website_url")) is not None:
            add(_host_label(site))
    return sorted(names, key=len, reverse=True)


# The names' sources in one statement, built once: the records' name properties (as JSON text: one column type for
# both parts), then their email and website keys, each record's in the order they were added. ORM-enabled, so a
# department key's access criteria (stores/access_filter.py) apply to both parts as to any read (run through the ORM
# only then: ``needs_orm``).
_NAME_ROWS = union_all(
    select(literal(0).label("kind"), PropertyValue.record_id.label("rid"), PropertyValue.name.label("name"),
           cast(PropertyValue.value, Text).label("value"), PropertyValue.id.label("seq"))
    .where(PropertyValue.record_id.in_(bindparam("ids", expanding=True)),
           PropertyValue.name.in_(bindparam("names", expanding=True))),
    select(literal(1), RecordKey.record_id, RecordKey.key_name, RecordKey.key_value, RecordKey.id)
    .where(RecordKey.record_id.in_(bindparam("ids", expanding=True)), RecordKey.key_name.in_(("email", "website_url"))),
).order_by(text("kind"), text("rid"), text("name"), text("seq"))


def _host_label(value: str) -> str:
    """The distinctive label of a host name: "https://www.vistula-components.pl/" -> "vistula-components"."""
    host = re.sub(r"^[a-z]+://", "", value.strip().lower()).split("/")[0]
    labels = [x for x in host.split(".") if x and x not in _GENERIC_HOST_LABELS]
    return labels[0] if len(labels) > 1 or (labels and "." not in host) else ""


def subject_words(names: list[str]) -> frozenset[str]:
    """Lower-case words of the names (2+ characters): the words :func:`strip_subject` removes."""
    return frozenset(w for n in names for w in (m.group(0).lower().strip(".'’") for m in _SUBJECT_WORD_RE.finditer(n))
                     if len(w) >= 2)


def strip_subject(query: str, words: frozenset[str]) -> str:
    """``query`` without the subject's names: capitalised words (possessive dropped) among ``words``, and "&" left
    between two of them ("Thistle & Thread"). Lower-case words stay ("health data" is not "Clinora Health")."""
    def drop(m: re.Match[str]) -> str:
        word = m.group(0)
        base = re.sub(r"['’]s?$", "", word).strip(".").lower()
        return " " if word[0].isupper() and base in words else word

    out = _SUBJECT_WORD_RE.sub(drop, query)
    return " ".join(re.sub(r"(?<=\s)&(?=\s)", " ", out).split())


def name_basis(name_vecs: np.ndarray, dim: int) -> np.ndarray:
    """An orthonormal ``(dim, k)`` basis of the span of the (non-zero) name vectors."""
    names = np.asarray(name_vecs, dtype=np.float64).reshape(-1, dim)
    names = names[np.linalg.norm(names, axis=1) > 0]
    return np.linalg.qr(names.T)[0] if len(names) else np.zeros((dim, 0))


class SubjectFree:
    """The subject-free cosine of one scoped question: ``cosines(matrix)`` for unit memory vectors (see above)."""

    def __init__(self, query_vec: np.ndarray, name_vecs: np.ndarray | None, basis: np.ndarray | None = None):
        if basis is None:
            basis = name_basis(np.asarray(name_vecs), len(query_vec))
        q = np.asarray(query_vec, dtype=np.float64)
        q = q - basis @ (basis.T @ q)
        norm = math.sqrt(q.dot(q))  # what np.linalg.norm computes for a vector, without its dispatch
        self.basis = basis
        self.query = q / norm if norm > 1e-6 else None

    def cosines(self, matrix: np.ndarray, memo: dict[str, Any] | None = None) -> np.ndarray | None:
        """The subject-free cosine of each memory (None when the question is nothing but the names). ``memo``: a
        cached record's (:attr:`EntityVectors.memo`) when ``matrix`` is its whole matrix — the memories' floored
        norms off the names' span depend only on it and the basis, so they are kept there for this basis."""
        if self.query is None or not len(matrix):
            return None
        m = np.asarray(matrix, dtype=np.float64)
        kept = memo.get("subjectFreeNorms") if memo is not None else None
        if kept is not None and kept[0] is self.basis:
            floored = kept[1]
        else:
            along = m @ self.basis
            rest = np.sqrt(np.maximum(np.einsum("ij,ij->i", m, m) - np.einsum("ij,ij->i", along, along), 0.0))
            floored = np.maximum(rest, SUBJECT_MIN_NORM)
            if memo is not None:
                memo["subjectFreeNorms"] = (self.basis, floored)
        return (m @ self.query) / floored


def score_parts(query: str, rows: list[dict[str, Any]], sims: np.ndarray, calibration: Calibration, *,
                hybrid: bool = True, now: float | None = None, subject_free: np.ndarray | None = None,
                keyword_query: str | None = None, subject: frozenset[str] = frozenset(),
                ts: np.ndarray | None = None, superseded: np.ndarray | None = None,
                index: RowIndex | None = None) -> dict[str, np.ndarray]:
    """The score of each candidate and its parts (see the formula above): ``similarity`` (calibrated),
    ``rawCosine``, ``subjectFreeCosine`` (``subject_free``, the rawCosine when None), ``cosine`` (what is
    calibrated), ``keyword`` and ``keywordMatch`` (the share of query terms, unweighted, or the topic match),
    ``topicMatch`` (1 when the memory answers the topic the query asks about), ``topicLift`` (the lift that gives,
    included in ``keyword``), ``staleTopic`` (1 when its value on that topic is outdated: no topic match, the
    supersession penalty), ``recency``, ``supersession`` and ``score`` (the sum of similarity, keyword, recency and
    supersession). ``keyword_query``: the words the keyword part matches (a scoped recall's question without the
    record's names); ``subject``: the record's name words (a memory naming only them holds no person answer);
    ``ts``: the rows' content timestamps in epoch seconds (0 for none) and ``superseded`` whether each has been
    superseded, when the caller holds them; ``index``: the rows' :class:`RowIndex` (the same parts, computed from
    the rows holding the question's terms and topics only)."""
    n = len(rows)
    raw = np.asarray(sims, dtype=np.float64)
    cos = raw if subject_free is None else (1 - SUBJECT_FREE_WEIGHT) * raw + SUBJECT_FREE_WEIGHT * subject_free
    similarity = calibration(cos)
    if hybrid:
        asked = answer_kinds_asked(query)
        if index is not None:
            match = indexed_coverage(keyword_query or query, rows, index, asked, subject)
        else:
            docs = _docs(rows, asked, subject) if asked else [_stems(r) for r in rows]
            match = keyword_coverage(keyword_query or query, docs, asked)
    else:
        match = np.zeros(n)
    stale, topical = topic_parts(query, rows, answers=hybrid, index=index)
    match = np.maximum(match, TOPIC_MATCH * topical)
    fused = calibration(cos + KEYWORD_WEIGHT * match)
    topic = TOPIC_SHARE * topical * np.maximum(1.0 - fused, 0.0)
    keyword = fused - similarity + topic
    if ts is None:
        ts = np.array([r["ts"].timestamp() if r.get("ts") else 0.0 for r in rows], dtype=np.float64)
    rec = RECENCY_WEIGHT * recency(ts, utcnow().timestamp() if now is None else now) * (1.0 - similarity - keyword)
    kept = similarity + keyword + rec
    if superseded is None:
        superseded = np.array([bool(r.get("supersededBy")) for r in rows], dtype=bool)
    outdated = stale | superseded
    sup = np.where(outdated, -SUPERSEDED_PENALTY, 0.0) * kept
    return {"similarity": similarity, "rawCosine": raw, "subjectFreeCosine": raw if subject_free is None else
            np.asarray(subject_free, dtype=np.float64), "cosine": cos, "keyword": keyword,
            "keywordMatch": match, "topicMatch": topical, "topicLift": topic, "staleTopic": stale.astype(np.float64),
            "recency": rec, "supersession": sup, "score": kept + sup}


def recency(ts_epoch: np.ndarray, now: float) -> np.ndarray:
    """1.0 for content from now, halving every RECENCY_HALF_LIFE_DAYS."""
    age_days = np.maximum(now - ts_epoch, 0.0) / 86400.0
    return np.power(0.5, age_days / RECENCY_HALF_LIFE_DAYS)


class DeepMode(Protocol):
    """Deep recall: extends a fast result; ``fast_search(query)`` runs one more fast recall."""

    def deepen(self, org_id: str, req: RecallRequest, fast_result: dict[str, Any],
               fast_search: Callable[[str], list[dict[str, Any]]]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class _Subject:
    """The names scoped records go by (see :func:`subject_names`), their words and the basis of their vectors."""

    names: tuple[str, ...]
    words: frozenset[str]
    vecs: np.ndarray
    basis: np.ndarray

    @staticmethod
    def of(names: list[str], emb: Embedder) -> _Subject:
        vecs = np.asarray(emb.embed(names), dtype=np.float64).reshape(-1, emb.dim) if names else \
            np.zeros((0, emb.dim))
        return _Subject(tuple(names), subject_words(names), vecs, name_basis(vecs, emb.dim))

    @staticmethod
    def merge(parts: list[_Subject], dim: int) -> _Subject:
        seen: dict[str, np.ndarray] = {}
        for p in parts:
            for name, vec in zip(p.names, p.vecs, strict=True):
                seen.setdefault(name, vec)
        names = sorted(seen, key=len, reverse=True)
        vecs = np.array([seen[n] for n in names]).reshape(-1, dim)
        return _Subject(tuple(names), subject_words(names), vecs, name_basis(vecs, dim))


def _subject_of(s: Session, record_id: str, emb: Embedder) -> _Subject:
    return _Subject.of(subject_names(s, [record_id]), emb)


class Recall:
    """Semantic recall over an org's memories (``deep`` is None without an LLM)."""

    def __init__(self, db: Database, embedder: Embedder, index: IndexSearch, deep: DeepMode | None = None):
        self.db, self.embedder, self.index, self.deep = db, embedder, index, deep
        self.cache = EntityVectorCache(text_memos=TEXT_MEMOS)
        self.questions = TextVectorCache(max_entries=4096)
        """Vectors of recent questions (and of their name-free forms): a workflow or agent asking the same question
        of many records embeds it once — with an API embedder, one network call instead of one per recall."""
        self.subject_cache = True  # cache the records' names and name basis with their vectors (False: bench only)
        self.exact = ExactOrgIndex()

    # --- smart recall ------------------------------------------------------------------------
    def smart_recall(self, org_id: str, req: RecallRequest) -> dict[str, Any]:
        """Top memories for ``req.query``, scoped to one record when identifiers are given."""
        t0 = time.perf_counter()
        emb = self.embedder
        qvec = self.questions.embed(emb, [req.query])[0]
        with self.db.read() as s:
            index_sync.check_embedder(s, org_id, emb, claim=False)
            types = entity_type_filter(s, org_id, req.entity_type, req.collectionNames)
            scope_records: list[Holder] = []
            if req.identifiers.keys():
                scope_records = self._scope(s, org_id, req, types)
                scope = "record" if len(scope_records) == 1 else "records"
                matches = self.scoped_matches_of(s, org_id, [r.id for r in scope_records], qvec, req,
                                                 stamped={r.id: stamps_from(r.extra) for r in scope_records})
            else:
                scope = "org"
                matches = self.org_matches(s, org_id, qvec, req, types)
            result = self._render(s, org_id, matches, req)
            if req.include_property_values:
                result["property_values"] = property_values(s, result, scope_records if scope == "record" else None)
        result.update({"query": req.query, "scope": scope, "mode": "fast",
                       "tookMs": round((time.perf_counter() - t0) * 1000, 3)})
        if req.explain:
            cal = calibration_for(emb.name)
            result["scoring"] = {
                "formula": "score = similarity + keyword + recency + supersession",
                "parts": {"similarity": "calibrated relevance s of the cosine (scoped recall: subjectFreeCosine, the "
                                        "question and memory without the record's names; rawCosine: the plain one)",
                          "keyword": "C(cosine + keywordWeight x keywordMatch) - s + topicLift; keywordMatch = max(the "
                                     "idf-weighted share of query terms and asked answer kinds (=when, =count, =money, "
                                     "=person, =place), topicMatch x topicMatchWeight); topicLift = "
                                     "topicMatch x topicShare x (1 - C(cosine + keywordWeight x keywordMatch)): "
                                     "a memory answering the asked topic",
                          "recency": "recencyWeight x 0.5^(age days / half-life) x (1 - s - keyword)",
                          "supersession": "(superseded or staleTopic) x -penalty x (s + keyword + recency); "
                                          "staleTopic: a newer memory replaced its value on the asked topic, or "
                                          "another one of the same record states a newer value or names its value "
                                          "as a former one"},
                "weights": {"keywordWeight": KEYWORD_WEIGHT, "topicMatchWeight": TOPIC_MATCH, "topicShare": TOPIC_SHARE,
                            "subjectFreeWeight": SUBJECT_FREE_WEIGHT, "subjectMinNorm": SUBJECT_MIN_NORM,
                            "recencyWeight": RECENCY_WEIGHT,
                            "recencyHalfLifeDays": RECENCY_HALF_LIFE_DAYS, "penalty": SUPERSEDED_PENALTY},
                "calibration": {"embedder": emb.name, "fitted": cal.fitted, "cosine": list(cal.xs),
                                "score": list(cal.ys)}}
        if scope != "org":
            result["scopeRecords"] = [{"recordId": r.id, "record_id": r.id, "type": r.entity_type}
                                      for r in scope_records[:MAX_SCOPE]]
            result["scopeTruncated"] = len(scope_records) > MAX_SCOPE
        if req.mode == "deep":
            if self.deep is not None:
                return self.deep.deepen(org_id, req, result, lambda q: self.smart_recall(
                    org_id, req.model_copy(update={"query": q, "mode": "fast"}))["results"])
            result["note"] = DEEP_NOTE
        return result

    @staticmethod
    def _scope(s: Session, org_id: str, req: RecallRequest, types: list[str] | None) -> list[Holder]:
        """The live records the identifiers name — by ``record_id``, or every record holding the key
        (primary or secondary, any type unless filtered): recall by ``website_url`` reaches the company
        and the contacts, deals and tickets that carry it. 404/422 when no record of any type holds it. Each
        holder carries its stamps (``extra``: :data:`~memrelay.engine.memory.entity_vectors.STAMP_COLUMNS`), read
        in the same statement."""
        ids = req.identifiers
        found = holders(s, org_id, ids, types, limit=MAX_SCOPE + 1, columns=STAMP_COLUMNS)
        if found or req.about == "self":
            return found
        if types is not None and holders(s, org_id, ids, None, limit=1):
            return []  # the key exists, on records of other types
        raise not_found(s, org_id, ids, req.entity_type)

    def scoped_matches_of(self, s: Session, org_id: str, record_ids: list[str], qvec: np.ndarray,
                          req: RecallRequest, stamped: dict[str, Stamps] | None = None) -> list[dict[str, Any]]:
        """Exact scores over the memories of several records (each record's vectors cached), best first.
        Filters, expiry, supersession and tags select the candidates first; only those are ranked. ``stamped``:
        the records' stamps when the caller read them (see :meth:`EntityVectorCache.lookup_many`)."""
        emb = self.embedder
        rows: list[dict[str, Any]] = []
        blocks: list[np.ndarray] = []
        epochs: list[np.ndarray] = []
        gone: list[np.ndarray] = []  # superseded
        hits: list[list[str]] = []
        keep = _Keep(req)
        now = keep.now.timestamp()
        scope = record_ids[:MAX_SCOPE]
        looked_up = self.cache.lookup_many(s, org_id, scope, embedder=emb.name, dim=emb.dim, stamped=stamped)
        stamps = {rid: stamp for rid, (_, stamp) in zip(scope, looked_up, strict=True)}
        for ev, _ in looked_up:
            if keep.trivial:  # no tags or filters: supersession and expiry only (the common case, kept cheap)
                mask = np.ones(len(ev.rows), dtype=bool) if req.include_superseded else ev.live
                if not req.include_expired:
                    mask = mask & (ev.expires > now)
                idx = np.flatnonzero(mask)  # no filters: ``hits`` (filters matched, for explain) stays unread
            else:
                idx = np.array([i for i, row in enumerate(ev.rows) if keep(row, hits)], dtype=np.int64)
            if len(idx) == len(ev.rows):  # every memory a candidate: the cached arrays as they are
                rows += ev.rows
                blocks.append(ev.matrix)
                epochs.append(ev.ts)
                gone.append(~ev.live)
            elif len(idx):
                rows += [ev.rows[i] for i in idx]
                blocks.append(ev.matrix[idx])
                epochs.append(ev.ts[idx])
                gone.append(~ev.live[idx])
        if not rows:
            return []
        whole = len(looked_up) == 1 and len(rows) == len(looked_up[0][0].rows)  # one record, every memory a candidate
        matrix = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
        subject = self._subject(s, org_id, scope, stamps)
        stripped, free = self._subject_free(subject, req.query, qvec)
        return self._ranked(rows, matrix @ qvec, hits, req, cap=None if req.groupByRecord else req.limit,
                            subject_free=free.cosines(matrix, looked_up[0][0].memo if whole else None)
                            if free is not None else None, keyword_query=stripped,
                            subject=subject.words, ts=epochs[0] if len(epochs) == 1 else np.concatenate(epochs),
                            superseded=gone[0] if len(gone) == 1 else np.concatenate(gone),
                            index=row_index(looked_up[0][0]) if whole else None)

    def _subject(self, s: Session, org_id: str, record_ids: list[str],
                 stamps: dict[str, tuple[Any, ...]]) -> _Subject:
        """The records' names, their words, vectors and basis; each record's cached with its vectors (see
        EntityVectorCache.subject: recomputed when the record's properties or keys change)."""
        emb = self.embedder
        if not self.subject_cache:
            return _Subject.of(subject_names(s, record_ids), emb)
        tag = f"{emb.name}/{emb.dim}"
        per = [self.cache.subject(org_id, rid, stamps[rid], tag, partial(_subject_of, s, rid, emb))
               for rid in record_ids]
        return per[0] if len(per) == 1 else _Subject.merge(per, emb.dim)

    def _subject_free(self, subject: _Subject, query: str,
                      qvec: np.ndarray) -> tuple[str | None, SubjectFree | None]:
        """The question without the records' names and its :class:`SubjectFree` cosine (None, None when the
        records have no names or the question is nothing but them). ``qvec``: the question's vector, reused when
        stripping the names leaves it unchanged."""
        if not subject.names:
            return None, None
        stripped = strip_subject(query, subject.words)
        if not content_stems(stripped):
            return None, None
        svec = qvec if stripped == query else self.questions.embed(self.embedder, [stripped])[0]
        return stripped, SubjectFree(svec, None, basis=subject.basis)

    def scoped_matches(self, s: Session, org_id: str, record_id: str, qvec: np.ndarray,
                       req: RecallRequest) -> list[dict[str, Any]]:
        """Exact scores of one record's memories (cached vectors, numpy dot product)."""
        return self.scoped_matches_of(s, org_id, [record_id], qvec, req)

    def org_matches(self, s: Session, org_id: str, qvec: np.ndarray, req: RecallRequest,
                    types: list[str] | None) -> list[dict[str, Any]]:
        """Candidates (exact in-process for small orgs, Milvus otherwise) re-checked and re-scored against SQL,
        fetching more when filters drop too many. With metadata ``filters`` the org's memories are filtered
        first (a scan of their metadata in SQL) and every match is scored exactly, unless more than
        FILTER_SCAN_MAX match (then the index's candidates are filtered, widening the search)."""
        want = req.limit * (8 if req.groupByRecord else 1)
        if req.filters is not None:
            ids = self._filtered_ids(s, org_id, req, types)
            if ids is not None:
                out = self._recheck(s, org_id, ids, qvec, req)
                return out if req.groupByRecord else out[:req.limit]
        fetch = want * 3 + 20
        emb = self.embedder
        for attempt in range(3):  # the index state is brought up to date once per request, by the first search
            ids = self.exact.search(s, org_id, qvec, limit=fetch, embedder=emb.name, dim=emb.dim,
                                    entity_types=types, refresh=attempt == 0,
                                    include_superseded=req.include_superseded)
            if ids is None:
                ids = [h.memory_id for h in self.index.search(qvec, org_id, limit=fetch, entity_types=types)]
            out = self._recheck(s, org_id, ids, qvec, req)
            if len(out) >= want or len(ids) < fetch:
                break
            fetch *= 4
        return out if req.groupByRecord else out[:req.limit]

    def _filtered_ids(self, s: Session, org_id: str, req: RecallRequest,
                      types: list[str] | None) -> list[str] | None:
        """Ids of the org's live memories that pass the filters (None: too many to score exactly)."""
        q = select(Memory.id, Memory.meta, Memory.tags, Memory.topic, Memory.speaker, Memory.source,
                   Memory.entity_type, Memory.ts, Memory.expires_at, Memory.superseded_by).where(
            Memory.org_id == org_id, Memory.deleted_at.is_(None), Memory.embedder == self.embedder.name)
        if types is not None:
            q = q.where(Memory.entity_type.in_(types))
        keep = _Keep(req)
        ids: list[str] = []
        for r in s.execute(q):
            row = {"metadata": r.meta or {}, "tags": r.tags or [], "topic": r.topic, "speaker": r.speaker,
                   "source": r.source, "type": r.entity_type, "ts": r.ts, "expiresAt": as_aware(r.expires_at),
                   "supersededBy": r.superseded_by}
            if keep(row, None):
                ids.append(r.id)
                if len(ids) > FILTER_SCAN_MAX:
                    return None
        return ids

    def _recheck(self, s: Session, org_id: str, memory_ids: list[str], qvec: np.ndarray,
                 req: RecallRequest) -> list[dict[str, Any]]:
        """Keep hits whose memory and record are live in this org (SQL) and pass the request's filters,
        scored exactly from SQL vectors."""
        if not memory_ids:
            return []
        emb = self.embedder
        found: list[Any] = []
        for i in range(0, len(memory_ids), 500):
            found += s.execute(
                select(Memory.id, Memory.record_id, Memory.entity_type, Memory.text, Memory.tags, Memory.speaker,
                       Memory.topic, Memory.source, Memory.seen_count, Memory.superseded_by, Memory.ts,
                       Memory.embedding, Memory.embedder, Memory.org_id, Memory.meta, Memory.expires_at,
                       Memory.provenance, Memory.readings, Memory.deleted_at.label("memory_deleted"),
                       Record.org_id.label("record_org"), Record.deleted_at)
                .join(Record, Record.id == Memory.record_id)
                .where(Memory.id.in_(memory_ids[i:i + 500]))).all()
        # Checked here rather than in SQL so the planner always walks the primary key (an org_id condition
        # makes SQLite scan the whole org through ix_memories_record).
        found = [r for r in found if r.org_id == org_id and r.record_org == org_id and r.deleted_at is None
                 and r.memory_deleted is None and r.embedder == emb.name]
        keep = _Keep(req)
        hits: list[list[str]] = []
        rows, blobs = [], []
        for r in found:
            row = {"memoryId": r.id, "recordId": r.record_id, "type": r.entity_type, "text": r.text,
                   "tags": r.tags or [], "speaker": r.speaker, "topic": r.topic, "source": r.source,
                   "seenCount": r.seen_count, "supersededBy": r.superseded_by, "ts": as_aware(r.ts),
                   "metadata": r.meta or {}, "expiresAt": as_aware(r.expires_at),
                   "staleTopics": stale_topics(r.provenance)}
            if keep(row, hits):
                rows.append(row)
                blobs.append(r.embedding)
                if r.readings is not None:
                    readings.prime(r.text, r.readings)
        if not rows:
            return []
        return self._ranked(rows, from_blobs(blobs, emb.dim) @ qvec, hits, req)

    def _ranked(self, rows: list[dict[str, Any]], sims: np.ndarray, hits: list[list[str]],
                req: RecallRequest, cap: int | None = None, subject_free: np.ndarray | None = None,
                keyword_query: str | None = None, subject: frozenset[str] = frozenset(),
                ts: np.ndarray | None = None, superseded: np.ndarray | None = None,
                index: RowIndex | None = None) -> list[dict[str, Any]]:
        """Score candidates (see :func:`score_parts`), apply the threshold, best first (at most ``cap``)."""
        parts = score_parts(req.query, rows, sims, calibration_for(self.embedder.name), hybrid=req.hybrid,
                            subject_free=subject_free, keyword_query=keyword_query, subject=subject, ts=ts,
                            superseded=superseded, index=index)
        floor = req.score_floor
        out = []
        for i in np.argsort(-parts["score"], kind="stable"):
            score = float(parts["score"][i])
            if floor is not None and score < floor:
                continue
            row = rows[i]
            if "_tsIso" not in row:  # memoised on the (cached) row: rendered on most recalls of the record
                row["_tsIso"] = iso(row["ts"])
            m = {**row, "score": score, "similarity": float(sims[i])}
            if req.explain:
                m["explain"] = {k: round(float(v[i]), 6) for k, v in parts.items() if k != "score"}
                m["explain"]["staleTopic"] = bool(parts["staleTopic"][i])
                m["explain"]["filtersMatched"] = hits[i] if req.filters is not None else []
            out.append(m)
            if cap is not None and len(out) >= cap:
                break
        return out

    def _render(self, s: Session, org_id: str, matches: list[dict[str, Any]], req: RecallRequest) -> dict[str, Any]:
        items = [_item(m) for m in matches]
        out: dict[str, Any] = {}
        if req.groupByRecord:
            groups: dict[str, dict[str, Any]] = {}
            for it in items:
                g = groups.setdefault(it["recordId"], {"recordId": it["recordId"], "record_id": it["recordId"],
                                                       "type": it["type"], "topScore": it["score"],
                                                       "matchCount": 0, "matches": []})
                g["matchCount"] += 1
                if len(g["matches"]) < 3:
                    g["matches"].append(it)
            ranked = sorted(groups.values(), key=lambda g: -g["topScore"])[:req.limit]
            out["recordGroups"] = ranked
            items = [m for g in ranked for m in g["matches"]]
        out["results"] = items
        out["count"] = len(items)
        record_ids = list(dict.fromkeys(it["recordId"] for it in items))
        if req.include_property_values and record_ids:
            out["records"] = records_overview(s, record_ids)
            for g in out.get("recordGroups", []):
                g["properties"] = out["records"][g["recordId"]]["properties"]
            for it in items:
                it["properties"] = out["records"][it["recordId"]]["properties"]
        return out


def property_values(s: Session, rendered: dict[str, Any], scope: list[Holder] | None) -> dict[str, Any]:
    """Personize's ``property_values`` (``include_property_values``): the record's ``{name: value}`` when the
    recall is scoped to one record (even when no memory matched), else ``{recordId: {name: value}}`` of the
    records in the results."""
    if scope:
        return records_overview(s, [scope[0].id])[scope[0].id]["properties"]
    return {rid: r["properties"] for rid, r in (rendered.get("records") or {}).items()}


def entity_type_filter(s: Session, org_id: str, entity_type: str | None,
                       collection_names: list[str]) -> list[str] | None:
    """Entity types a recall is restricted to: ``type`` and/or the types of ``collectionNames`` (a collection
    name, case-insensitive, or an entity type name). None: no restriction; 422 for unknown names."""
    types: set[str] | None = None
    if entity_type:
        et = normalise_entity_type(entity_type)
        known = set(s.scalars(select(EntityType.name).where(EntityType.org_id == org_id)))
        if et not in known and et != SELF_TYPE:  # "self" exists once a key stored something about itself
            raise ValidationFailed(f"unknown entity type {et!r}", details={"known": sorted(known)})
        types = {et}
    if collection_names:
        cols = {name.lower(): et for name, et in s.execute(select(Collection.name, Collection.entity_type).where(
            Collection.org_id == org_id, Collection.archived_at.is_(None)))}
        ets = set(s.scalars(select(EntityType.name).where(EntityType.org_id == org_id)))
        wanted: set[str] = set()
        missing = []
        for name in collection_names:
            key = name.strip().lower()
            if key in cols:
                wanted.add(cols[key])
            elif key in ets:
                wanted.add(key)
            else:
                missing.append(name)
        if missing:
            raise ValidationFailed("unknown collections: " + ", ".join(missing),
                                   details={"unknown": missing, "known": sorted(cols)})
        types = types & wanted if types is not None else wanted
    if types is None:
        return None
    return sorted(types) or [NO_TYPE]


def _item(m: dict[str, Any]) -> dict[str, Any]:
    item = {"memoryId": m["memoryId"], "record_id": m["recordId"], "recordId": m["recordId"], "type": m["type"],
            "text": m["text"],
            "score": round(m["score"], 6), "similarity": round(m["similarity"], 6),
            "timestamp": m["_tsIso"] if "_tsIso" in m else iso(m["ts"]),
            "tags": list(m["tags"]), "speaker": m["speaker"], "topic": m["topic"], "seenCount": m["seenCount"]}
    if m["supersededBy"]:
        item.update({"superseded": True, "supersededBy": m["supersededBy"]})
    if m.get("metadata"):
        item["metadata"] = m["metadata"]
    if m.get("expiresAt"):
        item.update({"expiresAt": iso(m["expiresAt"]), "expired": m["expiresAt"] <= utcnow()})
    if "explain" in m:
        item["explain"] = m["explain"]
    return item


def records_overview(s: Session, record_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Keys and current property values of records (``include_property_values``)."""
    keys = record_keys(s, record_ids)
    types = dict(s.execute(select(Record.id, Record.entity_type).where(Record.id.in_(record_ids))).all())
    props: dict[str, dict[str, Any]] = {rid: {} for rid in record_ids}
    for rid, name, value in s.execute(select(PropertyValue.record_id, PropertyValue.name, PropertyValue.value)
                                      .where(PropertyValue.record_id.in_(record_ids))):
        props[rid][name] = value
    return {rid: {"type": types.get(rid), "keys": keys.get(rid, {}), "properties": props[rid]} for rid in record_ids}
