"""Scoped recall ranks by what a memory says, not by the record's own names (issue 15, fact coverage): the
subject-free cosine, answer kinds in the keyword part, and the topic readings recall relies on."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np

from memrelay.engine.adapters.embedding.factory import build_embedder
from memrelay.engine.domain.semantics import (
    answers_on,
    answers_role_of,
    newer_value_on,
    question_topics,
    replaced_topics,
    supersedes,
)
from memrelay.engine.memory.hybrid import keyword_scores
from memrelay.engine.memory.recall import (
    SubjectFree,
    answer_kinds,
    answer_kinds_asked,
    score_parts,
    strip_subject,
    subject_words,
)
from memrelay.engine.memory.score_calibration import calibration_for
from memrelay.engine.stores.identity import Identifiers
from memrelay.engine.stores.properties import Provenance
from tests.engine.test_memories import memorize, recall

SHORT = "At Orbis Metalworks, 9 KAMs."
PLACE = "Orbis Metalworks is a family-owned metal parts manufacturer in Gdansk, founded in 1994."


def test_strip_subject_drops_capitalised_names_only() -> None:
    words = subject_words(["Orbis Metalworks", "Ewa Lis", "Thistle & Loom"])
    assert strip_subject("Where is Orbis Metalworks based?", words) == "Where is based?"
    assert strip_subject("What is Ewa's role at Orbis?", words) == "What is role at ?"
    assert strip_subject("Who runs Thistle & Loom's wholesale?", words) == "Who runs wholesale?"
    assert (
        strip_subject("Which metalworks suppliers does Ewa use?", words)
        == "Which metalworks suppliers does use?"
    )


def test_subject_free_cosine_ranks_the_answer_over_a_short_mention_of_the_name() -> None:
    emb = build_embedder("wordllama")
    query = "Where is Orbis Metalworks based?"
    mem = emb.embed([SHORT, PLACE])
    plain = mem @ emb.embed([query])[0]
    assert plain[0] > plain[1]  # the static embedding: the shared name outweighs the answer
    names = ["Orbis Metalworks", "Ewa Lis"]
    vecs = emb.embed([strip_subject(query, subject_words(names)), *names])
    free = SubjectFree(vecs[0], vecs[1:]).cosines(mem)
    assert free is not None and free[1] > free[0]
    # a question that is nothing but the names has no subject-free reading
    only = emb.embed(["", *names])
    assert SubjectFree(only[0], only[1:]).cosines(mem) is None


def test_scoped_recall_answers_from_the_fact_not_the_name(api: Any, engine: Any) -> None:
    email = "ewa.lis@orbis-metalworks.example"
    engine.records.upsert(
        api.org_id,
        Identifiers(type="contact", email=email),
        {"first_name": "Ewa", "last_name": "Lis", "company_name": "Orbis Metalworks"},
        Provenance(source="crm"),
    )
    for text in (
        SHORT,
        "At Orbis Metalworks, his father still comes in on Fridays.",
        "At Orbis Metalworks, that's the 400-tonne press.",
        PLACE,
    ):
        memorize(api, text, email=email, type="contact", timestamp="2026-01-05T12:00:00Z")
    out = recall(api, "Where is Orbis Metalworks based?", email=email, limit=2, explain=True)["results"]
    assert out[0]["text"] == PLACE, [r["text"] for r in out]
    x = out[0]["explain"]
    assert x["subjectFreeCosine"] != x["rawCosine"]
    assert np.isclose(
        x["similarity"] + x["keyword"] + x["recency"] + x["supersession"], out[0]["score"], atol=1e-5
    )
    # a question naming only the record keeps the plain cosine (no subject-free reading)
    only = recall(api, "Orbis Metalworks", email=email, limit=5, explain=True)["results"]
    assert all(r["explain"]["subjectFreeCosine"] == r["explain"]["rawCosine"] for r in only)


def test_answer_kinds_are_keyword_terms_of_the_memories_holding_such_a_value() -> None:
    assert answer_kinds_asked("When is their budget round?") >= {"=when", "=money"}
    assert answer_kinds_asked("How many sales engineers do they have?") == {"=count"}
    assert answer_kinds_asked("Who runs the security review?") == {"=person"}
    assert answer_kinds_asked("Where is Helio located?") == {"=place"}
    assert answer_kinds_asked("Where do they keep customer notes today?") == frozenset()
    rows = [
        {"text": t}
        for t in (
            "Ewa Lis runs the security review.",
            "Sec gate: Amara Obi (CISO), 8 weeks.",
            "The budget decision lands in September.",
            "Eight engineers answer questionnaires.",
        )
    ]
    who = answer_kinds(rows, frozenset({"=person"}), frozenset({"ewa", "lis"}))
    assert who == [frozenset(), {"=person"}, frozenset(), frozenset()]  # the record's own name is no answer
    when = answer_kinds(rows, frozenset({"=when", "=count"}), frozenset())
    assert "=when" in when[2] and "=count" in when[3] and "=when" not in when[0]


def test_answer_kind_lifts_the_memory_holding_the_value() -> None:
    rows = [
        {"text": "Ewa Lis wants a calmer quarter.", "ts": datetime(2026, 1, 5, tzinfo=UTC)},
        {
            "text": "Ewa Lis expects the rollout to start in September.",
            "ts": datetime(2026, 1, 5, tzinfo=UTC),
        },
    ]
    sims = np.array([0.3, 0.3])
    cal = calibration_for("wordllama:l2_supercat_256")
    parts = score_parts("When does Ewa want it?", rows, sims, cal, subject=frozenset({"ewa", "lis"}))
    assert parts["keywordMatch"][1] > parts["keywordMatch"][0]
    assert parts["score"][1] > parts["score"][0]
    assert np.allclose(
        parts["similarity"] + parts["keyword"] + parts["recency"] + parts["supersession"], parts["score"]
    )


def test_hyphenated_words_match_their_parts() -> None:
    got = keyword_scores("Who owns it day to day?", ["Day-to-day owner: Tomas Vidal.", "The owner is away."])
    assert got[0] > got[1]


def test_topic_readings_used_by_recall() -> None:
    assert question_topics("Where is Kestrel District Council?") == {"location:hq"}
    assert "location:hq" in question_topics("Where is Corvid Bio located?")
    assert "funding" not in question_topics("When is the budget round?")
    assert "competitor" in question_topics("Which suppliers are they also speaking to?")
    place = "Corvid is a clinical-stage biotechnology company in Leiden, developing antibodies."
    assert answers_on(place, frozenset({"location:hq"}))
    # a slot answered by a name needs the name: "the product database" answers no database question
    assert not answers_on(
        "Ravi wants us to read tickets from the helpdesk, not from the product database.",
        frozenset({"technology:database"}),
    )
    # whose role: another person's title is no answer to "What is Ewa's role?"
    assert answers_role_of("Ewa Lis is the Commercial Director at Orbis.", frozenset({"ewa", "lis"}))
    assert not answers_role_of(
        "At Orbis, People: CEO Jan Nowicki (son of the founder).", frozenset({"ewa", "lis"})
    )
    # the CRM a team now tracks customers in is the newer answer on its current solution
    fam = question_topics("What do they use today to track customer context?")
    assert newer_value_on(
        "The team keeps account notes in spreadsheets.",
        "Ewa says HubSpot has been live since March.",
        fam,
    )


def test_a_decision_maker_still_named_in_the_newer_statement_is_not_superseded() -> None:
    old = "Omar Haddad signs off on new vendors."
    both = "The CFO Ines Moreau now signs off together with Omar."
    assert replaced_topics(old, both, cosine=0.6) == [] and supersedes(old, both, cosine=0.6) == []
    # replaced when the newer statement no longer names him, or names him as a former decision maker
    assert replaced_topics(old, "Ines Moreau now signs off on new vendors.", cosine=0.6) == ["decision_maker"]
    assert replaced_topics(
        "Tom Reed has the final say at Lumen Systems.",
        "Final sign-off moved from Tom Reed to Priya Nair at Lumen Systems.",
        cosine=0.6,
    ) == ["decision_maker"]
    # a value both statements read (the company) does not keep a replaced person
    assert replaced_topics(
        "Tom Reed has the final say at Lumen Systems.",
        "Priya Nair has the final say at Lumen Systems.",
        cosine=0.6,
    ) == ["decision_maker"]
