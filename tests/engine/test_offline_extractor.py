"""Offline extraction: fact splitting, relative-date anchoring and typed property values."""

from __future__ import annotations

from datetime import datetime

import pytest

from memrelay.engine.adapters.embedding import Embedder, build_embedder
from memrelay.engine.core.properties_types import PropertySpec, PropertyType
from memrelay.engine.domain.extraction import (
    ExtractedValue,
    anchor_relative_dates,
    extract_properties,
    split_facts,
)
from memrelay.engine.domain.extraction.patterns import normalize_url

TS = datetime(2026, 3, 15, 9, 30)  # a Sunday


@pytest.fixture(scope="module")
def wordllama() -> Embedder:
    return build_embedder("wordllama")


def prop(
    name: str, type_: str = "text", description: str = "", options: list[str] | None = None
) -> PropertySpec:
    return PropertySpec(propertyName=name, type=PropertyType(type_), description=description, options=options)


def extract(text: str, *props: PropertySpec, embedder: Embedder | None = None) -> dict[str, ExtractedValue]:
    return {v.property_name: v for v in extract_properties(text, list(props), ts=TS, embedder=embedder)}


# --- split_facts ------------------------------------------------------------------------------------------


def test_split_facts_keeps_abbreviations_and_decimals_inside_sentences() -> None:
    text = (
        "Met Dr. Smith from Acme Inc. on Monday. They raised $2.5M in seed funding, e.g. from Sequoia. "
        "The U.S. office has 3.5x more reps! What is their churn?"
    )
    assert split_facts(text) == [
        "Met Dr. Smith from Acme Inc. on Monday.",
        "They raised $2.5M in seed funding, e.g. from Sequoia.",
        "The U.S. office has 3.5x more reps!",
        "What is their churn?",
    ]


def test_split_facts_company_suffix_can_end_a_sentence() -> None:
    assert split_facts("We met the team at Globex Corp. They want a demo in April.") == [
        "We met the team at Globex Corp.",
        "They want a demo in April.",
    ]


def test_split_facts_bullets_headings_and_wrapped_lines() -> None:
    text = """Hi team,

Tech stack:
- PostgreSQL 15 on RDS
* Kubernetes on EKS
1. Budget: $50k

The champion is Jane and she
wants a proposal by Friday.
Ok.
Thanks!
"""
    assert split_facts(text) == [
        "Tech stack: PostgreSQL 15 on RDS",
        "Tech stack: Kubernetes on EKS",
        "Tech stack: Budget: $50k",
        "The champion is Jane and she wants a proposal by Friday.",
    ]


def test_split_facts_drops_fragments_but_keeps_short_facts_with_values() -> None:
    assert split_facts("Notes. Budget: $50k. CEO: Jane Doe. Great call.\nyes") == [
        "Budget: $50k.",
        "CEO: Jane Doe.",
    ]


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        ("They have 250 employees.", "Acme has 250 employees."),
        ("They are moving to AWS.", "Acme is moving to AWS."),
        ("They're hiring engineers.", "Acme is hiring engineers."),
        ("They don't use Salesforce.", "Acme doesn't use Salesforce."),
        ("It uses Snowflake for analytics.", "Acme uses Snowflake for analytics."),
        ("Their CTO is Jane Doe.", "Acme's CTO is Jane Doe."),
        ("Its revenue doubled in 2025.", "Acme's revenue doubled in 2025."),
        ("It was great to meet the team.", "It was great to meet the team."),
        ("It seems they are happy.", "It seems they are happy."),
        ("We use PostgreSQL today.", "We use PostgreSQL today."),
    ],
)
def test_split_facts_replaces_a_leading_pronoun_with_the_subject(sentence: str, expected: str) -> None:
    assert split_facts(sentence, subject="Acme") == [expected]


