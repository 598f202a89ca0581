"""Query properties (``POST /api/v1/memory/query-properties``): an LLM reads one property's values across
records and says which ones match a natural-language query, with a reason.

Candidates are the values of ``propertyName`` on live records (of ``type`` when given) — each item of an
array property on its own, so a match's ``propertyValue`` is the item that matched; above
``MAX_CANDIDATES`` the values closest to the query by embedding are kept. The model sees numbered values in
batches and answers numbers, so it cannot name a record that was not shown. Without a configured model the
call answers 503 ``llm_not_configured`` before reading anything.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select

from memrelay.engine.core.embedder import Embedder
from memrelay.engine.stores.collections import normalise_entity_type
from memrelay.engine.stores.db.database import Database
from memrelay.engine.stores.db.models import PropertyValue, Record
from memrelay.engine.stores.metered_llm import BudgetedLLM

MAX_CANDIDATES = 200
BATCH = 50
MAX_VALUE_CHARS = 500


class QueryPropertiesRequest(BaseModel):
    """Personize's ``memory.queryProperties({propertyName, query, type, limit})``."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    propertyName: str = Field(min_length=1, max_length=200)
    query: str = Field(min_length=1, max_length=2000)
    type: str | None = Field(None, description="Entity type (case-insensitive), e.g. 'Contact'.")
    limit: int = Field(50, ge=1, le=MAX_CANDIDATES)

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            for alias, name in (("property_name", "propertyName"), ("entityType", "type")):
                if alias in data and name not in data:
                    data[name] = data.pop(alias)
        return data


class _Match(BaseModel):
    index: int = Field(description="The number of a value that matches the query.")
    matchReason: str = Field(description="One short sentence: why this value matches.")


class _Matches(BaseModel):
    matches: list[_Match] = Field(default_factory=list)


def render_value(value: Any) -> str:
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        text = "; ".join(map(str, value))
    else:
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return " ".join(text.split())[:MAX_VALUE_CHARS]


def candidate_values(value: Any) -> list[Any]:
    """The values the model judges for one stored value: each item of a list (an array property such as
    ``pain_points`` holds one value per item, and the match names the item), else the value itself."""
    items = value if isinstance(value, list) else [value]
    return [v for v in items if v not in (None, "", [], {})]


class QueryProperties:
    """LLM-judged matches of one property's values against a query."""

    def __init__(self, db: Database, llm: BudgetedLLM, embedder: Embedder):
        self.db, self.llm, self.embedder = db, llm, embedder

    def query(self, org_id: str, req: QueryPropertiesRequest) -> dict[str, Any]:
        """``{matches: [{recordId, propertyValue, matchReason}], ...}`` (a record may match with several items
        of an array property); 503 without a model."""
        run = self.llm.run(org_id, "query_properties")
        candidates = self._candidates(org_id, req)
        total = len(candidates)
        if total > MAX_CANDIDATES:
            candidates = self._closest(candidates, req.query)
        matches: list[dict[str, Any]] = []
        for start in range(0, len(candidates), BATCH):
            batch = candidates[start:start + BATCH]
            listing = "\n".join(f"[{i + 1}] {render_value(c['value'])}" for i, c in enumerate(batch))
            messages = [
                {"role": "system", "content": "You match stored property values against a query. List only the "
                                              "values that match it, by number, each with a one-sentence reason. "
                                              "Answer an empty list when none match."},
                {"role": "user", "content": f"Query: {req.query}\nProperty: {req.propertyName}\n\n"
                                            f"Values:\n{listing}"}]
            answer = run.client.structured(messages, _Matches).value
            seen: set[int] = set()
            for m in answer.matches:
                if 1 <= m.index <= len(batch) and m.index not in seen:
                    seen.add(m.index)
                    c = batch[m.index - 1]
                    matches.append({"recordId": c["recordId"], "record_id": c["recordId"], "type": c["type"],
                                    "propertyName": req.propertyName, "propertyValue": c["value"],
                                    "matchReason": m.matchReason.strip()})
            if len(matches) >= req.limit:
                break
        return {"matches": matches[:req.limit], "totalCandidates": total, "candidatesJudged": len(candidates),
                "usage": run.usage_dict()}

    def _candidates(self, org_id: str, req: QueryPropertiesRequest) -> list[dict[str, Any]]:
        with self.db.read() as s:
            q = (select(PropertyValue.record_id, PropertyValue.value, Record.entity_type)
                 .join(Record, Record.id == PropertyValue.record_id)
                 .where(Record.org_id == org_id, Record.deleted_at.is_(None),
                        PropertyValue.name == req.propertyName))
            if req.type:
                q = q.where(Record.entity_type == normalise_entity_type(req.type))
            rows = s.execute(q.order_by(Record.created_at, Record.id)).all()
        return [{"recordId": rid, "value": item, "type": et} for rid, value, et in rows
                for item in candidate_values(value)]

    def _closest(self, candidates: list[dict[str, Any]], query: str) -> list[dict[str, Any]]:
        """The MAX_CANDIDATES values most similar to the query (embedding cosine), in their original order."""
        vectors = self.embedder.embed([render_value(c["value"]) for c in candidates])
        sims = np.asarray(vectors) @ self.embedder.embed([query])[0]
        keep = sorted(np.argsort(-sims, kind="stable")[:MAX_CANDIDATES].tolist())
        return [candidates[i] for i in keep]
