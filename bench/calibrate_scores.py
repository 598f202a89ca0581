"""Fit and report the per-embedder score calibration of smart recall.

Reads bench/datasets/calibration/pairs.json (relevant query/fact pairs; unrelated pairs = a query with the
facts of other topics, the same entity's other facts being the hard negatives of a scoped recall) and, for
each embedder installed (WordLlama always; MiniLM after ``make install-minilm``):

* raw cosine percentiles of relevant vs unrelated pairs,
* the fitted anchor curve (engine/memory/score_calibration.py) over the signal recall calibrates, cosine plus
  KEYWORD_WEIGHT x keyword match (fitted on every other query, the rest held out),
* calibrated-score percentiles and what the documented thresholds keep/drop on the held-out half:
  relevant kept and unrelated (same entity / other entities) dropped at ``minScore`` 0.3 and 0.5, for the raw
  cosine (the old score), the calibrated cosine alone and the calibrated hybrid (what recall returns, before
  the small recency part).

``--write`` fits on all pairs and stores the curves in engine/memory/score_calibration.json.

Usage: .venv/bin/python bench/calibrate_scores.py [--write]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from memrelay.engine.adapters.embedding.factory import build_embedder
from memrelay.engine.memory.hybrid import keyword_scores
from memrelay.engine.memory.recall import KEYWORD_WEIGHT
from memrelay.engine.memory.score_calibration import CURVES_FILE, Calibration, fit_anchors

DATA = Path(__file__).parent / "datasets" / "calibration" / "pairs.json"
PCTS = (10, 25, 50, 75, 90)


def load_pairs() -> list[dict[str, str]]:
    return list(json.loads(DATA.read_text())["pairs"])


def installed_specs() -> list[str]:
    specs = ["wordllama"]
    try:
        import sentence_transformers  # noqa: F401
        specs.append("minilm")
    except ImportError:
        pass
    return specs


def pair_scores(spec: str, pairs: list[dict[str, str]]) -> dict[str, Any]:
    """Cosines and keyword coverages of every (query i, fact j) with its label."""
    emb = build_embedder(spec)
    q = emb.embed([p["query"] for p in pairs])
    f = emb.embed([p["fact"] for p in pairs])
    cos = q @ f.T
    facts = [p["fact"] for p in pairs]
    n = len(pairs)
    kw = np.zeros((n, n))
    for i, p in enumerate(pairs):  # idf over one entity's facts, as a scoped recall sees them
        same = [j for j in range(n) if pairs[j]["entity"] == p["entity"]]
        others = [j for j in range(n) if pairs[j]["entity"] != p["entity"]]
        kw[i, same] = keyword_scores(p["query"], [facts[j] for j in same])
        kw[i, others] = keyword_scores(p["query"], [facts[j] for j in others])
    kind = np.full((n, n), "other", dtype=object)
    for i in range(n):
        for j in range(n):
            if i == j:
                kind[i, j] = "relevant"
            elif pairs[i]["topic"] == pairs[j]["topic"]:
                kind[i, j] = "skip"  # another entity's answer to the same question: neither relevant nor not
            elif pairs[i]["entity"] == pairs[j]["entity"]:
                kind[i, j] = "same_entity"
    return {"name": emb.name, "cos": cos, "kw": kw, "kind": kind}


def threshold_table(score: np.ndarray, kind: np.ndarray, rows: np.ndarray) -> dict[str, dict[str, float]]:
    mask = np.zeros_like(kind, dtype=bool)
    mask[rows, :] = True
    out = {}
    for t in (0.3, 0.5):
        out[str(t)] = {
            "relevant_kept": round(float((score[(kind == "relevant") & mask] >= t).mean()), 3),
            "same_entity_dropped": round(float((score[(kind == "same_entity") & mask] < t).mean()), 3),
            "other_dropped": round(float((score[(kind == "other") & mask] < t).mean()), 3)}
    return out


def report(spec: str, pairs: list[dict[str, str]]) -> tuple[str, dict[str, float], dict[str, Any]]:
    s = pair_scores(spec, pairs)
    cos, kind, kw = s["cos"], s["kind"], s["kw"]
    n = len(pairs)
    fit_rows, held = np.arange(0, n, 2), np.arange(1, n, 2)

    fused = cos + KEYWORD_WEIGHT * kw  # what recall calibrates: cosine plus the keyword match (score_parts)

    def split(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        m = np.zeros_like(kind, dtype=bool)
        m[rows, :] = True
        return fused[(kind == "relevant") & m], fused[(kind == "same_entity") & m], fused[(kind == "other") & m]

    xs, ys = fit_anchors(*split(fit_rows), top=1.0 + KEYWORD_WEIGHT)
    cal = Calibration(s["name"], tuple(xs), tuple(ys))
    cal_score = cal(cos)
    hybrid = cal(fused)  # recall's similarity + keyword parts (no recency)
    dist = {}
    for label in ("relevant", "same_entity", "other"):
        dist[label] = {"raw": np.percentile(cos[kind == label], PCTS).round(3).tolist(),
                       "calibrated": np.percentile(cal_score[kind == label], PCTS).round(3).tolist(),
                       "hybrid": np.percentile(hybrid[kind == label], PCTS).round(3).tolist()}
    full_xs, full_ys = fit_anchors(*split(np.arange(n)), top=1.0 + KEYWORD_WEIGHT)
    figures = {"embedder": s["name"], "held_out_fit": {"cosine": xs, "score": ys},
               "percentiles": list(PCTS), "distributions": dist,
               "held_out_thresholds": {"raw_cosine": threshold_table(cos, kind, held),
                                       "calibrated": threshold_table(cal_score, kind, held),
                                       "calibrated_plus_keyword": threshold_table(hybrid, kind, held)}}
    return s["name"], {"cosine": full_xs, "score": full_ys}, figures


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--write", action="store_true", help="store the curves fitted on all pairs")
    args = ap.parse_args()
    pairs = load_pairs()
    curves: dict[str, dict[str, float]] = {}
    for spec in installed_specs():
        name, curve, figures = report(spec, pairs)
        curves[name] = {**curve, "pairs": len(pairs)}
        print(json.dumps(figures, indent=1))
    if args.write:
        old = json.loads(CURVES_FILE.read_text()) if CURVES_FILE.exists() else {"curves": {}}
        old["curves"].update(curves)
        old["source"] = "bench/calibrate_scores.py --write on bench/datasets/calibration/pairs.json"
        CURVES_FILE.write_text(json.dumps(old, indent=1) + "\n")
        print("wrote", CURVES_FILE)


if __name__ == "__main__":
    main()
