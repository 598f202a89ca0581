"""Offline proactive extraction (issue 15, item 1): recorder formats, signatures, fragments and multi-claim
sentences. Each rule is pinned with a small invented example."""

from __future__ import annotations

from datetime import UTC, datetime

from memrelay.engine.domain.extraction.proactive import detect_kind, drop_reason, extract_facts

TS = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)


def texts(
    content: str, subject: str | None = "Dana Reyes", company: str | None = "Brightpath Labs"
) -> list[str]:
    return [
        f.text for f in extract_facts(content, subject=subject, ts=TS, entity_type="contact", company=company)
    ]


def test_numbered_speaker_turns_name_the_speaker() -> None:
    content = (
        "Speaker 1 (Tom, Vendorly): How big is the team?\n"
        "Speaker 2 (Dana Reyes): I manage eleven recruiters in Leeds.\n"
        "Speaker 1 (Tom, Vendorly): Great.\n"
    )
    assert detect_kind(content) == "transcript"
    facts = extract_facts(
        content, subject="Dana Reyes", ts=TS, entity_type="contact", company="Brightpath Labs"
    )
    assert [f.text for f in facts] == ["Dana Reyes manages eleven recruiters in Leeds."]
    assert facts[0].speaker == "Dana Reyes"
    assert not any("Speaker" in t for t in texts(content))


def test_role_prefixed_turns_and_stamped_name_lines() -> None:
    role = (
        "Rep — Tom: What do you use today?\nDana Reyes: We run everything on HubSpot.\nRep — Tom: Got it.\n"
    )
    assert texts(role) == ["Brightpath Labs runs everything on HubSpot."]
    stamped = (
        "Tom Hale  0:03\nWhat do you use today?\n\nDana Reyes  0:07\nWe run payroll on Workday.\n\n"
        "Tom Hale  0:12\nThanks.\n"
    )
    assert detect_kind(stamped) == "transcript"
    assert texts(stamped) == ["Brightpath Labs runs payroll on Workday."]


def test_stage_directions_are_removed() -> None:
    content = "Tom: So, the budget?\nDana Reyes: [laughs] We set aside $40k for this in 2026.\nTom: Nice.\n"
    assert texts(content) == ["Brightpath Labs set aside $40k for this in 2026."]


def test_bilingual_headers_and_foreign_sign_off_with_signature() -> None:
    content = (
        "Von / From: Dana Reyes <dana@brightpath.example>\nAn / To: Tom Hale\n"
        "Betreff / Subject: Re: pilot\n\nHello Tom,\n\nOur security team needs SSO via Okta before the pilot.\n\n"
        "Viele Grüße,\nDana Reyes\nLeiterin Vertrieb / Head of Sales\nBrightpath Labs GmbH\n"
        "Hauptstraße 5, 10115 Berlin\n"
    )
    assert detect_kind(content) == "email"
    out = texts(content)
    assert out == ["Brightpath Labs' security team needs SSO via Okta before the pilot."] or out == [
        "Brightpath Labs's security team needs SSO via Okta before the pilot."
    ]


def test_unknown_sign_off_before_a_name_ends_the_message() -> None:
    content = (
        "From: Dana Reyes <dana@brightpath.example>\nSubject: numbers\n\nTom,\n\n"
        "We closed the quarter at 312 customers.\n\nWarmest,\nDana\nVP Sales, Brightpath\n"
    )
    out = texts(content)
    assert out == ["Brightpath Labs closed the quarter at 312 customers."]


def test_signature_without_sign_off_and_contact_lines_are_dropped() -> None:
    content = (
        "From: Dana Reyes <dana@brightpath.example>\nSubject: hosting\n\nTom,\n\n"
        "Self-hosting in our Azure tenant is a hard requirement.\n\n"
        "Dana Reyes, CISSP\nHead of Security | Brightpath Labs\nLeeds · +44 113 496 0000\n"
    )
    out = texts(content)
    assert len(out) == 1 and "Azure" in out[0]
    assert not any("CISSP" in t or "+44" in t for t in out)


