"""Fresh facts first (issue 15): every CRM topic that changes supersedes, also when the newer statement names the
old value in passing; different topics, additive or non-contradicting statements never do; the superseded memory
stays in history and comes back only on request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from memrelay.engine.domain.extraction.proactive import extract_facts
from memrelay.engine.domain.semantics import (
    contradicts,
    other_claims,
    replaced_topics,
    supersedes,
    topic_label,
    topic_of,
    topics_of,
)
from memrelay.engine.memory.memories import MemorizeRequest
from memrelay.engine.memory.recall import RecallRequest
from memrelay.engine.stores.identity import Identifiers
from memrelay.engine.stores.properties import Provenance

OLD_TS = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
NEW_TS = OLD_TS + timedelta(days=90)

# topic, older statement, newer statement (the passing-mention form where natural)
SUPERSEDING = [
    ("technology:database", "Pine Robotics runs its core ledger on Oracle.",
     "Pine Robotics migrated from Oracle to PostgreSQL last quarter."),
    ("technology:database", "Pine Robotics keeps customer data in MySQL.", "Pine Robotics now uses MongoDB."),
    ("technology:cloud", "Acme hosts everything on AWS.", "Acme left AWS and now runs on Azure."),
    ("team_size", "Grace runs a team of 14 engineers.", "Grace's team grew from 14 to 31 engineers after the reorg."),
    ("deal_stage", "The Acme deal is in discovery stage.", "The Acme deal moved from discovery to negotiation stage."),
    ("amount:budget", "Acme's budget for the project is $90k.", "Acme's budget went from $90k to $140k."),
    ("decision_maker", "The final decision at Acme sits with Tom Reed.",
     "Final sign-off moved from Tom Reed to Priya Nair, the new CFO."),
    ("timeline", "Acme targets go-live in Q2 2026.", "Acme's go-live slipped from Q2 2026 to Q4 2026."),
    ("competitor", "Acme's main competitor in this deal is Gong.",
     "Acme dropped Gong from the shortlist and is going with Clari."),
    ("urgency", "For Acme this project is a nice-to-have with no rush.",
     "This went from a nice-to-have to top priority for Acme after the audit."),
    ("current_solution", "Acme currently uses spreadsheets for forecasting.",
     "Acme replaced spreadsheets with Clari for forecasting."),
    ("headcount", "Acme has 420 employees.", "Acme grew from 420 to 510 employees this year."),
    ("pain_point", "Acme's biggest challenge is manual reporting.",
     "Acme's biggest challenge is now onboarding new reps."),
    ("technology:framework", "Acme's frontend is built on Angular.", "Acme rewrote its frontend from Angular to React."),
    ("funding", "Acme raised a $20M Series B.", "Acme closed a $45M Series C."),
    ("location:hq", "Acme is headquartered in Austin.", "Acme relocated its headquarters from Austin to Denver."),
    ("role:sarah", "Sarah Chen is VP Marketing at Acme.", "Sarah Chen was promoted from VP Marketing to CMO."),
    ("role:sarah", "Sarah Chen is VP Marketing at Acme.", "Sarah Chen is now the CMO at Acme."),
    ("renewal:date", "Acme's contract renewal is on March 3, 2027.", "Acme's renewal moved to June 1, 2027."),
    ("renewal:status", "Acme's renewal is at risk.", "Acme confirmed the renewal after the QBR."),
    ("billing_frequency", "Acme pays monthly by card.", "Acme switched from monthly to annual billing."),
    ("contact_preference", "Ravi prefers email for updates.", "Ravi now prefers phone calls instead of email."),
    ("location:office", "Priyanka works out of the Chicago office.",
     "Priyanka moved from the Chicago office to the Boston office."),
]

NOT_SUPERSEDING = [
    ("Maya asked about webhooks pricing for a team of 850 seats.",
     "Maya said Pine Robotics plans to hire 273 engineers in 2026."),  # a question and a plan: no claim replaced
    ("Acme has 250 employees.", "Acme plans to hire 60 engineers next year."),  # plan, not headcount
    ("Acme uses PostgreSQL.", "Acme also uses MongoDB for events."),  # additive
    ("Sarah Chen is VP Marketing.", "Sarah Chen's CFO is Priya Nair."),  # someone else's role
    ("Acme has 250 employees.", "Acme's budget is $120k."),  # different topics
    ("Acme runs a team of 40 engineers.", "Acme has 900 employees."),  # team size vs headcount
    ("Acme is headquartered in Austin.", "Acme's Austin headquarters hosted the workshop."),  # same place
    ("Tom Reed, Pine Robotics's CEO, signs off on anything above $50k.",
     "Marcus Oyelaran's decision maker is Tom Reed (CEO)."),  # the same person, owners differ
    ("Acme currently uses spreadsheets for forecasting.",
     "Reporting still runs through spreadsheets, which matches the pain we heard about manual reporting."),
    ("Sarah works out of the Chicago office.", "Acme hosted us at their office for a half-day workshop."),
    ("The renewal date is March 3, 2027.", "Acme renewed interest in the analytics add-on."),  # not a renewal
    ("Acme hosts everything on AWS.", "Acme uses AWS and PostgreSQL 15."),  # restates the value
]


@pytest.mark.parametrize(("topic", "old", "new"), SUPERSEDING)
def test_each_topic_supersedes(topic: str, old: str, new: str) -> None:
    assert topic in topics_of(old) and topic in topics_of(new), (topics_of(old), topics_of(new))
    assert contradicts(old, new, cosine=0.5)
    assert not contradicts(new, new, cosine=1.0)  # a restatement never replaces itself


@pytest.mark.parametrize(("old", "new"), NOT_SUPERSEDING)
def test_no_false_supersession(old: str, new: str) -> None:
    assert not contradicts(old, new, cosine=0.5)
    assert not contradicts(new, old, cosine=0.5)


def test_role_change_is_one_topic_the_person_role() -> None:
    assert topic_of("Sarah Chen was promoted to CMO.") is not None
    assert "role:sarah" in topics_of("Sarah Chen is VP Marketing.")
    assert "role:sarah" in topics_of("Sarah Chen was promoted to CMO.")


def test_passing_mention_is_a_former_value() -> None:
    values = topics_of("Pine Robotics migrated from Oracle to PostgreSQL last quarter.")["technology:database"]
    assert values.current == {"postgresql"} and values.former == {"oracle"}


def test_topic_label_names_the_topic() -> None:
    assert topic_label("Final sign-off moved from Tom Reed to Priya Nair.") == "decision maker"
    assert topic_label("Jane loves hiking on weekends.") is None


# --- through memorize and recall (SQLite, default embedder) -------------------------------------------------------


def _memorize(engine: Any, org: str, email: str, content: str, ts: datetime) -> dict[str, Any]:
    return engine.memories.memorize(org, MemorizeRequest(content=content, timestamp=ts,
                                                         identifiers=Identifiers(type="contact", email=email)))


def test_newer_note_supersedes_with_passing_mention_and_history_is_kept(engine: Any) -> None:
    org = engine.tenancy.create_org("q15-fresh").id
    email = "maya@pinerobotics.example"
    engine.records.upsert(org, Identifiers(type="contact", email=email),
                          {"first_name": "Maya", "last_name": "Ortiz", "company_name": "Pine Robotics"},
                          Provenance(source="crm"))
    old = _memorize(engine, org, email, "Pine Robotics runs its core ledger on Oracle. Maya asked about webhooks "
                                        "pricing for a team of 850 seats. Maya Ortiz is VP Marketing at Pine Robotics.",
                    OLD_TS)
    new = _memorize(engine, org, email, "Pine Robotics migrated from Oracle to PostgreSQL last quarter. Maya said "
                                        "Pine Robotics plans to hire 273 engineers in 2026. Maya Ortiz was promoted "
                                        "from VP Marketing to CMO.", NEW_TS)
    assert len(new["superseded"]) == 2 and old["superseded"] == []
    with engine.db.read() as s:
        live = [m["text"] for m in engine.memories.list_for_record(s, new["recordId"])]
        every = engine.memories.list_for_record(s, new["recordId"], include_superseded=True)
    hidden = sorted(m["text"] for m in every if m["supersededBy"])
    assert hidden == ["Maya Ortiz is VP Marketing at Pine Robotics.", "Pine Robotics runs its core ledger on Oracle."]
    assert any("850 seats" in t for t in live)  # a true, unrelated fact is never hidden
    ids = Identifiers(type="contact", email=email)
    hits = engine.recall.smart_recall(org, RecallRequest(query="What database does Pine Robotics use?", limit=5,
                                                         identifiers=ids))["results"]
    assert hits and not any("ledger on Oracle" in h["text"] for h in hits)
    with_history = engine.recall.smart_recall(org, RecallRequest(query="What database does Pine Robotics use?",
                                                                 limit=20, identifiers=ids,
                                                                 includeSuperseded=True))["results"]
    assert any(h["text"] == "Pine Robotics runs its core ledger on Oracle." and h.get("superseded")
               for h in with_history)


def test_an_older_note_memorized_late_is_superseded_at_once(engine: Any) -> None:
    org = engine.tenancy.create_org("q15-late").id
    email = "ravi@tessellate.example"
    new = _memorize(engine, org, email, "Ravi now prefers phone calls instead of email.", NEW_TS)
    old = _memorize(engine, org, email, "Ravi prefers email for updates.", OLD_TS)
    assert old["superseded"] == old["memoryIds"] and new["superseded"] == []


# --- false supersessions on hand-written material (issue 15): a true fact is never hidden ------------------------

MULTI_CLAIM = ("Rebecca L. is CRO; the economic buyer is Tobias Brandt (CFO) for anything over 30k EUR. "
               "DPO Hanna has a veto.")


def test_a_memory_holding_other_claims_is_not_hidden() -> None:
    new = "At Clinora Health, Maria Vogel is CFO."
    assert "leadership:cfo" in replaced_topics(MULTI_CLAIM, new, cosine=0.5)  # the CFO did change ...
    assert supersedes(MULTI_CLAIM, new, cosine=0.5) == []  # ... but the DPO veto and the CRO are still true
    assert other_claims(MULTI_CLAIM, new, ["leadership:cfo"])
    # the single-claim statement of the old value is replaced and hidden
    assert supersedes("At Clinora Health, Tobias Brandt is CFO.", new, cosine=0.5) == ["leadership:cfo"]


@pytest.mark.parametrize(("old", "new"), [
    # a generic subject does not identify a person slot
    ("Jonah is the champion; the decision maker is Peter Lang, the CEO, who approves every new tool personally.",
     "At Hollowbrook Agritech, The CEO stepped back from operational purchases to focus on fundraising."),
    ("Ayodele Bankole would like a short deck to share with her CEO for the next planning cycle in November.",
     "The CEO asked Ayodele to fix it in Q2 2026."),
    # the same person, named differently
    ("Tobias Brandt, Clinora Health's CFO, approves anything over thirty thousand.",
     "At Clinora Health, Tobias Brandt is CFO."),
    ("Aulaverde's CEO, Diego Ferreyra, signs.", "At Aulaverde, our CEO Diego wants a price for 12 seats."),
    ("Gannet Mobility — Pablo Herrera, VP Partnerships.", "Pablo stays as VP Partnerships, now reporting to Paris."),
    ("At LedgerLoop, Arjun Mehta reports to the CRO, Oliver Grant.", "At LedgerLoop, EB: Oliver Grant (CRO)."),
    # two next-step lines are plans, not values of a topic
    ("At Brindle Health Records, next: share REST examples in C# and our audit log documentation.",
     "At Brindle Health Records, next: share Java client and Kubernetes deployment examples."),
    # the same date, written differently / refined
    ("At Haulwise Freight, go-live before 1 October is a hard line.", "At Haulwise Freight, go-live < 1 Oct, HARD."),
    ("At Clinora Health, realistically, live by end of June.",
     "At Clinora Health, deadline: live by 30 Jun for the Q3 renewal cohort."),
])
def test_no_false_supersession_on_handwritten_material(old: str, new: str) -> None:
    assert not contradicts(old, new, cosine=0.5), replaced_topics(old, new, cosine=0.5)
    assert not contradicts(new, old, cosine=0.5), replaced_topics(new, old, cosine=0.5)


def test_a_bare_role_names_nobody() -> None:
    assert not any(k.startswith("leadership:") for k in topics_of("At Hollowbrook Agritech, The CEO stepped back."))
    assert topics_of("Aulaverde's CTO, Valentina, is very opinionated.")["leadership:cto"].current == {"valentina"}
    assert topics_of("Jonah says the decision maker is Peter Lang, the CEO.")["leadership:ceo"].current == {"peter lang"}


def test_next_step_and_title_lines_are_not_memories() -> None:
    note = ("Brindle Health Records — discovery.\nNext: share REST examples in C#.\nTODO: send the audit log "
            "documentation.\nUses C# on .NET 4.8.")
    facts = [f.text for f in extract_facts(note, subject="Ruth Okafor", ts=OLD_TS, entity_type="contact")]
    assert facts == ["Ruth Okafor uses C# on .NET 4.8."]


def test_multi_claim_memory_stays_visible_and_records_the_stale_topic(engine: Any) -> None:
    org = engine.tenancy.create_org("q15-multi").id
    email = "rebecca@clinora.example"
    engine.records.upsert(org, Identifiers(type="contact", email=email),
                          {"first_name": "Rebecca", "last_name": "Lindqvist", "company_name": "Clinora Health"},
                          Provenance(source="crm"))
    old = _memorize(engine, org, email, MULTI_CLAIM + "\n\nAt Clinora Health, Tobias Brandt is CFO.", OLD_TS)
    new = _memorize(engine, org, email, "At Clinora Health, the economic buyer is now Maria Vogel, the new CFO.",
                    NEW_TS)
    with engine.db.read() as s:
        every = {m["text"]: m for m in engine.memories.list_for_record(s, new["recordId"], include_superseded=True)}
    assert len(old["memoryIds"]) >= 3 and len(new["superseded"]) == 1  # extraction may split the claims further
    assert every["At Clinora Health, Tobias Brandt is CFO."]["supersededBy"] == new["memoryIds"][0]
    buyer = next(m for t, m in every.items() if "economic buyer" in t and "Tobias" in t)
    assert buyer["supersededBy"] is None  # it also says who the CRO is and the 30k threshold: never hidden
    assert any("leadership:cfo" in p.get("staleTopics", []) and p.get("supersededBy") == new["memoryIds"][0]
               for p in buyer["provenance"])
    assert all(m["supersededBy"] is None for t, m in every.items() if "veto" in t)
