"""Fresh facts first on a rep's topic question (issue 15, item 2): the question's topic is read from its phrasing,
statements are read broadly for what they answer (ranking only), the memory answering the asked topic outranks
sentences that merely name the account, and the newest statement on the topic answers first — while supersession,
which hides a memory, keeps its strict cues."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from memrelay.engine.domain.semantics import (
    answer_topics,
    answers_on,
    newer_value_on,
    question_topics,
    replaced_topics,
    retires_value_on,
    topics_of,
)
from memrelay.engine.memory.recall import score_parts
from memrelay.engine.memory.score_calibration import calibration_for
from tests.engine.test_memories import memorize, recall

CAL = calibration_for("wordllama:l2_supercat_256")
T_OLD = datetime(2026, 1, 10, tzinfo=UTC)
T_NEW = T_OLD + timedelta(days=90)


@pytest.mark.parametrize(
    ("question", "family"),
    [
        ("When does Vantor Labs want to go live?", "timeline"),
        ("When is Norwick planning to roll this out?", "timeline"),
        ("Where does the Orbis deal stand?", "deal_stage"),
        ("How pressing is this for Halden Group?", "urgency"),
        ("How many people work at Corrib Systems?", "headcount"),
        ("What problem is Tessaly trying to solve?", "pain_point"),
        ("Who makes the buying decision at Brill & Co?", "decision_maker"),
        ("Who is Marlow Freight comparing us against?", "competitor"),
        ("How is Quent Analytics funded?", "funding"),
        ("Which plan is Norwick on?", "pricing_plan"),
    ],
)
def test_question_phrasings_name_their_topic(question: str, family: str) -> None:
    assert family in question_topics(question)


def test_names_in_a_question_ask_nothing() -> None:
    asked = question_topics("What does Pellham Family Office use today to track deals?")
    assert "current_solution" in asked and "location:office" not in asked  # "Office" is part of the name
    assert "pricing_plan" not in question_topics("When is Norwick planning to roll this out?")
    assert question_topics("Summarise the last call with Norwick.") == frozenset()


@pytest.mark.parametrize(
    ("text", "key", "current"),
    [
        (
            "Pavel Novak now owns the software budget and makes the purchasing decisions.",
            "decision_maker",
            {"pavel novak"},
        ),
        ("The support team shrank from nine to four after the reorg.", "team_size", {"4"}),
        ("We're in security review with Halden now.", "deal_stage", {"security_review"}),
        ("Halden was acquired by a logistics group in March.", "funding", {"acquired"}),
        ("She has €12,000 available for the rollout.", "amount:budget", {"12000"}),
        ("The rollout is postponed to next spring.", "timeline", {"next spring"}),
        ("The project is on hold until the next budget cycle.", "urgency", {"low"}),
        ("The evaluation moved on to Zentrix after the first workshop.", "competitor", {"zentrix"}),
    ],
)
def test_broad_cues_read_what_a_statement_answers_but_never_supersede(
    text: str, key: str, current: set[str]
) -> None:
    assert current <= answer_topics(text)[key].current, answer_topics(text)
    assert key not in topics_of(text)  # supersession (which hides memories) keeps the strict cues


def test_broad_cues_keep_past_events_and_names_apart() -> None:
    assert "timeline" not in answer_topics("A UK launch was announced last autumn.")
    dm = answer_topics("Tom Reed left the company in June; Dana Cruz now makes the buying decisions.")[
        "decision_maker"
    ]
    assert dm.current == {"dana cruz"} and dm.former == {"tom reed"}
    assert "team_size" not in answer_topics(
        "Corrib's team is about 240 employees."
    )  # the company, not a team
    focus = answer_topics("Ilse's focus has shifted to churn prediction.")["pain_point"]
    assert {"churn", "prediction"} <= focus.current


def test_a_ranking_signal_is_not_a_supersession() -> None:
    old, new = "Tom Reed makes the purchasing decisions.", "Dana Cruz makes the purchasing decisions."
    assert replaced_topics(old, new, cosine=0.9) == []  # nothing is hidden on broad cues ...
    assert newer_value_on(old, new, frozenset({"decision_maker"}))  # ... but the newer one answers first


def test_newer_value_on_the_asked_topic() -> None:
    stage = frozenset({"deal_stage"})
    assert newer_value_on(
        "Stage: demo scheduled for Orbis.",
        "After the demo scheduled in May, the Orbis deal is closed lost.",
        stage,
    )
    db = frozenset({"technology:database"})
    assert not newer_value_on("Orbis runs on PostgreSQL.", "Orbis keeps its orders in PostgreSQL.", db)
    assert not newer_value_on(
        "Orbis runs on PostgreSQL.", "Orbis moved to Snowflake.", stage
    )  # another topic


def test_a_value_named_as_former_is_retired_and_answers_nothing() -> None:
    hq = frozenset({"location:hq"})
    assert retires_value_on(
        "Only two sales people relocated; the archive stayed behind in Porto.",
        "Quent moved its headquarters from Porto to Lyon.",
        hq,
    )
    assert not retires_value_on(
        "Quent moved its headquarters from Porto to Lyon.",
        "Quent moved its headquarters from Porto to Lyon.",
        hq,
    )
    db = frozenset({"technology:database"})
    assert not answers_on("At Quent, the old Oracle box was switched off in May.", db)
    assert answers_on("Quent now runs on PostgreSQL.", db)


def _row(text: str, ts: datetime, record: str = "rec_a") -> dict[str, Any]:
    return {"text": text, "ts": ts, "recordId": record}


def test_the_answer_on_the_asked_topic_outranks_a_closer_sentence_naming_the_account() -> None:
    rows = [
        _row("At Orbis Freight, the pilot starts on Monday with two depots.", T_NEW),
        _row("Orbis Freight analytics now runs on PostgreSQL.", T_NEW),
    ]
    parts = score_parts(
        "Which database does Orbis Freight use?", rows, np.array([0.75, 0.35]), CAL, now=T_NEW.timestamp()
    )
    assert parts["score"][1] > parts["score"][0] and parts["topicLift"][1] > 0 == parts["topicLift"][0]
    total = parts["similarity"] + parts["keyword"] + parts["recency"] + parts["supersession"]
    assert (
        np.allclose(total, parts["score"]) and parts["keyword"][1] >= parts["topicLift"][1]
    )  # the lift is keyword's
    plain = score_parts(
        "Which database does Orbis Freight use?",
        rows,
        np.array([0.75, 0.35]),
        CAL,
        hybrid=False,
        now=T_NEW.timestamp(),
    )
    assert plain["score"][0] > plain["score"][1] and not plain["topicLift"].any()


def test_the_newest_statement_on_the_topic_answers_first_within_one_record_only() -> None:
    question = "Who makes the buying decision at Halden Group?"
    old = "At Halden Group, Tom Reed makes the purchasing decisions."
    new = "At Halden Group, Dana Cruz now owns the software budget and makes the purchasing decisions."
    sims = np.array([0.7, 0.5])
    parts = score_parts(question, [_row(old, T_OLD), _row(new, T_NEW)], sims, CAL, now=T_NEW.timestamp())
    assert parts["staleTopic"].tolist() == [1.0, 0.0] and parts["score"][1] > parts["score"][0]
    assert parts["supersession"][0] < 0 and parts["topicMatch"][0] == 0.0
    apart = score_parts(
        question, [_row(old, T_OLD, "rec_a"), _row(new, T_NEW, "rec_b")], sims, CAL, now=T_NEW.timestamp()
    )
    assert apart["staleTopic"].tolist() == [0.0, 0.0]  # another record's statement outdates nothing


OLD_NOTE = (
    "Account review, Halden Group. Halden Group runs twelve depots in the north. Tom Reed makes the "
    "purchasing decisions for all software. The warehouse team still prints pick lists every morning."
)
NEW_NOTE = (
    "Follow-up, Halden Group. Halden Group is opening two more depots this year. Tom Reed left the company "
    "in June, and Dana Cruz now owns the software budget. Halden Group wants a weekly usage report."
)


def test_fresh_decision_maker_first_and_the_old_note_stays_visible(api: Any) -> None:
    email = "ops@halden.example"
    memorize(api, OLD_NOTE, email=email, timestamp=T_OLD.isoformat())
    memorize(api, NEW_NOTE, email=email, timestamp=T_NEW.isoformat())
    res = recall(api, "Who makes the buying decision at Halden Group?", email=email, limit=10, explain=True)[
        "results"
    ]
    assert "Dana Cruz" in res[0]["text"], [r["text"] for r in res]
    assert res[0]["explain"]["topicMatch"] == 1.0 and res[0]["explain"]["topicLift"] > 0
    old = [r for r in res if "Tom Reed makes" in r["text"]]
    assert old and not old[0].get("superseded")  # outranked on this question, never hidden


def test_only_a_replacement_retires_a_value() -> None:
    wh = frozenset({"technology:data_warehouse"})
    fact = "Analytics at Quent now runs entirely on Snowflake."
    assert not retires_value_on(
        fact, "Ilse wants our connector to read from Snowflake.", wh
    )  # no replacement named
    assert retires_value_on(fact, "Quent moved its analytics from Snowflake to BigQuery.", wh)


def test_vendors_in_general_are_no_vendor_slot() -> None:
    assert "vendor" not in topics_of("Marcus Bell, the CISO, has to approve any new vendor.")
    assert "vendor" not in topics_of("Vendor review at Orbis takes eight to ten weeks.")
    assert "vendor" in topics_of("Their payroll vendor is Gusto.")
    old = "Orbis's CISO, Marcus Bell, has to approve any new vendor."
    new = "The decision maker is CISO Marcus Bell (vendor approval); the CRO is Jennifer Alvarez."
    assert replaced_topics(old, new, cosine=0.6) == []  # nothing about who their vendor is: nothing to hide
