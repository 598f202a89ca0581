"""Deterministic offline extraction: typed property values from free text, with no LLM.

Used by ``memorize`` when no LLM is configured. Every value is read from the text (never guessed);
its confidence says how direct the reading was: a value next to the property's own words scores high,
one found only through embedding similarity scores low.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

import numpy as np

from memrelay.engine.core.embedder import Embedder, TextVectorCache
from memrelay.engine.core.properties_types import PropertySpec, PropertyType
from memrelay.engine.domain.extraction.catalog import find_technologies
from memrelay.engine.domain.extraction.dates import DateMention, anchor_relative_dates, find_dates
from memrelay.engine.domain.extraction.keywords import (
    PropertyKeywords,
    keyword_score,
    property_keywords,
    stem,
    token_spans,
)
from memrelay.engine.domain.extraction.lexicon import NEGATION_PHRASES, NEGATIONS, STOPWORDS
from memrelay.engine.domain.extraction.patterns import Match, find_emails, find_phones, find_urls
from memrelay.engine.domain.extraction.quantities import Amount, find_amounts
from memrelay.engine.domain.extraction.sentences import split_facts, split_sentences

__all__ = ["ExtractedValue", "anchor_relative_dates", "extract_properties", "split_facts"]

MIN_CONFIDENCE = 0.3
# WordLlama cosine between a sentence and a property text: ~0.6 when they share words, ~0.2 unrelated.
EMBED_RELEVANCE_FLOOR = 0.2
SCHEMA_VECTORS = TextVectorCache()
"""Vectors of property descriptions and option labels, shared by every extraction in the process."""
OPTION_SIM_WITH_KEYWORD, OPTION_MARGIN_WITH_KEYWORD = 0.25, 0.08
OPTION_SIM_ALONE, OPTION_MARGIN_ALONE = 0.40, 0.20  # "health scare" ~ Healthcare is 0.34

_MONEY_WORDS = {
    stem(w)
    for w in (
        "budget price cost value revenue amount arr mrr salary funding spend fee usd dollar eur euro gbp "
        "currency worth deal acv tcv raise raised valuation pay paid invoice income profit"
    ).split()
}
_PERCENT_WORDS = {
    stem(w) for w in "percent percentage rate growth margin churn discount share conversion pct ratio".split()
}
_YEAR_WORDS = {stem(w) for w in "year founded established since incorporated".split()}
_TECH_WORDS = {
    stem(w)
    for w in (
        "technology tech stack tool software platform integration database crm cloud framework language "
        "infrastructure system hosting warehouse"
    ).split()
}
_TECH_SLOTS = {
    "database": "database",
    "db": "database",
    "crm": "crm",
    "cloud": "cloud",
    "hosting": "cloud",
    "framework": "framework",
    "language": "language",
    "warehouse": "data_warehouse",
}
_SOCIAL_HOSTS = ("linkedin.com", "twitter.com", "x.com", "facebook.com", "instagram.com", "github.com")
_CURRENCY_IN_TEXT = {"USD": r"\$|\busd\b|dollars?", "EUR": r"€|\beur\b|euros?", "GBP": r"£|\bgbp\b|pounds?"}
_EXPLICIT_BOOL_RE = re.compile(r"[:=-]\s*(yes|no|true|false|y|n)\b", re.IGNORECASE)
_CUE_VALUE_RE = re.compile(r"^\s*(?P<cue>:|=|is|are|was|were)\s+(?P<value>[^.;!?\n]{1,80})", re.IGNORECASE)
_CUE_LIST_RE = re.compile(
    r"^\s*(?:\w+\s+){0,2}?(?P<cue>:|include[sd]?|including|are|is|such as|like|=)\s+(?P<items>[^.;!?\n]+)",
    re.IGNORECASE,
)
_LIST_SPLIT_RE = re.compile(r"\s*(?:,|;|/|&|\band\b|\bor\b)\s*", re.IGNORECASE)
_CLAUSE_BREAK_RE = re.compile(r"[;,:()]|\bbut\b|\bhowever\b", re.IGNORECASE)
_VALUE_BREAK_RE = re.compile(r"[;,]|\bbut\b|\bwhile\b|\bwhereas\b", re.IGNORECASE)
_FORMER_VALUE_RE = re.compile(r"\b(?:from|previously|formerly)\s+(?:about\s+|around\s+)?$", re.IGNORECASE)
_TO_CUE_RE = re.compile(r"\b(?:to|into|now|became|becomes|is)\s+(?:the\s+|an?\s+)?$", re.IGNORECASE)


@dataclass(frozen=True)
class ExtractedValue:
    """One property value read from text.

    ``value`` is typed: float (number), ISO date string (date), bool (boolean), one of the allowed
    options (options), list[str] (array) or str (text). ``evidence`` is the sentence it came from,
    ``method`` names the rule that read it, ``currency`` is set for money values.
    """

    property_name: str
    value: Any
    confidence: float
    evidence: str
    method: str
    currency: str | None = None


@dataclass
class _Sentence:
    """A sentence with everything the rules look at, computed once."""

    text: str
    tokens: list[tuple[str, int, int]]
    stems: list[str]
    dates: list[DateMention]
    emails: list[Match]
    urls: list[Match]
    phones: list[Match]
    amounts: list[Amount] = field(default_factory=list)
    stem_set: frozenset[str] = frozenset()

    def token_index(self, char_pos: int) -> int:
        return sum(1 for _, start, _ in self.tokens if start < char_pos)


@dataclass(frozen=True)
class _Ctx:
    spec: PropertySpec
    keys: PropertyKeywords
    sent: _Sentence
    index: int
    kw: float  # keyword score 0..1
    emb: float  # embedding relevance 0..0.8
    option_sims: np.ndarray | None  # cosine of this sentence to each allowed option


@dataclass(frozen=True)
class _Candidate:
    prop: str
    value: Any
    confidence: float
    index: int
    position: int
    method: str
    span: tuple[int, int, int] | None = None  # (sentence, start, end) of a value other properties may want
    currency: str | None = None


def extract_properties(
    content: str,
    properties: list[PropertySpec],
    *,
    ts: datetime,
    embedder: Embedder | None = None,
    min_confidence: float = MIN_CONFIDENCE,
) -> list[ExtractedValue]:
    """Read typed values for ``properties`` out of ``content``; at most one result per property.

    Relative dates resolve against ``ts``. With an ``embedder``, sentence/property similarity widens the
    property matching and options can be matched by meaning. A value that several properties could
    take goes to the one whose words match best. Results follow the order of ``properties``.
    """
    sentences = [_analyse(s, ts) for s in split_sentences(content)]
    if not sentences or not properties:
        return []
    relevance, option_sims = _similarities(embedder, sentences, properties)
    candidates: list[_Candidate] = []
    for p, spec in enumerate(properties):
        keys = property_keywords(spec)
        prop_sims = option_sims[p] if option_sims else None
        for i, sent in enumerate(sentences):
            if not _may_yield(spec.type, keys, sent):
                continue
            emb = float(relevance[p, i]) if relevance is not None else 0.0
            sims = prop_sims[i] if prop_sims is not None else None
            ctx = _Ctx(spec, keys, sent, i, keyword_score(sent.text, keys), emb, sims)
            candidates += _HANDLERS[spec.type](ctx)
    kept = [c for c in _assign_contested(candidates) if c.confidence >= min_confidence]
    return [v for spec in properties if (v := _aggregate(spec, kept, sentences)) is not None]


def _may_yield(kind: PropertyType, keys: PropertyKeywords, sent: _Sentence) -> bool:
    """False when the type's handler cannot read anything from ``sent`` (no amount for a number, no day for a
    date, none of the property's name words for a boolean or a cue-read text): skipped without scoring."""
    if kind == PropertyType.NUMBER:
        return bool(sent.amounts)
    if kind == PropertyType.DATE:
        return any(d.granularity == "day" for d in sent.dates)
    if kind == PropertyType.BOOLEAN:
        return bool(sent.stem_set & keys.name)
    if kind == PropertyType.TEXT:
        mode = _text_mode(keys)[0]
        if mode == "email":
            return bool(sent.emails)
        if mode == "url":
            return bool(sent.urls)
        if mode == "phone":
            return bool(sent.phones)
        return bool(sent.stem_set & keys.name)
    return True


