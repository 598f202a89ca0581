"""Fresh facts first on the topic question: a memory speaking to the topic a question asks about wins over other
sentences of the same note that merely mention the entity (issue 15, item 2)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from memrelay.engine.domain.semantics import question_topics, statement_topics
from memrelay.engine.memory.recall import score_parts, topic_matches
from memrelay.engine.memory.score_calibration import calibration_for
from tests.engine.test_memories import memorize, recall

PASSING = ("{who} asked for a refreshed security summary for their auditors. {fact} {who} forwarded our one-pager "
           "to two colleagues in finance without being asked. {who} likes to keep meetings short.")


@pytest.mark.parametrize(("who", "old", "fact", "question", "fresh"), [
    ("Marcus Raman", "Marcus Raman is VP Marketing at Quillpoint Digital.",
     "Marcus Raman is now the CMO at Quillpoint Digital.", "What is Marcus Raman's role?", "CMO"),
    ("Priya Nair", "Tom Reed holds the budget and has the final say at Lumen Systems.",
     "Final sign-off moved from Tom Reed to Priya Nair at Lumen Systems.", "Who is the decision maker at Lumen Systems?",
     "Priya Nair"),
])
def test_fresh_fact_with_passing_mentions_ranks_first_for_its_topic_question(api: Any, who: str, old: str, fact: str,
                                                                             question: str, fresh: str) -> None:
    email = f"{who.split()[0].lower()}@topic.example"
    memorize(api, old, email=email, timestamp="2026-01-05T12:00:00Z")
    memorize(api, PASSING.format(who=who, fact=fact), email=email, timestamp="2026-04-05T12:00:00Z")
    res = recall(api, question, email=email, limit=3, explain=True)["results"]
    assert fresh in res[0]["text"], [r["text"] for r in res]
    assert res[0]["explain"]["topicMatch"] == 1.0 and all(r["explain"]["topicMatch"] == 0.0 for r in res[1:])
    stale = recall(api, question, email=email, limit=10, includeSuperseded=True)["results"]
    assert any(r["text"] == old and r.get("superseded") for r in stale)  # history kept, shown on request


def test_question_topics_name_what_is_asked() -> None:
    assert question_topics("Where is Kestrel Works hosted?") == {"technology:cloud"}
    assert question_topics("What is Marcus Raman's role?") == {"role"}
    assert question_topics("Which database does TechFlow use?") == {"technology:database", "technology:data_warehouse"}
    assert question_topics("Summarise the last call.") == frozenset()
    assert "role" in statement_topics("Marcus Raman is now the CMO at Quillpoint Digital.")


def test_topic_match_lifts_only_memories_on_the_asked_topic() -> None:
    rows: list[dict[str, Any]] = [{"text": "Kestrel Works left Google Cloud and now runs on AWS."},
                                  {"text": "Kestrel Works would like a joint success plan for the next two quarters."}]
    assert topic_matches("Where is Kestrel Works hosted?", rows).tolist() == [1.0, 0.0]
    sims = np.array([0.6, 0.6])
    parts = score_parts("Where is Kestrel Works hosted?", rows, sims, calibration_for("wordllama:l2_supercat_256"))
    assert parts["score"][0] > parts["score"][1] and parts["keywordMatch"][0] == 1.0
    plain = score_parts("Where is Kestrel Works hosted?", rows, sims, calibration_for("wordllama:l2_supercat_256"),
                        hybrid=False)
    assert plain["topicMatch"].tolist() == [0.0, 0.0] and plain["score"][0] == plain["score"][1]


OLD_NOTE = "Acme runs on Oracle and has a team of nine developers."
FRESH = "Acme migrated from Oracle to PostgreSQL."


def test_note_with_a_replaced_claim_stays_but_yields_its_topic_to_the_fresh_fact(api: Any) -> None:
    email = "dana@acme.example"
    memorize(api, OLD_NOTE, email=email, timestamp="2026-01-05T12:00:00Z")
    memorize(api, FRESH, email=email, timestamp="2026-04-05T12:00:00Z")
    res = recall(api, "Which database does Acme use?", email=email, limit=5, explain=True)["results"]
    assert FRESH in res[0]["text"], [r["text"] for r in res]
    old = next(r for r in res if r["text"] == OLD_NOTE)  # still visible: it holds the team size
    assert not old.get("superseded")
    assert old["explain"]["staleTopic"] is True and old["explain"]["topicMatch"] == 0.0
    assert old["explain"]["supersession"] < 0 and res[0]["explain"]["staleTopic"] is False
    team = recall(api, "How many developers are on Acme's team?", email=email, limit=5, explain=True)["results"]
    assert team[0]["text"] == OLD_NOTE, [r["text"] for r in team]
    assert team[0]["explain"]["staleTopic"] is False and team[0]["explain"]["supersession"] == 0.0


def test_stale_topic_demotes_only_on_the_asked_topic() -> None:
    rows: list[dict[str, Any]] = [{"text": OLD_NOTE, "staleTopics": ("technology:database",)}, {"text": OLD_NOTE}]
    sims = np.array([0.6, 0.6])
    cal = calibration_for("wordllama:l2_supercat_256")
    db = score_parts("Which database does Acme use?", rows, sims, cal)
    assert db["staleTopic"].tolist() == [1.0, 0.0] and db["topicMatch"][0] == 0.0
    assert db["supersession"][0] < 0 == db["supersession"][1] and db["score"][0] < db["score"][1]
    team = score_parts("How many developers are on Acme's team?", rows, sims, cal)
    assert team["staleTopic"].tolist() == [0.0, 0.0] and team["score"][0] == team["score"][1]
