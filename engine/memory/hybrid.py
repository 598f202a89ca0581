"""The keyword half of hybrid recall: how much of the query's vocabulary a memory contains.

``keyword_scores(query, texts)`` is BM25's idea without its length normalisation (memories are one
sentence): each stemmed, non-stopword query term weighs its inverse document frequency over the candidate
set, ``idf = ln(1 + (N - n + 0.5) / (n + 0.5))``, and a memory scores the idf-weighted share of the query
terms it contains, in [0, 1] — 1.0 when every query term occurs. Terms every candidate shares (the
entity's own name in a scoped recall) weigh little; a rare exact term ("SOC 2", "Snowflake", an invoice
number) lifts the memory that has it. A hyphenated word also counts as its parts ("day-to-day owner" matches
"who owns it day to day"), and a caller may add terms that are not words (recall's answer kinds, "=when").
"""

from __future__ import annotations

import math
from collections import Counter
from functools import lru_cache
from itertools import chain

import numpy as np

from memrelay.engine.domain.extraction.keywords import content_stems, stem
from memrelay.engine.domain.extraction.lexicon import STOPWORDS


def keyword_scores(query: str, texts: list[str]) -> np.ndarray:
    """IDF-weighted coverage of the query's terms by each text (0 for texts sharing none)."""
    return keyword_coverage(query, [terms_of(t) for t in texts])


def terms_of(text: str) -> frozenset[str]:
    """The keyword terms of a text: its content stems, and the parts of hyphenated ones ("day-to-day owner" also
    has "day" and "owner")."""
    stems = content_stems(text)
    parts = [stem(p) for s in stems if "-" in s for p in s.split("-") if len(p) > 2 and p not in STOPWORDS]
    return frozenset(stems).union(parts)


@lru_cache(maxsize=4096)
def query_terms(query: str) -> frozenset[str]:
    """:func:`terms_of` a question, kept per text: a question asked of many records is analysed once."""
    return terms_of(query)


def idf_of(holding: int, n_docs: int) -> float:
    """A term's weight when ``holding`` of ``n_docs`` candidates contain it: ``ln(1 + (N - n + 0.5) / (n + 0.5))``."""
    return math.log(1.0 + (n_docs - holding + 0.5) / (holding + 0.5))


def keyword_coverage(
    query: str, docs: list[frozenset[str]], extra_terms: frozenset[str] = frozenset()
) -> np.ndarray:
    """:func:`keyword_scores` over texts already reduced to their terms (:func:`terms_of`); ``extra_terms`` are
    query terms beyond its words (recall's answer kinds, "=when"), matched like words."""
    terms = set(query_terms(query)) | extra_terms
    out = np.zeros(len(docs), dtype=np.float64)
    if not terms or not docs:
        return out
    common = [d & terms for d in docs]
    df = Counter(chain.from_iterable(common))
    n_docs = len(docs)
    idf = {term: idf_of(df[term], n_docs) for term in terms}
    total = sum(idf.values())
    if total <= 0:
        return out
    return np.array([sum(idf[term] for term in c) / total if c else 0.0 for c in common], dtype=np.float64)