# --- sentence analysis ---------------------------------------------------------------------------------


def _analyse(text: str, ts: datetime) -> _Sentence:
    tokens = token_spans(text)
    sent = _Sentence(
        text=text,
        tokens=tokens,
        stems=[stem(t) for t, _, _ in tokens],
        dates=find_dates(text, ts),
        emails=find_emails(text),
        urls=find_urls(text),
        phones=find_phones(text),
    )
    sent.stem_set = frozenset(sent.stems)
    sent.urls = [
        u for u in sent.urls if not _overlaps(u.start, u.end, [(e.start, e.end) for e in sent.emails])
    ]
    found: list[DateMention | Match] = [*sent.dates, *sent.emails, *sent.urls, *sent.phones]
    taken = [(m.start, m.end) for m in found]
    sent.amounts = [a for a in find_amounts(text) if not _overlaps(a.start, a.end, taken)]
    return sent


def _overlaps(start: int, end: int, spans: list[tuple[int, int]]) -> bool:
    return any(start < e and s < end for s, e in spans)


def _similarities(
    embedder: Embedder | None, sentences: list[_Sentence], properties: list[PropertySpec]
) -> tuple[np.ndarray | None, list[np.ndarray | None] | None]:
    """Embedding relevance (property x sentence) and per-property (sentence x option) cosines."""
    if embedder is None:
        return None, None
    prop_texts = [_property_text(spec) for spec in properties]
    options = [list(spec.options or []) if spec.type == PropertyType.OPTIONS else [] for spec in properties]
    flat_options = [o for opts in options for o in opts]
    sent_vecs = embedder.embed([s.text for s in sentences])
    schema_vecs = SCHEMA_VECTORS.embed(embedder, prop_texts + flat_options)  # constant per schema: cached
    p = len(properties)
    prop_vecs, opt_vecs = schema_vecs[:p], schema_vecs[p:]
    cos = prop_vecs @ sent_vecs.T
    relevance = np.clip((cos - EMBED_RELEVANCE_FLOOR) / 0.5, 0.0, 0.8)
    per_prop: list[np.ndarray | None] = []
    offset = 0
    for opts in options:
        per_prop.append(sent_vecs @ opt_vecs[offset : offset + len(opts)].T if opts else None)
        offset += len(opts)
    return relevance, per_prop


