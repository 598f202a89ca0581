"""Sentence units of a guideline for routing: the sentences of each section, and per-guideline reductions of a
score over them (best, mean of the best two).

A guideline section is a few paragraphs on one sub-topic; a task usually meets one or two of its sentences. Scoring
the task against each sentence (its heading in front, so the sub-topic weighs in every sentence) and keeping the
mean of the two best sentences per guideline asks for evidence in more than one place: one sentence that shares two
common words with the task by coincidence ("a next meeting is booked") weighs half as much as it would alone.
"""

from __future__ import annotations

import re

import numpy as np

_PARAGRAPH_RE = re.compile(r"\n\s*\n")
_SENTENCE_RE = re.compile(r"(?<=[.!?;:])\s+(?=[A-Z\"'(])")
_HEADING_LINE_RE = re.compile(r"^\s*#{1,6}\s")
TOP_K = 2  # sentences averaged per guideline


def split_sentences(markdown: str) -> list[str]:
    """The sentences of a section's markdown (heading lines left out; hard-wrapped lines joined)."""
    out: list[str] = []
    for paragraph in _PARAGRAPH_RE.split(markdown):
        text = " ".join(line.strip() for line in paragraph.splitlines() if not _HEADING_LINE_RE.match(line))
        out += [s.strip() for s in _SENTENCE_RE.split(text) if s.strip()]
    return out


def sentence_text(heading: str, sentence: str) -> str:
    """What is embedded for one sentence: its section heading in front of it."""
    return f"{heading}: {sentence}" if heading else sentence


def top_k_mean(values: np.ndarray, offsets: np.ndarray, k: int = TOP_K) -> np.ndarray:
    """Per group (rows ``offsets[i]`` up to the next offset, every group non-empty), the mean of its ``k`` largest
    values (of all of them when it has fewer)."""
    n = len(values)
    sizes = np.diff(np.append(offsets, n))
    group = np.repeat(np.arange(len(offsets)), sizes)
    ranked = values[np.lexsort((-values, group))]  # groups stay in place, each sorted best first
    total = np.zeros(len(offsets))
    for j in range(k):
        take = sizes > j
        total[take] += ranked[offsets[take] + j]
    return total / np.minimum(sizes, k)
