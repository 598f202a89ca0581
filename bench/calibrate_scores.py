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

``--subject-free``: the signal scoped recall calibrates since it compares without the record's names (recall.py,
SubjectFree): each pair's entity is the record's name, stripped from the question and projected out of the cosine,
the keyword part matches the stripped question. Prints, on the held-out half, what the documented thresholds
keep/drop with the stored curve (fitted on the plain cosine: what scoped recall does today) next to a curve
re-fitted on this signal; with ``--write`` the re-fitted curve is stored only if it does at least as well.

Usage: .venv/bin/python bench/calibrate_scores.py [--write] [--subject-free]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from memrelay.engine.adapters.embedding.factory import build_embedder
from memrelay.engine.domain.extraction.keywords import content_stems
from memrelay.engine.memory.hybrid import keyword_scores
from memrelay.engine.memory.recall import KEYWORD_WEIGHT, SubjectFree, strip_subject, subject_words
from memrelay.engine.memory.score_calibration import CURVES_FILE, Calibration, calibration_for, fit_anchors

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


def pair_scores(spec: str, pairs: list[dict[str, str]], subject_free: bool = False) -> dict[str, Any]:
    """Cosines and keyword coverages of every (query i, fact j) with its label; ``subject_free``: the
    subject-free cosine and the stripped question's keyword match (query i's entity as the record's name)."""
    emb = build_embedder(spec)
    q = emb.embed([p["query"] for p in pairs])
    f = emb.embed([p["fact"] for p in pairs])
    cos = q @ f.T
    queries = [p["query"] for p in pairs]
    if subject_free:
        for i, p in enumerate(pairs):
            words = subject_words([p["entity"]])
            stripped = strip_subject(p["query"], words)
            if not content_stems(stripped):
                continue  # nothing but the name: recall keeps the plain cosine
            vecs = emb.embed([stripped, p["entity"]])
            free = SubjectFree(vecs[0], vecs[1:]).cosines(f)
            if free is not None:
                cos[i] = free
                queries[i] = stripped
    facts = [p["fact"] for p in pairs]
    n = len(pairs)
    kw = np.zeros((n, n))
    for i, p in enumerate(pairs):  # idf over one entity's facts, as a scoped recall sees them
        same = [j for j in range(n) if pairs[j]["entity"] == p["entity"]]
        others = [j for j in range(n) if pairs[j]["entity"] != p["entity"]]
        kw[i, same] = keyword_scores(queries[i], [facts[j] for j in same])
        kw[i, others] = keyword_scores(queries[i], [facts[j] for j in others])
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


def report(spec: str, pairs: list[dict[str, str]],
           subject_free: bool = False) -> tuple[str, dict[str, float], dict[str, Any]]:
    s = pair_scores(spec, pairs, subject_free)
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
    if subject_free:  # the stored curve (fitted on the plain cosine) on this signal: what scoped recall does now
        stored = calibration_for(s["name"])
        figures["held_out_thresholds"]["stored_curve_plus_keyword"] = threshold_table(stored(fused), kind, held)
    return s["name"], {"cosine": full_xs, "score": full_ys}, figures


def no_worse(new: dict[str, dict[str, float]], old: dict[str, dict[str, float]]) -> bool:
    """At both thresholds: as many relevant hits kept and as many unrelated ones dropped (same entity, other)."""
    return all(new[t][k] >= old[t][k] for t in old for k in old[t])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--write", action="store_true", help="store the curves fitted on all pairs")
    ap.add_argument("--subject-free", action="store_true", help="fit on scoped recall's subject-free signal")
    args = ap.parse_args()
    pairs = load_pairs()
    curves: dict[str, dict[str, float]] = {}
    for spec in installed_specs():
        name, curve, figures = report(spec, pairs, args.subject_free)
        print(json.dumps(figures, indent=1))
        if args.subject_free:
            th = figures["held_out_thresholds"]
            ok = no_worse(th["calibrated_plus_keyword"], th["stored_curve_plus_keyword"])
            print(f"{name}: re-fitted curve {'keeps/drops at least as well as' if ok else 'does WORSE than'} "
                  "the stored one at minScore 0.3 and 0.5 (held-out half)")
            if not ok:
                continue
        curves[name] = {**curve, "pairs": len(pairs)}
    if args.write:
        old = json.loads(CURVES_FILE.read_text()) if CURVES_FILE.exists() else {"curves": {}}
        old["curves"].update(curves)
        old["source"] = "bench/calibrate_scores.py --write on bench/datasets/calibration/pairs.json"
        CURVES_FILE.write_text(json.dumps(old, indent=1) + "\n")
        print("wrote", CURVES_FILE)


if __name__ == "__main__":
    main()
