"""Scoped recall's row index (issue 16, scoped recall p50): the keyword and topic parts read from a record's
:class:`RowIndex` equal, bit for bit, the pass over every row — on memories the real extraction wrote from the
quality bench's stale/fresh account notes (topic questions, superseded values, answer kinds), for every question of
the set, with and without the record's name words."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from memrelay.composition import Services
from memrelay.engine.memory.memories import MemorizeRequest
from memrelay.engine.memory.recall import RecallRequest, RowIndex, score_parts
from memrelay.engine.memory.score_calibration import calibration_for
from memrelay.engine.stores.identity import Identifiers, require_record

PAIRS = json.loads((Path(__file__).resolve().parents[2] / "bench/datasets/quality/pairs.json").read_text())["pairs"]
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
EXTRA = ["When is the renewal due?", "How many seats do they have?", "Who signs off on the budget?",
         "What did they say about pricing?", "Where is the team based?", "How much do they pay per year?"]


def _record_rows(engine: Services, org: str, email: str) -> list[dict[str, Any]]:
    with engine.db.read() as s:
        rid = require_record(s, org, Identifiers(type="contact", email=email), "contact").id
        emb = engine.embedder
        ev = engine.recall.cache.get(s, org, rid, embedder=emb.name, dim=emb.dim)
    return ev.rows


@pytest.fixture(scope="module")
def questions() -> list[str]:
    return [p["question"] for p in PAIRS] + EXTRA


@pytest.mark.parametrize("pairs", [PAIRS[:8], PAIRS[8:16]], ids=["pairs-0-7", "pairs-8-15"])
def test_indexed_keyword_and_topic_parts_equal_the_full_pass(engine: Services, pairs: list[dict[str, Any]],
                                                             questions: list[str]) -> None:
    org = engine.tenancy.create_org("row-index").id
    emb, cal = engine.embedder, calibration_for(engine.embedder.name)
    compared = topical = stale = keyword = 0
    for i, p in enumerate(pairs):
        email = f"pair{i}@row-index.example"
        for note, ts in ((p["old_note"], T0), (p["new_note"], T0 + timedelta(days=92))):
            engine.memories.memorize(org, MemorizeRequest(content=note, timestamp=ts, source="account_note",
                                                          identifiers=Identifiers(type="contact", email=email)))
        rows = _record_rows(engine, org, email)
        matrix = np.asarray(emb.embed([r["text"] for r in rows]))
        names = frozenset(w.lower() for w in p["person"].split() + p["company"].split())
        for question in questions:
            sims = matrix @ emb.embed([question])[0]
            for subject in (frozenset(), names):
                full_rows, indexed_rows = [dict(r) for r in rows], [dict(r) for r in rows]  # no shared memos
                kw: dict[str, Any] = {"now": T0.timestamp(), "subject": subject}
                full = score_parts(question, full_rows, sims, cal, **kw)
                fast = score_parts(question, indexed_rows, sims, cal, index=RowIndex(indexed_rows), **kw)
                assert full.keys() == fast.keys()
                for part in full:
                    assert np.array_equal(full[part], fast[part]), (question, part, full[part], fast[part])
                compared += 1
                topical += int(full["topicMatch"].any())
                stale += int(full["staleTopic"].any())
                keyword += int(full["keywordMatch"].any())
    # the comparison covered what the index changes: keyword matches, topic answers and stale values
    assert compared == len(pairs) * len(questions) * 2
    assert keyword > compared // 2 and topical > 0 and stale > 0, (keyword, topical, stale)


def test_a_scoped_recall_reads_the_records_row_index(engine: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """The scoped recall of one record passes its cached entry's index to scoring (and the same one next time)."""
    import memrelay.engine.memory.recall as recall_module

    org = engine.tenancy.create_org("row-index-wired").id
    p = PAIRS[0]
    ids = Identifiers(type="contact", email="wired@row-index.example")
    engine.memories.memorize(org, MemorizeRequest(content=p["new_note"], timestamp=T0, source="account_note",
                                                  identifiers=ids))
    seen: list[Any] = []
    real = recall_module.score_parts

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs.get("index"))
        return real(*args, **kwargs)

    monkeypatch.setattr(recall_module, "score_parts", spy)
    for _ in range(2):
        out = engine.recall.smart_recall(org, RecallRequest(query=p["question"], identifiers=ids))
        assert p["new_value"].lower() in out["results"][0]["text"].lower()
    assert isinstance(seen[0], RowIndex) and seen[1] is seen[0]
    assert seen[0].rows is _record_rows(engine, org, "wired@row-index.example")
