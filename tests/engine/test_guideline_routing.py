"""Fast guideline routing on small examples: the lexical index (BM25 per section, idf coverage per
guideline), the combined score and the selection rules. The precision/recall figures on a realistic set
are bench/quality_routing.py's."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from memrelay.engine.adapters.embedding.factory import build_embedder
from memrelay.engine.guidance.guideline_routing import (
    RELATIVE_MIN,
    SUPPLEMENTARY_MIN,
    Lexicon,
    Snapshot,
    prepare,
    route,
)
from memrelay.engine.stores.db.models_llm import Guideline

NOW = datetime(2026, 6, 1, tzinfo=UTC)
GUIDES = {
    "Refunds": ("When customers get money back.", ["refund", "chargeback"],
                "## Eligibility\nAnnual plans are refunded pro rata within 30 days of purchase.\n\n"
                "## Chargebacks\nForward every bank dispute or chargeback notice to finance the same day."),
    "Discounts": ("Who may approve a discount on a quote.", ["discount"],
                  "## Approval\nAccount executives may give up to 10% off; above 20% needs the CRO.\n\n"
                  "## Trades\nTrade every discount for a longer term or a case study."),
    "Security answers": ("Answering security questionnaires.", ["soc 2"],
                         "## Certifications\nWe hold a SOC 2 Type II report. We do not sign HIPAA business "
                         "associate agreements.\n\n## Hosting\nData is hosted in Frankfurt or Virginia."),
    "Webinars": ("Inviting people to webinars and events.", ["webinar"],
                 "## Invitations\nSend invitations three weeks ahead from the events platform.\n\n"
                 "## Reminders\nOne reminder the day before the event."),
}


@pytest.fixture(scope="module")
def emb() -> Any:
    return build_embedder("wordllama")


def snapshot_of(emb: Any, guides: dict[str, tuple[str, list[str], str]]) -> Snapshot:
    """The routing snapshot of ``guides`` (name -> description, trigger keywords, content)."""
    rows = [Guideline(id=f"g{i}", org_id="o", name=name, description=desc, content=content, tags=[],
                      trigger_keywords=kw, version=1, created_at=NOW, updated_at=NOW)
            for i, (name, (desc, kw, content)) in enumerate(guides.items())]
    return Snapshot.build([prepare(r, emb) for r in rows])


@pytest.fixture(scope="module")
def snap(emb: Any) -> Snapshot:
    return snapshot_of(emb, GUIDES)


def names(snap: Snapshot, emb: Any, message: str, **kw: Any) -> list[str]:
    return [m.guideline.name for m in route(snap, message, emb.embed([message])[0], **kw)]


def test_lexicon_bm25_finds_the_sentence_with_the_rare_word(snap: Snapshot) -> None:
    lex = snap.lexicon
    assert isinstance(lex, Lexicon)
    scores = lex.sentence_bm25(["hipaa"])
    best = int(np.argmax(scores))
    owner = int(np.searchsorted(snap.sentence_offsets, best, side="right")) - 1
    assert snap.guidelines[owner].name == "Security answers" and scores[best] > 0
    assert np.count_nonzero(scores) == 1  # only that sentence holds the word


def test_coverage_is_low_everywhere_for_words_no_guideline_has(snap: Snapshot) -> None:
    lex = snap.lexicon
    assert lex is not None
    assert lex.coverage(["banana", "bread", "recip"]).max() == 0
    mixed = lex.coverage(["webinar", "banana"])
    assert 0 < mixed.max() < 1  # an unknown word weighs in the denominator
    assert lex.coverage([]).max() == 0


def test_one_clear_topic_routes_to_one_guideline(snap: Snapshot, emb: Any) -> None:
    assert names(snap, emb, "The customer paid for an annual plan last week and wants their money back") == [
        "Refunds"]
    assert names(snap, emb, "Send the invitations for next month's webinar") == ["Webinars"]


def test_two_topics_route_to_both(snap: Snapshot, emb: Any) -> None:
    got = names(snap, emb, "They ask for a 25% discount and want a copy of our SOC 2 report.")
    assert set(got) == {"Security answers", "Discounts"}


def test_off_topic_routes_to_nothing(snap: Snapshot, emb: Any) -> None:
    assert names(snap, emb, "What is a good recipe for banana bread?") == []


def test_keyword_makes_critical_and_scores_carry_reasons(snap: Snapshot, emb: Any) -> None:
    msg = "A chargeback arrived from the customer's bank"
    matches = route(snap, msg, emb.embed([msg])[0])
    top = matches[0]
    assert top.guideline.name == "Refunds" and top.priority == "critical"
    assert "keyword: chargeback" in top.reasons and any(r.startswith("lexical: ") for r in top.reasons)
    assert all(m.score >= SUPPLEMENTARY_MIN and m.score >= RELATIVE_MIN * top.score for m in matches)


def test_relative_rule_and_candidate_mode(snap: Snapshot, emb: Any) -> None:
    msg = "The customer wants a refund"
    strict = route(snap, msg, emb.embed([msg])[0])
    wide = route(snap, msg, emb.embed([msg])[0], min_score=float("-inf"), margin=None, max_selected=10)
    assert [m.guideline.name for m in strict] == ["Refunds"]
    assert len(wide) == len(GUIDES)  # deep mode's candidate list: every guideline, best first
    assert [m.score for m in wide] == sorted((m.score for m in wide), reverse=True)