def _property_text(spec: PropertySpec) -> str:
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", spec.propertyName).replace("_", " ").replace("-", " ")
    return f"{name}: {spec.description}" if spec.description else name


# --- confidence helpers ---------------------------------------------------------------------------------


def _keyword_distance(ctx: _Ctx, char_pos: int) -> int | None:
    """Words between the value and the nearest property word; a word after the value counts one
    more, a clause break (',', ';', 'but') in between five more ("Budget: $5k" is direct)."""
    sent = ctx.sent
    positions = [i for i, s in enumerate(sent.stems) if s in ctx.keys.all]
    if not positions:
        return None
    at = sent.token_index(char_pos)

    def distance(p: int) -> int:
        lo, hi = sorted((p, at))
        between = sent.text[sent.tokens[lo][2] : sent.tokens[hi][1]] if hi < len(sent.tokens) else ""
        return abs(at - p) + (1 if p > at else 0) + (5 if _VALUE_BREAK_RE.search(between) else 0)

    return min(distance(p) for p in positions)


def _located_confidence(ctx: _Ctx, char_pos: int, n_candidates: int) -> float | None:
    """Confidence for a value at ``char_pos``: by distance to the property's words, else by embedding."""
    distance = _keyword_distance(ctx, char_pos)
    if ctx.kw > 0 and distance is not None:
        proximity = max(0.5, 1.0 - 0.05 * (distance - 1))
        return 0.55 + 0.35 * proximity * ctx.kw
    if ctx.emb >= 0.3 and n_candidates == 1:
        return 0.3 + 0.3 * ctx.emb
    return None