def test_reply_header_naming_the_sender_of_unquoted_text() -> None:
    content = (
        "Subject: Re: intro\n\nSam Ortiz <sam@brightpath.example> wrote on Mon, 2 Mar 2026, 10:01:\n\n"
        "I lead the onboarding team of nine specialists.\n"
    )
    out = texts(content)
    assert out and not any("wrote" in t for t in out)
    assert any("Sam Ortiz" in t and "nine specialists" in t for t in out)


def test_document_title_lines_are_not_facts() -> None:
    for title in (
        "Intro call — Brightpath Labs — notes",
        "[Auto-generated transcript, lightly edited]",
        "Research: Brightpath Labs Ltd",
        "Kick-off meeting - Brightpath / Vendorly",
    ):
        content = f"{title}\n\nBrightpath Labs employs 220 people across three offices.\n"
        assert texts(content) == ["Brightpath Labs employs 220 people across three offices."], title


def test_fragments_without_a_claim_are_dropped_in_conversation() -> None:
    content = (
        "Tom: And who else joins?\nDana Reyes: That's Omar.\nTom: And the go-live?\n"
        "Dana Reyes: End of June, realistically.\nDana Reyes: You get used to it.\n"
        "Dana Reyes: I'm Head of Talent.\nDana Reyes: Honestly, mostly the recruiters, actually.\n"
    )
    assert texts(content) == ["Dana Reyes is Head of Talent."]


def test_terse_note_fragments_with_two_words_survive() -> None:
    assert texts("Uses Greenhouse.\n") == ["Dana Reyes uses Greenhouse."]


def test_small_talk_and_scheduling_are_dropped() -> None:
    for s in (
        "It's grey and raining in Leeds, as usual.",
        "Let's do Tuesday, not Monday.",
        "Friday afternoon works for me.",
        "Give me one second to grab a coffee.",
        "Thank God for that.",
        "Say hi to your brother for me.",
        "Just don't forward it to my boss.",
        "Two things from the legal team:",
    ):
        assert drop_reason(s) is not None, s


def test_semicolon_clauses_become_separate_facts() -> None:
    out = texts(
        "Brightpath Labs runs Postgres on-prem; the analytics team wants to move to BigQuery in Q4.\n"
    )
    assert out == [
        "Brightpath Labs runs Postgres on-prem.",
        "At Brightpath Labs, the analytics team wants to move to BigQuery in Q4.",
    ]


def test_multi_claim_sentence_is_split_per_verb_with_its_subject() -> None:
    out = texts("Brightpath Labs uses Oracle, has 400 staff and plans to move to AWS by Q3.\n")
    assert out == [
        "Brightpath Labs uses Oracle.",
        "Brightpath Labs has 400 staff.",
        "Brightpath Labs plans to move to AWS by Q3.",
    ]
    # a list of objects is one claim
    assert texts("Brightpath Labs uses Oracle, Tableau and Slack.\n") == [
        "Brightpath Labs uses Oracle, Tableau and Slack."
    ]


def test_company_labels_in_notes_name_the_company() -> None:
    out = texts("Funding: $30M Series B in 2025. Investors include two growth funds.\nBudget: $40k\n")
    assert out[0] == "Brightpath Labs' funding is $30M Series B in 2025." or out[0] == (
        "Brightpath Labs's funding is $30M Series B in 2025."
    )
    assert "Dana Reyes' budget is $40k." in out
    assert any(t.startswith("At Brightpath Labs, investors include") for t in out)


def test_name_colon_role_becomes_a_title_statement() -> None:
    out = texts("People: the team is small.\nDana Reyes: Head of Talent since 2024.\n")
    assert "Dana Reyes is Head of Talent since 2024." in out


