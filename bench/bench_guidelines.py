"""Smart guidelines, fast mode: latency with 50 guidelines, side by side with a naive keyword-only scan.

Prints p50/p95 per call and routing precision/recall on the labelled messages of
tests/support/guidelines_corpus.py for:
  - memrelay fast mode (memrelay.engine.guidance.governance smart_guidelines: SQL version check + cached embeddings +
    keywords + tags + section selection + compiled context), without and with a sessionId (progressive
    delivery: one SQL read and one upsert per call);
  - a naive baseline: load every guideline from SQL and select those whose trigger keywords or name words
    occur in the message (substring scan), delivering them whole.

Usage: .venv/bin/python bench/bench_guidelines.py [--calls 500] [--database-url postgresql://...]
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select

from memrelay.composition import Services
from memrelay.engine.core.settings import Settings
from memrelay.engine.guidance.governance import GuidelineCreate, SmartGuidelinesRequest
from memrelay.engine.stores.db.models_llm import Guideline
from tests.support.guidelines_corpus import GUIDELINES, ROUTING_CASES

FEATURES = ["dashboards", "exports", "single sign-on", "audit log", "mobile app", "API keys", "webhooks",
            "data import", "custom fields", "workflows", "alerts", "reports", "integrations"]


def filler_guidelines(n: int) -> list[dict[str, Any]]:
    """Product-area how-to guidelines (realistic noise around the labelled corpus)."""
    out = []
    for i in range(n):
        feature = FEATURES[i % len(FEATURES)]
        kind = "Troubleshooting" if i >= len(FEATURES) else "How to explain"
        out.append({"name": f"{kind} {feature}", "description": f"{kind} the {feature} feature to customers.",
                    "tags": ["product", "support"], "triggerKeywords": [],
                    "content": f"## Overview\nWhat {feature} does and who uses it.\n\n## Steps\n"
                               f"Walk the customer through setting up {feature} in the admin settings.\n\n"
                               f"## Known issues\nCommon {feature} problems and their workarounds."})
    return out


def pct(samples: list[float], p: float) -> float:
    return sorted(samples)[min(len(samples) - 1, int(round(p / 100 * (len(samples) - 1))))] * 1000


def naive_route(eng: Services, org_id: str, message: str) -> list[str]:
    low = message.lower()
    with eng.db.read() as s:
        rows = s.scalars(select(Guideline).where(Guideline.org_id == org_id, Guideline.deleted_at.is_(None))).all()
    chosen = []
    for g in rows:
        words = [k.lower() for k in g.trigger_keywords or []] + [w for w in re.findall(r"[a-z]{5,}", g.name.lower())]
        if any(w in low for w in words):
            chosen.append(g.name)
    return chosen


def quality(route: Any) -> tuple[float, float]:
    tp = fp = fn = 0
    for message, expected in ROUTING_CASES:
        names = set(route(message))
        tp, fp, fn = tp + len(names & set(expected)), fp + len(names - set(expected)), fn + len(set(expected) - names)
    return tp / max(1, tp + fp), tp / max(1, tp + fn)


def timed(fn: Any, calls: int) -> list[float]:
    samples = []
    for i in range(calls):
        message = ROUTING_CASES[i % len(ROUTING_CASES)][0]
        t0 = time.perf_counter()
        fn(message, i)
        samples.append(time.perf_counter() - t0)
    return samples


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=500)
    ap.add_argument("--database-url", default=None)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="memrelay-bench-"))
    eng = Services(Settings(data_dir=tmp, database_url=args.database_url, redis_url="redis://unused", log_json=False))
    eng.migrate()
    org = eng.tenancy.create_org(f"bench-{int(time.time())}").id
    gov = eng.governance
    corpus = GUIDELINES + filler_guidelines(50 - len(GUIDELINES))
    for g in corpus:
        gov.create(org, GuidelineCreate(**g))
    gov.smart_guidelines(org, SmartGuidelinesRequest(message="warm up"))  # embeds and caches all 50

    def fast(message: str, _i: int) -> list[str]:
        return [g["name"] for g in gov.smart_guidelines(org, SmartGuidelinesRequest(message=message))["guidelines"]]

    def fast_session(message: str, i: int) -> None:
        gov.smart_guidelines(org, SmartGuidelinesRequest(message=message, sessionId=f"s{i // 5}"))

    rows = [("memrelay fast mode", timed(fast, args.calls), quality(lambda m: fast(m, 0))),
            ("memrelay fast + sessionId", timed(fast_session, args.calls), None),
            ("naive keyword scan", timed(lambda m, _i: naive_route(eng, org, m), args.calls),
             quality(lambda m: naive_route(eng, org, m)))]
    print(f"{len(corpus)} guidelines, {args.calls} calls each, {eng.db.dialect}, embedder {eng.embedder.name}")
    print(f"{'path':28} {'p50 ms':>8} {'p95 ms':>8} {'precision':>10} {'recall':>7}")
    for name, samples, q in rows:
        prec, rec = (f"{q[0]:.2f}", f"{q[1]:.2f}") if q else ("-", "-")
        print(f"{name:28} {pct(samples, 50):8.2f} {pct(samples, 95):8.2f} {prec:>10} {rec:>7}")
    eng.close()


if __name__ == "__main__":
    main()