def _negated_near(sent: _Sentence, start_token: int, end_token: int, before: int = 5, after: int = 3) -> bool:
    """A negation within a few words of the given tokens, without crossing a clause boundary."""
    if not sent.tokens:
        return False
    lo = max(0, start_token - before)
    while lo < start_token and _CLAUSE_BREAK_RE.search(
        sent.text[sent.tokens[lo][2] : sent.tokens[start_token][1]]
    ):
        lo += 1
    hi = min(len(sent.tokens), end_token + 1 + after)
    while hi > end_token + 1 and _CLAUSE_BREAK_RE.search(
        sent.text[sent.tokens[end_token][2] : sent.tokens[hi - 1][1]]
    ):
        hi -= 1
    if any(t in NEGATIONS or t.endswith("n't") for t, _, _ in sent.tokens[lo:hi]):
        return True
    prefix = sent.text[sent.tokens[lo][1] : sent.tokens[start_token][1]].lower()
    return any(phrase in prefix for phrase in NEGATION_PHRASES)


def _token_range(sent: _Sentence, start: int, end: int) -> tuple[int, int]:
    first = sent.token_index(start)
    return first, max(first, sent.token_index(end) - 1)


def _has_words(keys: PropertyKeywords, words: set[str]) -> bool:
    return bool(keys.all & words)


# --- type handlers ----------------------------------------------------------------------------------------


def _number(ctx: _Ctx) -> list[_Candidate]:
    money = _has_words(ctx.keys, _MONEY_WORDS)
    percent = _has_words(ctx.keys, _PERCENT_WORDS)
    yearish = _has_words(ctx.keys, _YEAR_WORDS)
    wanted_currency = _currency_of(ctx.spec.description)
    usable = [
        a
        for a in ctx.sent.amounts
        if a.percent == percent and (money or not a.is_money) and (yearish or not _looks_like_year(a))
    ]
    out = []
    for a in usable:
        conf = _located_confidence(ctx, a.start, len(usable))
        if conf is None:
            continue
        if money and not a.is_money:
            conf -= 0.1
        if _FORMER_VALUE_RE.search(ctx.sent.text[: a.start]):
            conf -= 0.2  # "grew from 200 to 250": 200 is the old value
        if wanted_currency and a.currency and a.currency != wanted_currency:
            conf *= 0.7
        method = "money" if a.is_money else "percent" if a.percent else "number"
        out.append(
            _Candidate(
                ctx.spec.propertyName,
                float(a.value),
                conf,
                ctx.index,
                a.start,
                method,
                (ctx.index, a.start, a.end),
                a.currency,
            )
        )
    return out


def _looks_like_year(a: Amount) -> bool:
    return not (a.is_money or a.percent or a.magnitude) and a.value.is_integer() and 1900 <= a.value <= 2100


def _currency_of(text: str) -> str | None:
    for code, pattern in _CURRENCY_IN_TEXT.items():
        if re.search(pattern, text, re.IGNORECASE):
            return code
    return None


def _date(ctx: _Ctx) -> list[_Candidate]:
    days = [d for d in ctx.sent.dates if d.granularity == "day"]
    out = []
    for d in days:
        conf = _located_confidence(ctx, d.start, len(days))
        if conf is not None:
            conf -= 0.05 if d.relative else 0.0
            out.append(
                _Candidate(
                    ctx.spec.propertyName,
                    d.iso,
                    conf,
                    ctx.index,
                    d.start,
                    "relative_date" if d.relative else "date",
                    (ctx.index, d.start, d.end),
                )
            )
    return out