def test_split_facts_person_subject() -> None:
    text = "Jane Doe joined as VP of Sales. She previously ran sales at Globex. Her team has 12 reps."
    assert split_facts(text, subject="Jane Doe") == [
        "Jane Doe joined as VP of Sales.",
        "Jane Doe previously ran sales at Globex.",
        "Jane Doe's team has 12 reps.",
    ]


def test_split_facts_empty_input() -> None:
    assert split_facts("") == []
    assert split_facts("   \n\n  ") == []


# --- anchor_relative_dates --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ts", "expected"),
    [
        ("We closed the deal last month.", TS, "We closed the deal in February 2026."),
        ("Budget opens next quarter.", datetime(2026, 11, 23), "Budget opens in Q1 2027."),
        ("Budget opens this quarter.", datetime(2026, 11, 23), "Budget opens in Q4 2026."),
        ("Revenue dipped last quarter.", datetime(2026, 2, 1), "Revenue dipped in Q4 2025."),
        (
            "We spoke yesterday and meet again tomorrow.",
            TS,
            "We spoke on March 14, 2026 and meet again on March 16, 2026.",
        ),
        ("Signed today.", TS, "Signed on March 15, 2026."),
        ("Kickoff is next week.", TS, "Kickoff is during the week of March 16, 2026."),
        ("Since last week nothing moved.", TS, "Since the week of March 2, 2026 nothing moved."),
        ("Renewal happens next month.", datetime(2026, 12, 5), "Renewal happens in January 2027."),
        ("They churned last year.", TS, "They churned in 2025."),
        ("Expansion planned for next year.", TS, "Expansion planned for 2027."),
        ("Follow up in 10 days.", TS, "Follow up on March 25, 2026."),
        ("Contract ends in 2 weeks.", TS, "Contract ends on March 29, 2026."),
        ("Go-live in three months.", TS, "Go-live in June 2026."),
        ("They signed 5 days ago.", TS, "They signed on March 10, 2026."),
        ("They switched CRMs two weeks ago.", TS, "They switched CRMs on March 1, 2026."),
        ("Last month they hired a CTO.", TS, "In February 2026 they hired a CTO."),
        ("Last year's revenue was $2M.", TS, "2025's revenue was $2M."),
        ("Demo next Tuesday.", TS, "Demo on March 17, 2026."),
        ("Usage grew over the last month.", TS, "Usage grew over the last month."),
        ("No relative dates here, just 2026-03-01.", TS, "No relative dates here, just 2026-03-01."),
    ],
)
def test_anchor_relative_dates(text: str, ts: datetime, expected: str) -> None:
    assert anchor_relative_dates(text, ts) == expected


def test_anchor_relative_dates_is_idempotent() -> None:
    once = anchor_relative_dates("Met yesterday; budget next quarter; churned 3 months ago.", TS)
    assert anchor_relative_dates(once, datetime(2030, 1, 1)) == once


def test_anchor_relative_dates_month_end_clamps() -> None:
    assert anchor_relative_dates("Renew in 1 month.", datetime(2026, 1, 31)) == "Renew in February 2026."


# --- extract_properties: numbers and money ---------------------------------------------------------------

EMPLOYEES = prop("employee_count", "number", "number of employees")
DEAL_VALUE = prop("deal_value", "number", "value of the deal in USD")
BUDGET = prop("budget", "number", "approved budget")


def test_number_near_the_property_words() -> None:
    got = extract("Great call. They have 250 employees and 3 offices.", EMPLOYEES)["employee_count"]
    assert got.value == 250.0 and isinstance(got.value, float)
    assert got.confidence >= 0.85
    assert got.evidence == "They have 250 employees and 3 offices."


def test_number_synonyms_and_former_values() -> None:
    assert extract("The team is about 40 people now.", EMPLOYEES)["employee_count"].value == 40.0
    assert extract("Headcount grew from 200 to 250.", EMPLOYEES)["employee_count"].value == 250.0


