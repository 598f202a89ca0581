"""Fast routing of multi-intent tasks (each clause routed too), trigger keywords as selection evidence and the
header-terms signal (issue 15, item 4). Figures on a realistic set: bench/quality_routing.py."""

from __future__ import annotations

from typing import Any

import pytest

from memrelay.engine.adapters.embedding.factory import build_embedder
from memrelay.engine.guidance.guideline_routing import SUPPLEMENTARY_MIN, Snapshot, clauses, prepare, route
from memrelay.engine.stores.db.models_llm import Guideline
from tests.engine.test_guideline_routing import GUIDES, NOW

TWO_INTENTS = ("The customer filed a chargeback with their bank for the annual plan refund. "
               "Send them the invitation for next month's webinar.")


@pytest.fixture(scope="module")
def emb() -> Any:
    return build_embedder("wordllama")


def _snap(emb: Any, guides: dict[str, tuple[str, list[str], str]]) -> Snapshot:
    rows = [Guideline(id=f"g{i}", org_id="o", name=name, description=desc, content=content, tags=[],
                      trigger_keywords=kw, version=1, created_at=NOW, updated_at=NOW)
            for i, (name, (desc, kw, content)) in enumerate(guides.items())]
    return Snapshot.build([prepare(r, emb) for r in rows])


def test_a_task_with_two_intents_gets_both_guidelines(emb: Any) -> None:
    snap = _snap(emb, GUIDES)
    q = emb.embed([TWO_INTENTS])[0]
    assert len(clauses(TWO_INTENTS)) == 2
    # the whole message alone: the second intent scores well under the first and is dropped by the relative rule
    assert [m.guideline.name for m in route(snap, TWO_INTENTS, q)] == ["Refunds"]
    assert [m.guideline.name for m in route(snap, TWO_INTENTS, q, embed=emb.embed)] == ["Refunds", "Webinars"]
    single = "Forward the chargeback notice from the customer's bank to finance today."
    assert clauses(single) == []
    assert [m.guideline.name for m in route(snap, single, emb.embed([single])[0], embed=emb.embed)] == ["Refunds"]


def test_a_trigger_keyword_selects_its_guideline_below_the_absolute_floor(emb: Any) -> None:
    snap = _snap(emb, {
        "B2B sales playbook": ("Selling to business buyers.", ["B2B"],
                               "## Approach\nLead with ROI for the buying committee and propose a pilot."),
        "B2C consumer playbook": ("Selling to consumers.", ["B2C"],
                                  "## Approach\nLead with the first-order discount code and free returns."),
    })
    message = "Write Sam a two-line intro.\n\nKnown attributes (inferred): company_type: B2B"
    got = route(snap, message, emb.embed([message])[0], embed=emb.embed)
    assert [m.guideline.name for m in got] == ["B2B sales playbook"]
    assert got[0].score < SUPPLEMENTARY_MIN and got[0].priority == "critical"
    plain = "Write Sam a two-line intro."
    assert route(snap, plain, emb.embed([plain])[0]) == []  # no keyword, nothing relevant enough


def test_header_terms_match_word_forms(emb: Any) -> None:
    snap = _snap(emb, GUIDES)
    lex = snap.lexicon
    assert lex is not None
    names = [g.name for g in snap.guidelines]
    # "questionnaire" is in Security answers' description only; "invited" meets "Inviting" by its prefix
    assert lex.header_terms(["questionnair"])[names.index("Security answers")] == 1.0
    assert lex.header_terms(["invited"])[names.index("Webinars")] == 1.0
    assert lex.header_terms(["unrelated"]).max() == 0.0
