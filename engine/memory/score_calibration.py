"""Calibrated recall scores: raw cosine mapped, per embedder, to a relevance in [0, 1].

Raw cosine means different things for different embedders (on the calibration set a relevant fact's median
cosine is 0.21 with WordLlama and 0.29 with MiniLM; unrelated facts reach 0.18 and 0.24 at their 90th
percentile), so a fixed ``minScore`` cannot mean the same thing for both. Each embedder gets a monotone
piecewise-linear curve through anchors read off a calibration set of relevant and unrelated query/fact
pairs (``bench/datasets/calibration/pairs.json``, fitted by ``bench/calibrate_scores.py --write``). The signal
calibrated is the one recall ranks by: the cosine plus ``recall.KEYWORD_WEIGHT`` x the keyword match.

=============================================  ==========
signal of                                      maps to
=============================================  ==========
unrelated pairs, 5th percentile                0.0
unrelated pairs, median                        0.1
unrelated pairs, 75th percentile               0.3   (Personize's "broad" minScore: drops 3 in 4 unrelated)
unrelated pairs, 95th percentile               0.5   ("precise" 0.5+: drops 19 in 20 unrelated)
relevant pairs, 75th percentile                0.8
1 + keyword weight (the top signal)            1.0
=============================================  ==========

So a threshold is a false-positive rate, the same for every embedder; how many relevant hits it keeps is
what the embedder is worth (the bench prints both). "Unrelated" percentiles average the same entity's
other facts (the hard negatives of a scoped recall) and other entities' facts. The anchors are data
(``score_calibration.json`` next to this module).

An embedder without a fitted curve (e.g. an API model) keeps its raw cosine clipped to [0, 1]
(``Calibration.fitted`` is False and ``explain`` says so).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

CURVES_FILE = Path(__file__).with_name("score_calibration.json")
# (which distribution, percentile, calibrated score) of each anchor; the last anchor is (cosine 1.0, 1.0)
ANCHORS: tuple[tuple[str, float, float], ...] = (
    ("unrelated", 5, 0.0), ("unrelated", 50, 0.1), ("unrelated", 75, 0.3), ("unrelated", 95, 0.5),
    ("relevant", 75, 0.8))


@dataclass(frozen=True)
class Calibration:
    """One embedder's cosine → relevance map (``xs`` cosines, ``ys`` scores, both increasing)."""

    embedder: str
    xs: tuple[float, ...]
    ys: tuple[float, ...]
    fitted: bool = True

    def __call__(self, cosine: np.ndarray | float) -> np.ndarray:
        cos = np.asarray(cosine, dtype=np.float64)
        if not self.fitted:
            return np.clip(cos, 0.0, 1.0)
        return np.interp(cos, self.xs, self.ys, left=0.0, right=1.0)

    def cosine_for(self, relevance: float) -> float:
        """The raw cosine that maps to ``relevance`` (the curve's inverse)."""
        if not self.fitted:
            return relevance
        return float(np.interp(relevance, self.ys, self.xs))


@lru_cache(maxsize=1)
def _curves() -> dict[str, dict[str, list[float]]]:
    if not CURVES_FILE.exists():
        return {}
    return dict(json.loads(CURVES_FILE.read_text()).get("curves", {}))


def calibration_for(embedder_name: str) -> Calibration:
    """The fitted curve of an embedder (by its stored name, e.g. ``wordllama:l2_supercat_256``); the raw
    cosine (clipped) when none is fitted."""
    curve = _curves().get(embedder_name)
    if curve is None:
        return Calibration(embedder_name, (0.0, 1.0), (0.0, 1.0), fitted=False)
    return Calibration(embedder_name, tuple(curve["cosine"]), tuple(curve["score"]))


def fit_anchors(relevant: np.ndarray, same_entity: np.ndarray, other: np.ndarray, *,
                top: float = 1.0) -> tuple[list[float], list[float]]:
    """Anchor signals and scores (see ANCHORS) from signal samples, forced strictly increasing; ``top`` (the
    highest signal possible) maps to 1.0."""
    xs: list[float] = []
    ys: list[float] = []
    for kind, pct, score in ANCHORS:
        if kind == "relevant":
            x = float(np.percentile(relevant, pct))
        else:  # the same entity's other facts and other entities' facts count equally
            x = (float(np.percentile(same_entity, pct)) + float(np.percentile(other, pct))) / 2
        if xs and x <= xs[-1]:
            x = xs[-1] + 1e-3
        xs.append(round(x, 5))
        ys.append(score)
    xs.append(max(top, xs[-1] + 1e-3))
    ys.append(1.0)
    return xs, ys
