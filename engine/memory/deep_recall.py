"""Deep recall: fast recall plus at most two LLM reflection rounds (follow-up queries for what the
memories found so far do not answer) and, on request, a generated answer citing the memories used.

``Recall.smart_recall`` hands deep requests to a :class:`DeepRecall` (built by the composition root only when a
model is configured); :func:`deep_recall` is the search-agnostic core.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field

from memrelay.engine.stores.metered_llm import BudgetedLLM

MAX_ROUNDS = 2
MAX_FOLLOW_UPS = 3
SHOWN_MEMORIES = 30

FastSearch = Callable[[str], list[dict[str, Any]]]


class _Reflection(BaseModel):
    sufficient: bool = Field(description="True when the memories already answer the question.")
    followUpQueries: list[str] = Field(default_factory=list, description="Searches for what is still missing.")


class _Answer(BaseModel):
    answer: str
    citedMemoryIds: list[str] = Field(default_factory=list)


def _listing(results: list[dict[str, Any]]) -> str:
    return "\n".join(f"[{r['memoryId']}] ({r.get('timestamp') or ''}) {r['text']}" for r in results[:SHOWN_MEMORIES])


def merge(results: list[dict[str, Any]], more: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Union by memory id keeping the best score, best first."""
    best: dict[str, dict[str, Any]] = {r["memoryId"]: r for r in results}
    for r in more:
        if r["memoryId"] not in best or r.get("score", 0) > best[r["memoryId"]].get("score", 0):
            best[r["memoryId"]] = r
    return sorted(best.values(), key=lambda r: -r.get("score", 0.0))


def deep_recall(llm: BudgetedLLM, org_id: str, query: str, fast_search: FastSearch, *,
                first: list[dict[str, Any]] | None = None, generate_answer: bool = False,
                limit: int = 10, max_rounds: int = MAX_ROUNDS) -> dict[str, Any]:
    """Reflect (≤ ``max_rounds``), search the follow-ups, optionally answer. Raises 503 without an LLM."""
    run = llm.run(org_id, "deep_recall")
    results = list(first) if first is not None else fast_search(query)
    asked: list[str] = [query]
    rounds = 0
    for _ in range(max_rounds):
        messages = [
            {"role": "system", "content": "You judge whether retrieved memories answer a question. If not, "
                                          f"propose up to {MAX_FOLLOW_UPS} short search queries for the missing facts."},
            {"role": "user", "content": f"Question: {query}\n\nMemories:\n{_listing(results) or '(none)'}\n\n"
                                        f"Queries already run: {asked}"}]
        reflection = run.client.structured(messages, _Reflection).value
        rounds += 1
        new = [q.strip() for q in reflection.followUpQueries if q.strip() and q.strip() not in asked]
        if reflection.sufficient or not new:
            break
        for q in new[:MAX_FOLLOW_UPS]:
            asked.append(q)
            results = merge(results, fast_search(q))
    results = results[:limit]
    out: dict[str, Any] = {"results": results, "count": len(results), "mode": "deep",
                           "reflection": {"rounds": rounds, "queries": asked[1:]}}
    if generate_answer:
        messages = [
            {"role": "system", "content": "Answer the question only from the memories; cite the ids you used. "
                                          "If they do not contain the answer, say so."},
            {"role": "user", "content": f"Question: {query}\n\nMemories:\n{_listing(results) or '(none)'}"}]
        answer = run.client.structured(messages, _Answer).value
        known = {r["memoryId"] for r in results}
        out["answer"] = {"text": answer.answer, "citedMemoryIds": [i for i in answer.citedMemoryIds if i in known]}
    out["usage"] = run.usage_dict()
    return out


class DeepRecall:
    """Deep mode of smart recall: reflection rounds (and an answer) over fast recall's result."""

    def __init__(self, llm: BudgetedLLM):
        self.llm = llm

    def deepen(self, org_id: str, req: Any, fast_result: dict[str, Any], fast_search: FastSearch) -> dict[str, Any]:
        """``fast_result`` extended with the reflection's follow-up results (``fast_search`` runs one query)."""
        generate = bool(getattr(req, "generate_answer", False) or getattr(req, "generateAnswer", False))
        deep = deep_recall(self.llm, org_id, req.query, fast_search, first=fast_result.get("results", []),
                           generate_answer=generate, limit=req.limit)
        return {**fast_result, **deep}