def test_number_property_never_takes_money_years_or_unrelated_numbers() -> None:
    assert extract("They raised $2.5M in 2025.", EMPLOYEES) == {}
    assert extract("Call me at 9 tomorrow, it is gate 42.", EMPLOYEES) == {}


@pytest.mark.parametrize(
    ("text", "value", "currency"),
    [
        ("The deal is worth $250,000.", 250_000.0, "USD"),
        ("Deal value: $2.5M", 2_500_000.0, "USD"),
        ("Deal size is 1,000,000 USD.", 1_000_000.0, "USD"),
        ("The deal is worth €1.2k per month.", 1_200.0, "EUR"),
        ("Deal value: $250k", 250_000.0, "USD"),
    ],
)
def test_money_formats(text: str, value: float, currency: str) -> None:
    got = extract(text, DEAL_VALUE)["deal_value"]
    assert (got.value, got.currency, got.method) == (value, currency, "money")


def test_money_in_another_currency_than_described_is_less_certain() -> None:
    usd = extract("The deal is worth $1.2k.", DEAL_VALUE)["deal_value"]
    eur = extract("The deal is worth €1.2k.", DEAL_VALUE)["deal_value"]
    assert eur.confidence < usd.confidence


def test_each_amount_goes_to_the_property_that_matches_it() -> None:
    arr = prop("arr", "number", "annual recurring revenue")
    seat = prop("price_per_seat", "number", "list price per seat")
    got = extract("Pricing is $40 per seat; deal size is $250,000 and ARR $1.2M.", DEAL_VALUE, arr, seat)
    assert {k: v.value for k, v in got.items()} == {
        "deal_value": 250_000.0,
        "arr": 1_200_000.0,
        "price_per_seat": 40.0,
    }


def test_budget_versus_deal_value_in_one_sentence() -> None:
    got = extract("Budget: $50k, but the deal is worth $80k.", BUDGET, DEAL_VALUE)
    assert got["budget"].value == 50_000.0
    assert got["deal_value"].value == 80_000.0


def test_percent_property_takes_percentages_only() -> None:
    growth = prop("growth_rate", "number", "yearly growth in percent")
    got = extract("They have 250 employees and grew 40% last year.", growth, EMPLOYEES)
    assert got["growth_rate"].value == 40.0 and got["growth_rate"].method == "percent"
    assert got["employee_count"].value == 250.0


def test_year_property_accepts_years() -> None:
    founded = prop("founded_year", "number", "year the company was founded")
    got = extract("Acme was founded in 2015 and has 40 staff.", founded, EMPLOYEES)
    assert (got["founded_year"].value, got["employee_count"].value) == (2015.0, 40.0)


# --- dates --------------------------------------------------------------------------------------------------

RENEWAL = prop("renewal_date", "date", "contract renewal date")


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("Contract renews on March 3, 2027.", "2027-03-03"),
        ("Renewal: 3 March 2027.", "2027-03-03"),
        ("Renewal date 2027-01-15.", "2027-01-15"),
        ("The renewal is on 15/04/2026.", "2026-04-15"),
        ("They will renew in 30 days.", "2026-04-14"),
        ("Renewal is tomorrow.", "2026-03-16"),
    ],
)
def test_dates(text: str, iso: str) -> None:
    got = extract(text, RENEWAL)["renewal_date"]
    assert got.value == iso


def test_relative_dates_are_slightly_less_certain_and_ambiguous_ones_are_skipped() -> None:
    absolute = extract("Renewal on March 16, 2026.", RENEWAL)["renewal_date"]
    relative = extract("Renewal is tomorrow.", RENEWAL)["renewal_date"]
    assert relative.confidence < absolute.confidence
    assert extract("Renewal on 03/04/2026.", RENEWAL) == {}  # US or European order?
    assert extract("Renewal next month.", RENEWAL) == {}  # a month is not a date


