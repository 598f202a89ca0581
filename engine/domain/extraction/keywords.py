"""Keyword matching between a property (name + description) and a sentence."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property, lru_cache

from memrelay.engine.core.properties_types import PropertySpec
from memrelay.engine.domain.extraction.lexicon import STOPWORDS, SYNONYMS

_TOKEN_RE = re.compile(r"[a-z0-9]+(?:[.'’-][a-z0-9]+)*", re.IGNORECASE)
_CAMEL_RE = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


_IRREGULAR = {
    "used": "use",
    "using": "use",
    "uses": "use",
    "based": "base",
    "basing": "base",
    "hired": "hire",
    "hiring": "hire",
    "hires": "hire",
    "news": "news",
    "series": "series",
}


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A deliberately small suffix stripper: 'employees'->'employe', 'renewal'/'renews'->'renew'.

    Both sides of every comparison go through it, so only consistency matters, not real roots.
    """
    w = word.lower()
    if w in _IRREGULAR:
        return _IRREGULAR[w]
    if len(w) <= 3:
        return w
    if w.endswith("ies") and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith(("sses", "xes", "ches", "shes")):
        w = w[:-2]
    elif w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    for suffix in ("ing", "ed", "al"):
        if w.endswith(suffix) and len(w) - len(suffix) >= 4:
            w = w[: -len(suffix)]
            if suffix != "al" and w[-1] == w[-2] and w[-1] not in "aeiouls":
                w = w[:-1]  # planned -> plan
            break
    if len(w) >= 5 and w.endswith("e"):
        w = w[:-1]
    return w


_STEMMED_SYNONYMS = {stem(k): frozenset(stem(s) for s in v) for k, v in SYNONYMS.items()}


def tokens(text: str) -> list[str]:
    """Lower-case word tokens (keeps 'node.js', "don't", 'e-mail')."""
    return [t.lower() for t in _TOKEN_RE.findall(text)]


def token_spans(text: str) -> list[tuple[str, int, int]]:
    """Lower-case tokens with their character spans in ``text``."""
    return [(m.group(0).lower(), m.start(), m.end()) for m in _TOKEN_RE.finditer(text)]


def content_stems(text: str) -> list[str]:
    """Stems of the non-stopword tokens of ``text``, in order."""
    return list(_content_stems(text))


@lru_cache(maxsize=8192)
def _content_stems(text: str) -> tuple[str, ...]:
    return tuple(stem(t) for t in tokens(text) if t not in STOPWORDS)


@dataclass(frozen=True)
class PropertyKeywords:
    """Stemmed keywords of a property: from its name (strong) and its description (weak).

    ``groups`` holds one set per word of the name: the word's stem and its synonyms' stems.
    """

    name: frozenset[str]
    description: frozenset[str]
    groups: tuple[frozenset[str], ...]

    @cached_property
    def all(self) -> frozenset[str]:
        """Name and description keywords (computed once: extraction asks for every sentence)."""
        return self.name | self.description

    def mentions(self, *words: str) -> bool:
        """True if any of ``words`` (stemmed) is among the keywords."""
        keys = self.all
        return any(stem(w) in keys for w in words)


def property_keywords(spec: PropertySpec) -> PropertyKeywords:
    """Keywords for a property: split name (snake/camel/kebab), description words, a few synonyms."""
    return _property_keywords(spec.propertyName, spec.description or "")


@lru_cache(maxsize=4096)
def _property_keywords(property_name: str, description: str) -> PropertyKeywords:
    name_words = _CAMEL_RE.sub(" ", property_name).replace("_", " ").replace("-", " ")
    groups = tuple(dict.fromkeys(_with_synonyms(w) for w in content_stems(name_words)))
    name = frozenset().union(*groups)
    described = frozenset().union(*(_with_synonyms(w) for w in content_stems(description)))
    return PropertyKeywords(name, described - name, groups)


def _with_synonyms(word_stem: str) -> frozenset[str]:
    return frozenset({word_stem, *_STEMMED_SYNONYMS.get(word_stem, ())})


def keyword_positions(sentence_tokens: list[str], keywords: frozenset[str]) -> list[int]:
    """Indexes of the tokens whose stem is a keyword."""
    return [i for i, t in enumerate(sentence_tokens) if stem(t) in keywords]


def keyword_score(sentence: str, keys: PropertyKeywords) -> float:
    """0..1: 1.0 when a name keyword occurs, 0.6 for description keywords only, else 0."""
    stems = _stem_set(sentence)
    if stems & keys.name:
        return 1.0
    hits = len(stems & keys.description)
    return 0.0 if not hits else min(0.6, 0.35 + 0.15 * hits)


@lru_cache(maxsize=8192)
def _stem_set(text: str) -> frozenset[str]:
    return frozenset(_content_stems(text))
