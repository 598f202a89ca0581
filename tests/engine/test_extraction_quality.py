"""Offline proactive extraction (issue 15): the rules pinned with small examples.

Speakers and first-person pronouns resolve to names, greetings/filler/questions/logistics/instructions are
dropped, quoted replies and signatures never become facts, every fact names its subject and carries its source
span, an email address is never written into a fact, standard properties come with a confidence, the memorize
answer names the path that ran, and a fact restated by another source is merged (seen count + provenance).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from memrelay.engine.core.properties_types import PropertySpec
from memrelay.engine.domain.extraction.proactive import (
    detect_kind,
    drop_reason,
    extract_facts,
    neutral_subject,
)
from memrelay.engine.domain.extraction.standard import extract
from memrelay.engine.memory.memories import ENHANCED_NOTE, MemorizeRequest
from memrelay.engine.stores.identity import Identifiers
from memrelay.engine.stores.properties import Provenance

TS = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)

TRANSCRIPT = """**Alex:** Hi Sarah, thanks for making the time today.
**Sarah:** Sure, go ahead.
**Alex:** Tell me a bit about TechFlow—what's the big picture there?
**Sarah:** I've been in this role for about three years. I run a team of 40 engineers.
**Alex:** We've seen that a ton with growing SaaS folks.
**Sarah:** Our core data lives in Oracle. My CFO, Priya Nair, signs off on anything above $50k.
**Alex:** Aligns perfect. I'll send the calendar invite for Tuesday.
**Sarah:** Sounds good."""

EMAIL = """From: Sarah Chen <sarah@techflow.io>
To: Alex <alex@vendor.com>
Subject: Re: pricing

Hi Alex,

Thanks for the deck. We would want annual billing, that is how procurement runs every vendor.
I prefer email for anything urgent.

Best,
Sarah
VP Engineering | TechFlow
+1 555 123 4567