def test_a_date_goes_to_the_matching_date_property() -> None:
    meeting = prop("next_meeting", "date", "date of the next meeting")
    got = extract("Next call on April 2, 2026. Contract renews on March 3, 2027.", RENEWAL, meeting)
    assert got["next_meeting"].value == "2026-04-02"
    assert got["renewal_date"].value == "2027-03-03"


# --- booleans -----------------------------------------------------------------------------------------------

BUDGET_APPROVED = prop("budget_approved", "boolean", "yes/no")


@pytest.mark.parametrize(
    ("text", "value", "method"),
    [
        ("Budget approved: yes", True, "explicit_boolean"),
        ("Budget approved - no", False, "explicit_boolean"),
        ("Their budget was approved last week.", True, "affirmation"),
        ("Budget is not approved yet.", False, "negation"),
        ("The budget hasn't been approved.", False, "negation"),
    ],
)
def test_booleans(text: str, value: bool, method: str) -> None:
    got = extract(text, BUDGET_APPROVED)["budget_approved"]
    assert (got.value, got.method) == (value, method)


def test_boolean_needs_every_name_word_and_a_statement() -> None:
    uses_sf = prop("uses_salesforce", "boolean", "Whether they use Salesforce")
    assert extract("Salesforce is too expensive for them.", uses_sf) == {}
    assert extract("Do they use Salesforce?", uses_sf) == {}
    assert (
        extract("They don't use Salesforce; they moved to HubSpot.", uses_sf)["uses_salesforce"].value
        is False
    )
    assert extract("They use Salesforce for pipeline.", uses_sf)["uses_salesforce"].value is True


# --- options ------------------------------------------------------------------------------------------------

STAGE = prop(
    "deal_stage", "options", options=["Discovery", "Proposal", "Negotiation", "Closed Won", "Closed Lost"]
)
PLAN = prop("plan", "options", "pricing plan", options=["Starter", "Pro", "Enterprise"])
INDUSTRY = prop(
    "industry", "options", options=["Software", "Healthcare", "Finance", "Retail", "Manufacturing"]
)


def test_option_exact_match_returns_the_allowed_spelling() -> None:
    got = extract("The deal is now closed-won!", STAGE)["deal_stage"]
    assert (got.value, got.method) == ("Closed Won", "option")


def test_option_moved_from_to_takes_the_target() -> None:
    got = extract("The deal moved from Proposal to Negotiation.", STAGE)["deal_stage"]
    assert got.value == "Negotiation" and got.confidence >= 0.85


def test_negated_option_is_not_taken() -> None:
    assert extract("They are not on the Enterprise plan.", PLAN) == {}
    assert extract("They are on the Enterprise plan.", PLAN)["plan"].value == "Enterprise"


def test_option_by_word_form() -> None:
    got = extract("They manufacture car parts in Ohio.", INDUSTRY)["industry"]
    assert (got.value, got.method) == ("Manufacturing", "option_stem")


def test_option_by_embedding_similarity_only_above_threshold(wordllama: Embedder) -> None:
    got = extract("Their industry is hospitals and clinics.", INDUSTRY, embedder=wordllama)["industry"]
    assert (got.value, got.method) == ("Healthcare", "option_similarity")
    assert got.confidence <= 0.7
    assert extract("Their industry is hospitals and clinics.", INDUSTRY) == {}  # no embedder, no guess
    assert extract("Jane had a health scare last year.", INDUSTRY, embedder=wordllama) == {}
    assert extract("We met at the conference in Berlin.", INDUSTRY, embedder=wordllama) == {}


# --- arrays -------------------------------------------------------------------------------------------------

TECH = prop("technologies", "array", "technologies they use")


def test_array_of_known_technologies_skips_negated_ones() -> None:
    text = "They don't use Salesforce; they moved to HubSpot. Their stack includes Postgres, AWS and React."
    got = extract(text, TECH)["technologies"]
    assert got.value == ["HubSpot", "PostgreSQL", "AWS", "React"]
    assert got.confidence >= 0.8


