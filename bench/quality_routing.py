"""Fast-mode guideline routing quality on bench/datasets/routing/ (issue 15, goal: precision >= 0.95 and
recall >= 0.90 at p50 <= 20 ms).

The dataset: 20 guidelines of a fictional B2B analytics vendor (multi-section markdown, with the tags and
trigger keywords an author would give them) and 52 agent tasks labelled with every guideline each needs
(34 need one, 13 need two, 5 need none). Figures are micro precision/recall over (task, guideline) pairs,
the share of tasks whose selection is exactly right, and the p50/p95 of one fast ``smart_guidelines`` call
through :class:`~memrelay.engine.guidance.governance.Governance` (SQL version check, cached vectors, routing,
compiled context) — for:

* **memrelay fast mode** — production routing (``engine/guidance/guideline_routing.py``: header embedding, the
  mean of the two best sentences by cosine and by BM25, coverage and header-term signals, trigger keywords, a
  second guideline chosen by its distance from the median score, each clause of a multi-intent task routed too;
  its weights and thresholds were chosen on the dev half, never on the held-out half);
* **baseline** — cosine of the task against each whole guideline (name, description and content embedded
  as one text), selecting the top k above a threshold; k and the threshold are the best on the even-numbered
  tasks (the "dev" half), so the baseline is tuned where the reported held-out half is not.

Both are printed on all tasks, the dev half and the held-out (odd-numbered) half, in the same run.

Usage: .venv/bin/python bench/quality_routing.py [--calls 300] [--split all|dev|held_out] [--misses]

``--split`` prints one half only (choose settings on ``dev``; read ``held_out`` once); ``--misses`` lists the tasks
of the printed halves whose selection is wrong (task number = line in tasks.json, 0-based; dev = even).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

DATA = Path(__file__).parent / "datasets" / "routing"
Router = Callable[[str], list[str]]


def load() -> tuple[list[dict[str, Any]], list[tuple[str, list[str]]]]:
    guidelines = json.loads((DATA / "guidelines.json").read_text())["guidelines"]
    tasks = [(t["task"], list(t["guidelines"])) for t in json.loads((DATA / "tasks.json").read_text())["tasks"]]
    return guidelines, tasks


def scores(route: Router, tasks: list[tuple[str, list[str]]]) -> dict[str, float]:
    """Micro precision/recall over (task, guideline) pairs and the share of exactly right selections."""
    tp = fp = fn = exact = 0
    for message, expected in tasks:
        got, want = set(route(message)), set(expected)
        tp, fp, fn = tp + len(got & want), fp + len(got - want), fn + len(want - got)
        exact += got == want
    return {"precision": round(tp / max(1, tp + fp), 3), "recall": round(tp / max(1, tp + fn), 3),
            "exact": round(exact / max(1, len(tasks)), 3), "tasks": len(tasks)}


SPLITS = ("all", "dev", "held_out")


def halves(tasks: list[tuple[str, list[str]]]) -> dict[str, list[tuple[str, list[str]]]]:
    return {"all": tasks, "dev": tasks[0::2], "held_out": tasks[1::2]}


def split_numbers(n_tasks: int, split: str) -> list[int]:
    """The task numbers (0-based positions in tasks.json) of ``split``: dev = even, held_out = odd."""
    return {"all": list(range(n_tasks)), "dev": list(range(0, n_tasks, 2)),
            "held_out": list(range(1, n_tasks, 2))}[split]


def misses(route: Router, tasks: list[tuple[str, list[str]]], numbers: list[int]) -> list[dict[str, Any]]:
    """The tasks among ``numbers`` whose selection is not exactly right: what was added and what was missed."""
    out = []
    for i in numbers:
        message, expected = tasks[i]
        got, want = set(route(message)), set(expected)
        if got != want:
            out.append({"task": i, "extra": sorted(got - want), "missing": sorted(want - got), "message": message})
    return out


def baseline_router(embedder: Any, guidelines: list[dict[str, Any]], k: int, threshold: float) -> Router:
    names = [g["name"] for g in guidelines]
    matrix = embedder.embed([f"{g['name']}. {g['description']}\n{g['content']}" for g in guidelines])

    def route(message: str) -> list[str]:
        sims = matrix @ embedder.embed([message])[0]
        top = np.argsort(-sims)[:k]
        return [names[i] for i in top if sims[i] >= threshold]
    return route


def tuned_baseline(embedder: Any, guidelines: list[dict[str, Any]],
                   dev: list[tuple[str, list[str]]]) -> tuple[Router, dict[str, float]]:
    """The baseline's k and threshold with the best F1 on the dev half."""
    best: tuple[float, int, float] = (-1.0, 1, 0.0)
    for k in (1, 2, 3):
        for threshold in np.arange(0.0, 0.75, 0.025):
            s = scores(baseline_router(embedder, guidelines, k, float(threshold)), dev)
            f1 = 2 * s["precision"] * s["recall"] / max(1e-9, s["precision"] + s["recall"])
            if f1 > best[0]:
                best = (f1, k, float(threshold))
    return baseline_router(embedder, guidelines, best[1], best[2]), {"k": best[1], "threshold": round(best[2], 3)}