def _boolean(ctx: _Ctx) -> list[_Candidate]:
    sent = ctx.sent
    if sent.text.rstrip().endswith("?") or not ctx.keys.groups:
        return []
    hits = [i for i, s in enumerate(sent.stems) if s in ctx.keys.name]
    if not hits or not all(any(sent.stems[i] in group for i in hits) for group in ctx.keys.groups):
        return []  # every word of the property's name (or a synonym) must occur
    explicit = _EXPLICIT_BOOL_RE.search(sent.text)
    if explicit:
        value, conf, method = explicit.group(1).lower() in ("yes", "true", "y"), 0.9, "explicit_boolean"
    elif _negated_near(sent, hits[0], hits[-1]):
        value, conf, method = False, 0.8, "negation"
    else:
        value, conf, method = True, 0.75, "affirmation"
    return [_Candidate(ctx.spec.propertyName, value, conf, ctx.index, sent.tokens[hits[0]][1], method)]


def _option_matches(sent: _Sentence, options: list[str]) -> list[tuple[str, int, int]]:
    found = []
    low = sent.text.lower()
    for option in options:
        pattern = _option_pattern(option)
        if pattern is None or _option_head(option) not in low:
            continue
        for m in pattern.finditer(sent.text):
            if not _negated_near(sent, *_token_range(sent, m.start(), m.end()), after=0):
                found.append((option, m.start(), m.end()))
    return sorted(found, key=lambda x: x[1])


@lru_cache(maxsize=4096)
def _option_pattern(option: str) -> re.Pattern[str] | None:
    parts = [re.escape(p) for p in re.split(r"[\s_-]+", option.strip()) if p]
    if not parts:
        return None
    return re.compile(r"(?<![\w])" + r"[\s_-]+".join(parts) + r"(?![\w])", re.IGNORECASE)


@lru_cache(maxsize=4096)
def _option_head(option: str) -> str:
    """The option's first word, lower-cased: a cheap test before the regex."""
    return (re.split(r"[\s_-]+", option.strip().lower()) or [""])[0]


@lru_cache(maxsize=4096)
def _option_stems(option: str) -> tuple[str, ...]:
    return tuple(stem(w) for w in re.split(r"[\s_-]+", option.strip()) if w)


@lru_cache(maxsize=1024)
def _option_stem_sets(options: tuple[str, ...]) -> tuple[tuple[str, frozenset[str]], ...]:
    """Each option with the set of its word stems (options without words are left out), once per schema."""
    return tuple((o, frozenset(_option_stems(o))) for o in options if _option_stems(o))


def _option_stem_matches(sent: _Sentence, options: list[str]) -> list[tuple[str, int, int]]:
    """Options whose every word occurs in the sentence in another form ("manufacture" ~ "Manufacturing")."""
    out = []
    stems = sent.stem_set
    for option, wanted_set in _option_stem_sets(tuple(options)):
        if not wanted_set <= stems:
            continue
        wanted = _option_stems(option)
        positions = [sent.stems.index(w) for w in wanted if w in sent.stems]
        if wanted and len(positions) == len(wanted):
            first, last = min(positions), max(positions)
            if not _negated_near(sent, first, last, after=0):
                out.append((option, sent.tokens[first][1], sent.tokens[last][2]))
    return out


def _options(ctx: _Ctx) -> list[_Candidate]:
    options = list(ctx.spec.options or [])
    matches = _option_matches(ctx.sent, options)
    name = ctx.spec.propertyName
    if matches:
        targeted = [m for m in matches if _TO_CUE_RE.search(ctx.sent.text[: m[1]])]
        option, start, _ = (targeted or matches)[-1]
        conf = 0.9 if ctx.kw > 0 else 0.65
        if len({m[0] for m in matches}) > 1 and not targeted:
            conf -= 0.15
        return [_Candidate(name, option, conf, ctx.index, start, "option")]
    stemmed = _option_stem_matches(ctx.sent, options)
    if len(stemmed) == 1:
        return [
            _Candidate(
                name, stemmed[0][0], 0.8 if ctx.kw > 0 else 0.6, ctx.index, stemmed[0][1], "option_stem"
            )
        ]
    if ctx.option_sims is None or len(options) < 2:
        return []
    order = np.argsort(ctx.option_sims)[::-1]
    best, second = float(ctx.option_sims[order[0]]), float(ctx.option_sims[order[1]])
    if ctx.kw > 0 and best >= OPTION_SIM_WITH_KEYWORD and best - second >= OPTION_MARGIN_WITH_KEYWORD:
        conf = min(0.7, 0.45 + 0.5 * best)
    elif best >= OPTION_SIM_ALONE and best - second >= OPTION_MARGIN_ALONE:
        conf = min(0.55, 0.3 + 0.5 * best)
    else:
        return []
    return [_Candidate(name, options[int(order[0])], conf, ctx.index, 0, "option_similarity")]