def test_array_ignores_everyday_words_that_are_also_product_names() -> None:
    assert extract("We like to go to the spring concert and relax.", TECH) == {}


def test_array_slot_from_the_property_name() -> None:
    databases = prop("databases", "array", "databases in use")
    got = extract("We run Postgres and MongoDB on AWS with React.", databases)["databases"]
    assert got.value == ["PostgreSQL", "MongoDB"]


def test_array_comma_lists_after_a_cue() -> None:
    competitors = prop("competitors", "array", "competing vendors")
    got = extract("Competitors: Gong, Chorus and Clari.", competitors)["competitors"]
    assert got.value == ["Gong", "Chorus", "Clari"]
    pains = prop("pain_points", "array")
    got = extract("Pain points: slow reporting, manual data entry and churn", pains)["pain_points"]
    assert got.value == ["slow reporting", "manual data entry", "churn"]


def test_array_with_allowed_options_unions_sentences() -> None:
    channels = prop("channels", "array", options=["Email", "Phone", "LinkedIn"])
    got = extract("Prefers email for updates. Reachable by phone on Fridays.", channels)["channels"]
    assert got.value == ["Email", "Phone"]
    assert got.evidence == "Prefers email for updates. Reachable by phone on Fridays."


# --- text: emails, URLs, phones, cue values ------------------------------------------------------------------


def test_email_url_and_phone() -> None:
    text = "Reach Jane at JANE@ACME.COM (cell +1 (415) 555-0100). Website: https://www.Acme.com/ ; linkedin.com/in/jane"
    got = extract(
        text,
        prop("email"),
        prop("website", description="company website"),
        prop("phone"),
        prop("linkedin_url"),
    )
    assert got["email"].value == "jane@acme.com"
    assert got["website"].value == "https://acme.com"
    assert got["phone"].value == "+14155550100"
    assert got["linkedin_url"].value == "https://linkedin.com/in/jane"


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("acme.io", "https://acme.io"),
        ("HTTP://WWW.Acme.COM/Pricing/", "http://acme.com/Pricing"),
        ("https://acme.com/path?q=1#frag", "https://acme.com/path?q=1"),
        ("www.acme.co.uk.", "https://acme.co.uk"),
    ],
)
def test_normalize_url(raw: str, normal: str) -> None:
    assert normalize_url(raw) == normal


def test_text_value_after_an_explicit_cue_only() -> None:
    industry = prop("industry")
    title = prop("job_title")
    got = extract("Industry: Fintech. Job title: VP of Sales.", industry, title)
    assert (got["industry"].value, got["job_title"].value) == ("Fintech", "VP of Sales")
    assert extract("The industry is growing fast.", industry) == {}


# --- general ------------------------------------------------------------------------------------------------


def test_nothing_is_invented() -> None:
    props = [EMPLOYEES, DEAL_VALUE, RENEWAL, BUDGET_APPROVED, STAGE, TECH, prop("email"), prop("industry")]
    assert extract_properties("Jane loves hiking on weekends.", props, ts=TS) == []
    assert extract_properties("", props, ts=TS) == []
    assert extract_properties("They have 250 employees.", [], ts=TS) == []


def test_results_follow_property_order_and_confidences_are_bounded(wordllama: Embedder) -> None:
    text = (
        "Met Jane Doe (jane@acme.com) from Acme today. They have 250 employees. The deal is worth $2.5M. "
        "Contract renews on March 3, 2027. The deal moved to Negotiation. Their stack includes PostgreSQL."
    )
    props = [TECH, STAGE, RENEWAL, DEAL_VALUE, EMPLOYEES, prop("email")]
    values = extract_properties(text, props, ts=TS, embedder=wordllama)
    assert [v.property_name for v in values] == [p.propertyName for p in props]
    assert all(0.0 < v.confidence <= 1.0 for v in values)
    assert all(v.evidence in text for v in values)