def pct(samples: list[float], p: float) -> float:
    return round(sorted(samples)[min(len(samples) - 1, int(round(p / 100 * (len(samples) - 1))))] * 1000, 3)


def timed(route: Router, tasks: list[tuple[str, list[str]]], calls: int) -> dict[str, float]:
    samples = []
    for i in range(calls):
        t0 = time.perf_counter()
        route(tasks[i % len(tasks)][0])
        samples.append(time.perf_counter() - t0)
    return {"p50_ms": pct(samples, 50), "p95_ms": pct(samples, 95)}


def routing_figures(calls: int = 200, *, with_misses: str | None = None) -> dict[str, Any]:
    """Quality and latency of fast-mode routing vs the cosine baseline, measured in one run; ``with_misses``
    (a split name) adds the fast router's wrong selections on that split under ``memrelay_fast.misses``."""
    from memrelay.composition import Services
    from memrelay.engine.core.settings import Settings
    from memrelay.engine.guidance.governance import GuidelineCreate, SmartGuidelinesRequest

    guidelines, tasks = load()
    tmp = Path(tempfile.mkdtemp(prefix="memrelay-routing-"))
    eng = Services(Settings(data_dir=tmp, redis_url="redis://unused", log_json=False))
    try:
        eng.migrate()
        org = eng.tenancy.create_org(f"routing-{int(time.time())}").id
        gov = eng.governance
        for g in guidelines:
            gov.create(org, GuidelineCreate(**g))

        def fast(message: str) -> list[str]:
            out = gov.smart_guidelines(org, SmartGuidelinesRequest(message=message))
            return [g["name"] for g in out["guidelines"]]

        fast("warm up")  # embeds and caches the guidelines
        parts = halves(tasks)
        base, base_params = tuned_baseline(eng.embedder, guidelines, parts["dev"])
        wrong = {"misses": misses(fast, tasks, split_numbers(len(tasks), with_misses))} if with_misses else {}
        return {
            "dataset": {"guidelines": len(guidelines), "tasks": len(tasks),
                        "labels": sum(len(t[1]) for t in tasks)},
            "embedder": eng.embedder.name,
            "memrelay_fast": {**{name: scores(fast, ts) for name, ts in parts.items()}, **timed(fast, tasks, calls),
                              **wrong},
            "baseline_cosine": {**{name: scores(base, ts) for name, ts in parts.items()}, **base_params,
                                **timed(base, tasks, calls)},
            "goal": {"precision": 0.95, "recall": 0.90, "p50_ms": 20.0},
        }
    finally:
        eng.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--split", choices=SPLITS, default=None,
                    help="print this half only (default: all three); choose settings on dev")
    ap.add_argument("--misses", action="store_true", help="list the fast router's wrong selections")
    args = ap.parse_args()
    shown = [args.split] if args.split else list(SPLITS)
    f = routing_figures(args.calls, with_misses=(args.split or "all") if args.misses else None)
    print(f"{f['dataset']['guidelines']} guidelines x {f['dataset']['tasks']} tasks "
          f"({f['dataset']['labels']} labels), embedder {f['embedder']}")
    print(f"{'router':18} {'half':9} {'precision':>9} {'recall':>7} {'exact':>6} {'p50 ms':>7} {'p95 ms':>7}")
    for key, label in (("memrelay_fast", "memrelay fast"), ("baseline_cosine", "baseline cosine")):
        row = f[key]
        for i, half in enumerate(shown):
            s = row[half]
            lat = f"{row['p50_ms']:7.2f} {row['p95_ms']:7.2f}" if i == 0 else ""
            print(f"{label:18} {half:9} {s['precision']:9.3f} {s['recall']:7.3f} {s['exact']:6.3f} {lat}")
    print(f"baseline k={f['baseline_cosine']['k']} threshold={f['baseline_cosine']['threshold']} (best F1 on dev)")
    print(f"goal: precision >= {f['goal']['precision']}, recall >= {f['goal']['recall']}, "
          f"p50 <= {f['goal']['p50_ms']} ms")
    for m in f["memrelay_fast"].get("misses", []):
        print(f"  task {m['task']:2}: extra {m['extra']} missing {m['missing']} | {m['message'][:90]}")


if __name__ == "__main__":
    main()
