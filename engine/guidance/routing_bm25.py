"""BM25 over the units of an org's guidelines (sections, or their sentences) for routing."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

BM25_K1, BM25_B = 1.2, 0.75
MIN_IDF_DOCS = 10  # a small org's corpus counts as this many documents (the rest without the word), so that
#                    the one guideline of a new org does not make its own words look common


def idf(n_docs: int, n_with: int) -> float:
    """BM25's idf of a word ``n_with`` of ``n_docs`` documents have (``n_docs`` at least MIN_IDF_DOCS)."""
    n_docs = max(n_docs, MIN_IDF_DOCS)
    return math.log(1.0 + (n_docs - n_with + 0.5) / (n_with + 0.5))


@dataclass(frozen=True)
class Bm25:
    """An inverted index of units (rows) of stemmed words, scoring a bag of words against every row."""

    postings: dict[str, list[tuple[int, int]]]  # word -> [(row, term frequency)]
    idf: dict[str, float]
    norm: np.ndarray  # BM25 length normalisation of each row
    n_rows: int

    @classmethod
    def build(cls, rows: list[Counter[str]]) -> Bm25:
        postings: dict[str, list[tuple[int, int]]] = {}
        for row, terms in enumerate(rows):
            for word, tf in terms.items():
                postings.setdefault(word, []).append((row, tf))
        lengths = [sum(t.values()) for t in rows]
        avg = max(sum(lengths) / len(rows), 1e-9) if rows else 1.0
        return cls(
            postings,
            {w: idf(len(rows), len(p)) for w, p in postings.items()},
            np.array([BM25_K1 * (1 - BM25_B + BM25_B * n / avg) for n in lengths]),
            len(rows),
        )

    def scores(self, words: list[str]) -> np.ndarray:
        """BM25 of ``words`` (distinct, stemmed) in every row."""
        out = np.zeros(self.n_rows)
        for word in words:
            weight = self.idf.get(word)
            if weight is None:
                continue
            for row, tf in self.postings[word]:
                out[row] += weight * tf * (BM25_K1 + 1) / (tf + self.norm[row])
        return out
