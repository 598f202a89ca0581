"""Sentence units in fast guideline routing (issue 15, item 4): each guideline is scored on the mean of its two best
sentences (cosine with the heading in front, and BM25), and a second guideline is chosen by its distance from the
median score. Figures on a realistic set: bench/quality_routing.py."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest

from memrelay.engine.adapters.embedding.factory import build_embedder
from memrelay.engine.guidance import guideline_routing
from memrelay.engine.guidance.guideline_routing import Snapshot, relative_bar, route, routing_terms
from memrelay.engine.guidance.routing_bm25 import Bm25
from memrelay.engine.guidance.routing_sentences import sentence_text, split_sentences, top_k_mean
from tests.engine.test_guideline_routing import GUIDES, snapshot_of


@pytest.fixture(scope="module")
def emb() -> Any:
    return build_embedder("wordllama")


def _snap(emb: Any, guides: dict[str, tuple[str, list[str], str]]) -> Snapshot:
    return snapshot_of(emb, guides)


def test_sentences_leave_headings_out_and_join_wrapped_lines() -> None:
    section = (
        "## Processing\nLog every refund request in the billing queue with the invoice\nnumber. Support may "
        "approve refunds up to $1,000; finance approves anything larger.\n\nRefunds go back to the card."
    )
    assert split_sentences(section) == [
        "Log every refund request in the billing queue with the invoice number.",
        "Support may approve refunds up to $1,000; finance approves anything larger.",
        "Refunds go back to the card.",
    ]
    assert split_sentences("## Only a heading\n") == []
    assert (
        sentence_text("Processing", "Log it.") == "Processing: Log it."
        and sentence_text("", "Log it.") == "Log it."
    )


def test_top_k_mean_per_group() -> None:
    values = np.array([0.1, 0.9, 0.5, 0.3, 0.7, 0.2])
    offsets = np.array([0, 3, 5])  # groups [0.1, 0.9, 0.5], [0.3, 0.7], [0.2]
    assert np.allclose(top_k_mean(values, offsets), [0.7, 0.5, 0.2])
    assert np.allclose(top_k_mean(values, offsets, k=1), [0.9, 0.7, 0.2])


def test_bm25_scores_rows_by_rare_shared_words() -> None:
    index = Bm25.build([Counter(["refund", "card"]), Counter(["invoic", "card"]), Counter(["webinar"])])
    scores = index.scores(["refund", "card"])
    assert scores[0] > scores[1] > 0 and scores[2] == 0
    assert index.scores(["unknown"]).max() == 0


def test_every_sentence_is_embedded_and_indexed(emb: Any) -> None:
    snap = _snap(emb, GUIDES)
    sentences = [len(g.sentence_terms) for g in snap.guidelines]
    assert all(n >= 2 for n in sentences)  # every test guideline has two sections of one sentence or more
    assert snap.sentences.shape == (sum(sentences), emb.dim)
    assert list(snap.sentence_offsets) == list(np.concatenate([[0], np.cumsum(sentences)[:-1]]))
    refunds = snap.guidelines[[g.name for g in snap.guidelines].index("Refunds")]
    assert refunds.sentence_terms[-1] == Counter(
        routing_terms("Forward every bank dispute or chargeback notice to finance the same day.")
    )


def test_one_coincidental_sentence_weighs_less_than_evidence_in_two(emb: Any) -> None:
    guides = {
        "Meetings": (
            "How we run customer meetings.",
            [],
            "## Agenda\nSend the agenda a day before the meeting.\n\n## Notes\nShare notes after the "
            "meeting.\n\n## Rooms\nBook a room with a screen for every customer meeting on site.",
        ),
        "Travel": (
            "Booking travel for customer visits.",
            [],
            "## Flights\nBook flights through the travel desk.\n\n## Hotels\nBook hotels near the customer "
            "office.\n\n## Trains\nTrains are preferred under four hours.",
        ),
    }
    snap = _snap(emb, guides)
    lex = snap.lexicon
    assert lex is not None
    words = routing_terms("Book flights and a hotel for the customer visit")
    one, two = (int(snap.offsets[i]) for i in range(2))
    best_sentence = top_k_mean(lex.sentence_bm25(words), snap.sentence_offsets, k=1)
    mean_of_two = top_k_mean(lex.sentence_bm25(words), snap.sentence_offsets)
    assert one == 0 and two == 3
    assert (
        mean_of_two[1] > mean_of_two[0]
        and mean_of_two[1] / best_sentence[1] > mean_of_two[0] / best_sentence[0]
    )


def test_the_relative_bar_starts_at_the_median_and_pads_small_orgs() -> None:
    many = np.array([1.5, 1.0] + [0.3] * 18)
    assert relative_bar(many, 0.5) == pytest.approx(0.3 + 0.5 * 1.2)
    small = np.array([1.0, 0.9, 0.1])  # three guidelines: the median (0.9) is no unrelated one
    assert relative_bar(small, 0.675) == pytest.approx(0.675)
    assert relative_bar(np.array([1.0]), 0.675) == pytest.approx(0.675)


def test_a_second_relevant_guideline_is_kept_in_a_small_org(
    emb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    snap = _snap(emb, {k: v for k, v in GUIDES.items() if k != "Refunds"})
    msg = "They ask for a 25% discount and want a copy of our SOC 2 report."
    assert {m.guideline.name for m in route(snap, msg, emb.embed([msg])[0])} == {
        "Discounts",
        "Security answers",
    }
    # the median of three scores is the second one: only the best reaches the bar
    monkeypatch.setattr(guideline_routing, "MIN_BACKGROUND_GUIDELINES", 0)
    assert len(route(snap, msg, emb.embed([msg])[0])) == 1