def _array(ctx: _Ctx) -> list[_Candidate]:
    name, sent = ctx.spec.propertyName, ctx.sent
    found: list[tuple[str, int, float, str]] = []  # (value, position, confidence, method)
    if ctx.spec.options:
        found += [
            (o, s, 0.85 if ctx.kw > 0 else 0.65, "option")
            for o, s, _ in _option_matches(sent, ctx.spec.options)
        ]
    elif _has_words(ctx.keys, _TECH_WORDS):
        slots = {slot for word, slot in _TECH_SLOTS.items() if stem(word) in ctx.keys.all}
        found += [
            (m.name, m.start, 0.85 if ctx.kw > 0 else 0.65, "catalog")
            for m in find_technologies(sent.text)
            if (not slots or m.group in slots)
            and not _negated_near(sent, *_token_range(sent, m.start, m.end), after=0)
        ]
    if ctx.kw > 0 and not ctx.spec.options:
        found += [(item, pos, 0.7, "listed") for item, pos in _cue_list(ctx)]
    kept: dict[str, _Candidate] = {}
    for value, pos, conf, method in sorted(found, key=lambda f: f[1]):
        kept.setdefault(value.casefold(), _Candidate(name, value, conf, ctx.index, pos, method))
    return list(kept.values())


def _cue_list(ctx: _Ctx) -> list[tuple[str, int]]:
    """Items after the property's word and a cue: "Competitors: Gong, Chorus and Clari"."""
    sent = ctx.sent
    for i, s in enumerate(sent.stems):
        if s not in ctx.keys.name:
            continue
        rest_at = sent.tokens[i][2]
        m = _CUE_LIST_RE.match(sent.text[rest_at:])
        if not m:
            continue
        items, cursor = [], rest_at + m.start("items")
        for piece in _LIST_SPLIT_RE.split(m.group("items")):
            at = sent.text.index(piece, cursor)
            cursor = at + len(piece)
            item = piece.strip().strip("\"'()").removesuffix(" etc").strip()
            words = item.split()
            if (
                words
                and len(words) <= 5
                and item.lower() != "etc"
                and any(w.lower() not in STOPWORDS for w in words)
            ):
                canonical = [t.name for t in find_technologies(item)]
                items.append((canonical[0] if len(canonical) == 1 else item, at))
        if items:
            return items
    return []


@lru_cache(maxsize=4096)
def _text_mode(keys: PropertyKeywords) -> tuple[str, tuple[str, ...]]:
    """What a text property holds, decided once per property: ('email'|'url'|'phone'|'cue', social hosts)."""
    if keys.mentions("email", "e-mail"):
        return "email", ()
    if keys.mentions("website", "url", "domain", "homepage", "linkedin", "twitter"):
        return "url", tuple(h for h in _SOCIAL_HOSTS if keys.mentions(h.split(".")[0]))
    if keys.mentions("phone", "mobile", "telephone"):
        return "phone", ()
    return "cue", ()


