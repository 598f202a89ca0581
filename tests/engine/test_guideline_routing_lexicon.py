"""Acronyms and their expansions in guideline routing (issue 15, item 4): "BAA" in a task meets "business associate
agreement" in a guideline, and a guideline naming a rare acronym of the task is not lost to the relative rule.
Figures on a realistic set: bench/quality_routing.py."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from memrelay.engine.adapters.embedding.factory import build_embedder
from memrelay.engine.domain.extraction.keywords import content_stems
from memrelay.engine.guidance import guideline_routing
from memrelay.engine.guidance.guideline_routing import Snapshot, route, routing_terms
from memrelay.engine.guidance.routing_lexicon import ACRONYMS, concept_tokens, is_concept
from tests.engine.test_guideline_routing import GUIDES, snapshot_of

HEALTH = {
    **{k: v for k, v in GUIDES.items() if k != "Security answers"},
    "Compliance claims": (
        "What we may say about HIPAA, SOC 2 and other compliance.",
        [],
        "## Business associate agreements\nWe do not sign business associate agreements and are "
        "not HIPAA compliant. If a prospect asks us to sign a business associate agreement, say no "
        "in writing.\n\n## SOC 2\nShare the SOC 2 report only under NDA.",
    ),
    "Healthcare prospects": (
        "Selling to hospitals, clinics and other healthcare organisations.",
        [],
        "## Patient data\nHospitals and clinics may load operational data only, never patient "
        "records. We do not sign a business associate agreement; say so in the first meeting "
        "with a hospital.",
    ),
}


@pytest.fixture(scope="module")
def emb() -> Any:
    return build_embedder("wordllama")


def _snap(emb: Any, guides: dict[str, tuple[str, list[str], str]]) -> Snapshot:
    return snapshot_of(emb, guides)


def _names(snap: Snapshot, emb: Any, message: str) -> list[str]:
    return [m.guideline.name for m in route(snap, message, emb.embed([message])[0], embed=emb.embed)]


def test_an_acronym_and_its_expansion_share_one_concept_token() -> None:
    acronym = concept_tokens(content_stems("Will they sign our BAA?"))
    expanded = concept_tokens(content_stems("We never sign business associate agreements."))
    assert acronym == expanded and len(acronym) == 1 and is_concept(acronym[0])
    assert concept_tokens(content_stems("Please send the PO and the NDA")) == [
        *concept_tokens(content_stems("purchase order")),
        *concept_tokens(content_stems("non-disclosure agreement")),
    ]
    assert concept_tokens(content_stems("What is a good recipe for banana bread?")) == []


def test_the_longest_form_wins_and_words_stay() -> None:
    # "data subject access request" is one DSAR, not a DSAR plus stray matches of shorter forms
    assert len(concept_tokens(content_stems("a data subject access request arrived"))) == 1
    terms = routing_terms("Sign the BAA")
    assert terms[:2] == content_stems("Sign the BAA") and is_concept(terms[-1])


def test_every_acronym_has_its_own_forms() -> None:
    seen: dict[tuple[str, ...], str] = {}
    for concept, forms in ACRONYMS.items():
        assert len(forms) >= 2, concept  # an acronym and at least one expansion
        for form in forms:
            stems = tuple(content_stems(form))
            assert stems, form
            assert seen.setdefault(stems, concept) == concept, f"{form} is in {seen[stems]} and {concept}"


def test_the_lexical_index_finds_the_expansion_from_the_acronym(emb: Any) -> None:
    snap = _snap(emb, HEALTH)
    lex = snap.lexicon
    assert lex is not None
    gi = [g.name for g in snap.guidelines].index("Compliance claims")
    rows = slice(int(snap.sentence_offsets[gi]), int(snap.sentence_offsets[gi]) + len(snap.guidelines[gi].sentence_terms))
    assert content_stems("the BAA") == ["baa"]
    assert lex.sentence_bm25(["baa"])[rows].max() == 0  # the guideline never says "BAA"
    assert lex.sentence_bm25(routing_terms("the BAA"))[rows].max() > 0


def test_a_rare_shared_acronym_exempts_a_guideline_from_the_relative_rule(
    emb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    snap = _snap(emb, HEALTH)
    task = "Hospital prospect with clinics and patient records: will we sign a BAA?"
    assert _names(snap, emb, task) == ["Healthcare prospects", "Compliance claims"]
    monkeypatch.setattr(guideline_routing, "RARE_CONCEPT_MAX", 0)
    assert _names(snap, emb, task) == ["Healthcare prospects"]  # below 70% of the best one


def test_the_exemption_still_needs_the_absolute_score(emb: Any) -> None:
    snap = _snap(emb, HEALTH)
    task = "A hospital wants to load patient records into the product. Will we sign their BAA?"
    q = emb.embed([task])[0]
    wide = {
        m.guideline.name: m.score for m in route(snap, task, q, min_score=0.0, margin=None, max_selected=10)
    }
    assert wide["Compliance claims"] < guideline_routing.SUPPLEMENTARY_MIN
    assert _names(snap, emb, task) == ["Healthcare prospects"]


def test_a_concept_many_guidelines_name_gives_no_exemption(emb: Any) -> None:
    task = "will we sign a BAA?"
    q = emb.embed([task])[0]
    two = guideline_routing._score(_snap(emb, HEALTH), task, q)
    assert np.count_nonzero(two.rare) == 2  # the two guidelines naming business associate agreements
    many = {**HEALTH, "Security answers": GUIDES["Security answers"]}  # a third one on BAAs
    assert not np.any(guideline_routing._score(_snap(emb, many), task, q).rare)