def test_subject_less_company_description_gets_the_company() -> None:
    brief = (
        "Company background\n\nFamily-owned furniture maker in Leeds, founded in 1971.\n"
        "A Berlin-based fintech serving 300 banks.\nThe company reports 380 employees.\n"
    )
    out = texts(brief)
    assert "Brightpath Labs is a family-owned furniture maker in Leeds, founded in 1971." in out
    assert "Brightpath Labs is a Berlin-based fintech serving 300 banks." in out
    assert not any(t.startswith("Brightpath Labs is a the") for t in out)
    for clause in (
        "Vendor risk has the security pack.",
        "Payroll company sells to banks.",
        "Agency fees are too high.",
    ):
        assert not any(t.startswith("Brightpath Labs is") for t in texts(f"Notes\n\n{clause}\n")), clause
    # in conversation a noun phrase is not read as a description of the company
    talk = "Tom: Who else?\nDana Reyes: Staffing agency in Leeds, the one we used before.\nTom: Right.\n"
    assert not any(t.startswith("Brightpath Labs is") for t in texts(talk))


def test_semicolon_before_a_list_tail_does_not_split() -> None:
    out = texts("Brightpath Labs needs SOC 2 evidence; strict audit logging, regional data residency.\n")
    assert len(out) == 1 and "SOC 2" in out[0] and "residency" in out[0]


def test_crm_shorthand_labels_become_account_fields() -> None:
    notes = (
        "Now: spreadsheets + Gmail, about 60% of history in inboxes\nAlt: Pipedrive (looked), Attio\n"
        "Econ: CFO Omar Haddad signs\nFunding: raised $30M in 2025\nBudget: $40k\n"
    )
    out = texts(notes)
    assert (
        "Brightpath Labs' current solution is spreadsheets + Gmail, about 60% of history in inboxes." in out
    )
    assert "Dana Reyes' competitor is Pipedrive (looked), Attio." in out  # the contact's deal
    assert "Dana Reyes' decision maker is CFO Omar Haddad signs." in out
    assert "Brightpath Labs raised $30M in 2025." in out
    assert "Dana Reyes' budget is $40k." in out  # the contact's own budget
    assert not any("January" in t for t in out)  # "Now:" is the current solution, not a date


def test_a_demonstrative_sentence_naming_the_company_is_kept() -> None:
    out = texts("Account note.\n\nThis became top priority for Brightpath Labs after the audit finding.\n")
    assert out == ["This became top priority for Brightpath Labs after the audit finding."]


def test_inline_label_sequence_stays_one_record() -> None:
    out = texts(
        "Deal: Harbor Renewal. Stage: negotiation. Value: $80000. Next step: security review.\n",
        subject="Harbor Renewal",
        company=None,
    )
    assert len(out) == 1 and "security review" in out[0] and "$80000" in out[0]


def test_a_phrase_ending_in_an_org_noun_after_function_words_is_not_a_description() -> None:
    assert not any(
        t.startswith("Brightpath Labs is") for t in texts("Notes\n\nFirst outreach to this company.\n")
    )


def test_bracketed_tags_outside_transcripts_are_kept() -> None:
    out = texts(
        "[ACCOUNT] First outreach went to the procurement team.\n", subject="Brightpath Labs", company=None
    )
    assert out and "[ACCOUNT]" in out[0]


def test_inline_field_labels_become_separate_fields() -> None:
    out = texts("EB: Omar Haddad (CFO). Comp: Attio. Security gate: Lena Park (CISO).\n")
    assert "Dana Reyes' decision maker is Omar Haddad (CFO)." in out
    assert "Dana Reyes' competitor is Attio." in out
    assert any("Lena Park" in t for t in out) and len(out) == 3


def test_contractions_and_connectives_are_not_claims() -> None:
    content = "Tom: Why so few?\nDana Reyes: Because we're six. Now I'm here.\nTom: Ok.\n"
    assert texts(content) == []


def test_foreign_thanks_and_greetings_are_filler() -> None:
    for s in ("Gracias, Tom!", "Merci beaucoup.", "Hola, buenos días.", "Danke, bis bald."):
        assert drop_reason(s) is not None, s


def test_signature_name_and_title_lines_end_the_message() -> None:
    content = (
        "From: Dana Reyes <dana@brightpath.example>\nSubject: billing\n\nTom,\n\n"
        "We moved billing to Stripe in March.\n\nDana\nHead of Finance Operations, Brightpath Labs\n"
    )
    out = texts(content)
    assert len(out) == 1 and "Stripe" in out[0]
