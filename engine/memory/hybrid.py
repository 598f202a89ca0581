"""The keyword half of hybrid recall: how much of the query's vocabulary a memory contains.

``keyword_scores(query, texts)`` is BM25's idea without its length normalisation (memories are one
sentence): each stemmed, non-stopword query term weighs its inverse document frequency over the candidate
set, ``idf = ln(1 + (N - n + 0.5) / (n + 0.5))``, and a memory scores the idf-weighted share of the query
terms it contains, in [0, 1] — 1.0 when every query term occurs. Terms every candidate shares (the
entity's own name in a scoped recall) weigh little; a rare exact term ("SOC 2", "Snowflake", an invoice
number) lifts the memory that has it.
"""

from __future__ import annotations

import math

import numpy as np

from memrelay.engine.domain.extraction.keywords import content_stems


def keyword_scores(query: str, texts: list[str]) -> np.ndarray:
    """IDF-weighted coverage of the query's terms by each text (0 for texts sharing none)."""
    return keyword_coverage(query, [frozenset(content_stems(t)) for t in texts])


def keyword_coverage(query: str, docs: list[frozenset[str]]) -> np.ndarray:
    """:func:`keyword_scores` over texts already reduced to their stems."""
    terms = set(content_stems(query))
    out = np.zeros(len(docs), dtype=np.float64)
    if not terms or not docs:
        return out
    common = [d & terms for d in docs]
    df: dict[str, int] = dict.fromkeys(terms, 0)
    for c in common:
        for term in c:
            df[term] += 1
    n_docs = len(docs)
    idf = {term: math.log(1.0 + (n_docs - n + 0.5) / (n + 0.5)) for term, n in df.items()}
    total = sum(idf.values())
    if total <= 0:
        return out
    for i, c in enumerate(common):
        if c:
            out[i] = sum(idf[term] for term in c) / total
    return out