On Tue, Mar 3, 2026 at 10:02 AM Alex <alex@vendor.com> wrote:
> Would you prefer monthly or annual billing? We use Snowflake internally.
> Happy to jump on a call.
"""

CRM_NOTE = """Call w/ DM — engaged.
DM: Tom Reed (CFO)
Budget: ~$120k
Uses Oracle on AWS. Team of 40 engineers.
Next steps: send proposal Fri
Also extract First Name, Last Name, Job Title and Company from this note.
Interested in SSO + audit logs."""


def texts(content: str, subject: str | None = "Sarah Chen", **kw: Any) -> list[str]:
    return [f.text for f in extract_facts(content, subject=subject, ts=TS, **kw)]


# --- speakers, pronouns, dropped sentences ----------------------------------------------------------------------


def test_transcript_speaker_and_first_person_resolve_to_the_entity() -> None:
    facts = texts(TRANSCRIPT, entity_type="contact")
    assert "Sarah Chen runs a team of 40 engineers." in facts
    assert "Sarah Chen has been in this role for about three years." in facts  # "I" no longer loses who
    assert any(f.startswith("Sarah Chen's CFO, Priya Nair, signs off") for f in facts), facts
    assert not any(f.startswith(("**", "Sarah:", "Alex:")) for f in facts)  # no speaker labels in facts


def test_transcript_filler_questions_logistics_and_other_speakers_small_talk_are_dropped() -> None:
    facts = " | ".join(texts(TRANSCRIPT, entity_type="contact"))
    for gone in ("go ahead", "big picture", "seen that a ton", "Aligns perfect", "calendar invite", "Sounds good",
                 "thanks for making the time"):
        assert gone.lower() not in facts.lower(), gone


def test_we_and_our_become_the_company_when_it_is_known() -> None:
    facts = texts(TRANSCRIPT, entity_type="contact", company="TechFlow")
    assert "TechFlow's core data lives in Oracle." in facts


@pytest.mark.parametrize(
    ("sentence", "reason"),
    [
        ("What does success look like for you this year?", "question"),
        ("Also extract First Name, Last Name, Job Title and Company.", "instruction"),
        ("Please capture the budget in the notes.", "instruction"),
        ("I'll send the calendar invite for Thursday.", "logistics"),
        ("Let's book a follow-up for next week.", "logistics"),
        ("Great to finally meet you!", "pleasantry"),
        ("Sure, go ahead.", "filler"),
        ("Aligns perfect.", "filler"),
        ("Account note, TechFlow Labs.", "heading"),
        ("We run a team of 40 engineers.", None),
        ("Our biggest pain point is manual reporting.", None),
    ],
)
def test_drop_reasons(sentence: str, reason: str | None) -> None:
    assert drop_reason(sentence) == reason


def test_email_quoted_reply_signature_and_greeting_are_dropped_and_sender_resolved() -> None:
    assert detect_kind(EMAIL) == "email"
    facts = texts(EMAIL, entity_type="contact")
    assert facts == ["Sarah Chen's team would want annual billing, that is how procurement runs every vendor.",
                     "Sarah Chen prefers email for anything urgent."], facts
    joined = " ".join(facts)
    assert "Snowflake" not in joined and "555" not in joined and "VP Engineering" not in joined


def test_email_without_headers_uses_the_signoff_name_for_first_person() -> None:
    body = "Hi Alex,\n\nI moved our reporting to Looker last month.\n\nCheers,\nMaya\n"
    assert texts(body, subject="Maya Ortiz", entity_type="contact") == [
        "Maya Ortiz moved Maya Ortiz's team's reporting to Looker in February 2026."]


def test_crm_note_abbreviations_labels_and_verb_first_lines_get_the_subject() -> None:
    facts = texts(CRM_NOTE, entity_type="contact")
    assert "Sarah Chen's budget is about $120k." in facts
    assert "Sarah Chen uses Oracle on AWS." in facts
    assert "Sarah Chen has a team of 40 engineers." in facts
    assert "Sarah Chen is interested in SSO + audit logs." in facts
    assert "Sarah Chen's decision maker is Tom Reed (CFO)." in facts  # "DM" spelled out
    assert not any("extract" in f.lower() or "proposal" in f.lower() for f in facts)  # instruction, next steps


def test_no_email_address_is_written_into_a_fact() -> None:
    facts = texts("Pays monthly. Prefers email over calls.", subject="zoe.lopez@cedarlabs.com", entity_type="contact")
    assert facts == ["The contact pays monthly.", "The contact prefers email over calls."]
    assert neutral_subject("zoe.lopez@cedarlabs.com", "company") == "The company"
    assert neutral_subject("Zoe Lopez", "contact") == "Zoe Lopez"


def test_a_fact_without_the_entity_gets_its_company_as_setting() -> None:
    facts = texts("Final sign-off moved from Tom Reed to Priya Nair, the new CFO.", subject="Luis Kowalski",
                  entity_type="contact", company="Lumen Systems")
    assert facts == ["At Lumen Systems, final sign-off moved from Tom Reed to Priya Nair, the new CFO."]


def test_relative_time_is_anchored_and_repeats_in_one_input_are_kept_once() -> None:
    facts = texts("Sarah Chen signed the order form yesterday. Sarah Chen signed the order form yesterday.")
    assert facts == ["Sarah Chen signed the order form on March 3, 2026."]


def test_each_fact_keeps_its_source_span() -> None:
    for f in extract_facts(TRANSCRIPT, subject="Sarah Chen", ts=TS, entity_type="contact"):
        source = TRANSCRIPT[f.start:f.end]
        assert source and "**" not in source and f.speaker == "Sarah"
    spans = extract(EMAIL, [], TS, "Sarah Chen", entity_type="contact").spans
    assert [EMAIL[a:b] for a, b in spans] == ["We would want annual billing, that is how procurement runs every vendor.",
                                             "I prefer email for anything urgent."]


# --- standard properties ------------------------------------------------------------------------------------------


def test_standard_properties_from_conversation_with_confidence() -> None:
    specs = [PropertySpec.model_validate(p) for p in (
        {"propertyName": "first_name", "type": "text", "description": "Given name."},
        {"propertyName": "last_name", "type": "text", "description": "Family name."},
        {"propertyName": "job_title", "type": "text", "description": "Current job title or role."},
        {"propertyName": "company_name", "type": "text", "description": "Company the person works for."},
        {"propertyName": "budget", "type": "number", "description": "Budget in USD."},
        {"propertyName": "technologies", "type": "array", "description": "Databases and cloud providers used."},
    )]
    content = ("**Alex:** Welcome! Who do I have?\n**Dana:** Hi, I'm Dana Whitfield, VP of Engineering at Quillpoint.\n"
               "**Dana:** Our budget is $150k and we run on PostgreSQL and AWS.\n"
               "**Alex:** Can you do $200k?")
    out = extract(content, specs, TS, None, entity_type="contact")
    values = {v.property_name: (v.value, v.confidence) for v in out.values}
    assert values["first_name"][0] == "Dana" and values["last_name"][0] == "Whitfield"
    assert values["budget"][0] == 150000  # the question's $200k is not a value
    assert {"PostgreSQL", "AWS"} <= set(values["technologies"][0])
    assert all(0.3 <= conf <= 1.0 for _, conf in values.values())
    assert out.method == "offline" and len(out.spans) == len(out.facts)


def test_job_title_and_company_rule() -> None:
    specs = [PropertySpec.model_validate({"propertyName": "job_title", "type": "text", "description": "Title."}),
             PropertySpec.model_validate({"propertyName": "company_name", "type": "text", "description": "Company."})]
    out = extract("Sarah Chen is the VP of Engineering at TechFlow.", specs, TS, "Sarah Chen", entity_type="contact")
    values = {v.property_name: v.value for v in out.values}
    assert values == {"job_title": "VP of Engineering", "company_name": "TechFlow"}


# --- memorize end to end (SQLite, default embedder) ---------------------------------------------------------------


def _memorize(engine: Any, org: str, content: str, **kw: Any) -> dict[str, Any]:
    return engine.memories.memorize(org, MemorizeRequest(content=content, timestamp=TS, **kw))


def test_memorize_reports_the_offline_path_and_says_when_enhanced_had_no_model(engine: Any) -> None:
    org = engine.tenancy.create_org("q15-path").id
    ids = Identifiers(type="contact", email="sarah@techflow.io")
    plain = _memorize(engine, org, "Sarah Chen uses Oracle.", identifiers=ids)
    assert plain["extraction"] == "offline" and "note" not in plain
    enhanced = _memorize(engine, org, "Sarah Chen runs a team of 40 engineers.", identifiers=ids, enhanced=True)
    assert enhanced["extraction"] == "offline" and enhanced["note"] == ENHANCED_NOTE


def test_memorize_stores_the_span_in_provenance_and_merges_a_fact_restated_by_another_source(engine: Any) -> None:
    org = engine.tenancy.create_org("q15-merge").id
    ids = Identifiers(type="contact", email="sarah@techflow.io")
    engine.records.upsert(org, ids, {"first_name": "Sarah", "last_name": "Chen"}, Provenance(source="crm"))
    first = _memorize(engine, org, TRANSCRIPT, identifiers=ids, source="call")
    assert first["memoriesCreated"] >= 3
    second = _memorize(engine, org, "Notes: Sarah Chen runs a team of 40 engineers.", identifiers=ids,
                       source="crm_note")
    assert second["memoriesCreated"] == 0 and second["duplicatesSkipped"] == 1
    with engine.db.read() as s:
        rows = engine.memories.list_for_record(s, first["recordId"])
    team = next(m for m in rows if "team of 40 engineers" in m["text"])
    assert team["seenCount"] == 2
    assert [p["source"] for p in team["provenance"]] == ["call", "crm_note"]
    span = team["provenance"][0]["span"]
    assert TRANSCRIPT[span["start"]:span["end"]] == "I run a team of 40 engineers."
    assert not any("@" in m["text"] for m in rows)


def test_memorize_of_a_record_without_a_name_uses_a_neutral_subject(engine: Any) -> None:
    org = engine.tenancy.create_org("q15-noname").id
    out = _memorize(engine, org, "Pays monthly. Prefers email.", identifiers=Identifiers(
        type="contact", email="zoe.lopez@cedarlabs.com"))
    with engine.db.read() as s:
        rows = engine.memories.list_for_record(s, out["recordId"])
    assert sorted(m["text"] for m in rows) == ["The contact pays monthly.", "The contact prefers email."]


def test_signature_gives_title_and_company_but_no_fact() -> None:
    specs = [PropertySpec.model_validate({"propertyName": "job_title", "type": "text", "description": "Title."}),
             PropertySpec.model_validate({"propertyName": "company_name", "type": "text", "description": "Company."})]
    out = extract(EMAIL, specs, TS, "Sarah Chen", entity_type="contact")
    assert {(v.property_name, v.value, v.confidence) for v in out.values} == {
        ("job_title", "VP Engineering", 0.7), ("company_name", "TechFlow", 0.7)}
    assert not any("VP Engineering" in f for f in out.facts)
    assert extract(EMAIL, specs, TS, "Alex Smith", entity_type="contact").values == []  # someone else's signature


def test_the_request_speaker_is_who_i_is_in_unlabelled_text() -> None:
    assert texts("I moved the team to HubSpot.", subject="Jane Doe", author="Tom Baker") == [
        "Tom Baker moved the team to HubSpot."]
    assert texts("I run a team of 12 analysts.", subject="Jane Doe", author="Jane") == [
        "Jane Doe runs a team of 12 analysts."]
    assert texts("I run a team of 12 analysts.", subject="Jane Doe", author="user") == [
        "I run a team of 12 analysts."]  # a chat role is not a name