def _text(ctx: _Ctx) -> list[_Candidate]:
    keys, sent, name = ctx.keys, ctx.sent, ctx.spec.propertyName
    mode, social = _text_mode(keys)
    if mode == "email":
        return _pattern_candidates(ctx, sent.emails, "email", 0.95, 0.8) if sent.emails else []
    if mode == "url":
        if not sent.urls:
            return []
        urls = [
            u
            for u in sent.urls
            if any(h in u.value for h in social) == bool(social)
            and (social or not any(h in u.value for h in _SOCIAL_HOSTS))
        ]
        return _pattern_candidates(ctx, urls, "url", 0.9, 0.75)
    if mode == "phone":
        return _pattern_candidates(ctx, sent.phones, "phone", 0.9, 0.7) if sent.phones else []
    if ctx.kw < 1.0:
        return []
    for i, s in enumerate(sent.stems):
        if s in keys.name:
            m = _CUE_VALUE_RE.match(sent.text[sent.tokens[i][2] :])
            if m:
                value = m.group("value").strip().strip("\"'").rstrip(",")
                if _plausible_value(value, explicit=m.group("cue") in (":", "=")):
                    conf = 0.7 if m.group("cue") in (":", "=") else 0.55
                    return [_Candidate(name, value, conf, ctx.index, sent.tokens[i][1], "cue")]
    return []


def _plausible_value(value: str, *, explicit: bool) -> bool:
    """After ':'/'=' anything with a content word; after 'is'/'are' not a verb or adverb phrase."""
    words = value.split()
    if not words or all(w.lower() in STOPWORDS for w in words):
        return False
    first = words[0].lower()
    return explicit or not (first in STOPWORDS or first.endswith(("ing", "ly", "ed")))


def _pattern_candidates(
    ctx: _Ctx, matches: list[Match], method: str, direct: float, alone: float
) -> list[_Candidate]:
    out = []
    for m in matches:
        conf = direct if ctx.kw > 0 or len(matches) == 1 else alone
        out.append(
            _Candidate(
                ctx.spec.propertyName, m.value, conf, ctx.index, m.start, method, (ctx.index, m.start, m.end)
            )
        )
    return out


_HANDLERS: dict[PropertyType, Callable[[_Ctx], list[_Candidate]]] = {
    PropertyType.NUMBER: _number,
    PropertyType.DATE: _date,
    PropertyType.BOOLEAN: _boolean,
    PropertyType.OPTIONS: _options,
    PropertyType.ARRAY: _array,
    PropertyType.TEXT: _text,
}


# --- resolution -------------------------------------------------------------------------------------------


def _assign_contested(candidates: list[_Candidate]) -> list[_Candidate]:
    """A value span claimed by several properties stays only with the best-matching one(s)."""
    best: dict[tuple[int, int, int], float] = {}
    for c in candidates:
        if c.span is not None:
            best[c.span] = max(best.get(c.span, 0.0), c.confidence)
    return [c for c in candidates if c.span is None or c.confidence >= best[c.span] - 1e-9]


def _unique_casefold(values: Iterable[str]) -> list[str]:
    """Values in first-seen order, dropping later case-insensitive repeats."""
    seen: dict[str, str] = {}
    for value in values:
        seen.setdefault(value.casefold(), value)
    return list(seen.values())


def _aggregate(
    spec: PropertySpec, candidates: list[_Candidate], sentences: list[_Sentence]
) -> ExtractedValue | None:
    mine = [c for c in candidates if c.prop == spec.propertyName]
    if not mine:
        return None
    if spec.type == PropertyType.ARRAY:
        mine.sort(key=lambda c: (c.index, c.position))
        values = _unique_casefold(c.value for c in mine)
        evidence = " ".join(dict.fromkeys(sentences[c.index].text for c in mine))
        methods = ",".join(dict.fromkeys(c.method for c in mine))
        return ExtractedValue(
            spec.propertyName, values, round(max(c.confidence for c in mine), 2), evidence, methods
        )
    # Best confidence; on a tie the later sentence (a note's later word wins), then the earlier mention.
    top = max(mine, key=lambda c: (round(c.confidence, 6), c.index, -c.position))
    return ExtractedValue(
        spec.propertyName,
        top.value,
        round(min(top.confidence, 1.0), 2),
        sentences[top.index].text,
        top.method,
        top.currency,
    )
