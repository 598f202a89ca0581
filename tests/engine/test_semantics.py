"""Dedup and fresh-fact precedence, judged with real WordLlama cosines."""

from __future__ import annotations

import pytest

from memrelay.engine.adapters.embedding import Embedder, build_embedder
from memrelay.engine.domain.semantics import (
    RELATED_COSINE,
    contradicts,
    is_near_duplicate,
    is_negated,
    normal_form,
    numbers_in,
    proper_nouns,
    topic_of,
)


@pytest.fixture(scope="module")
def wordllama() -> Embedder:
    return build_embedder("wordllama")


def cos(embedder: Embedder, a: str, b: str) -> float:
    va, vb = embedder.embed([a, b])
    return float(va @ vb)


# --- numbers and names ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Deal value: $250,000", {"250000"}),
        ("Deal value: $250k", {"250000"}),
        ("Deal value: 250000 USD", {"250000"}),
        ("They have 1M users", {"1000000"}),
        ("ARR is $2.5M", {"2500000"}),
        ("Raised €1.2 billion", {"1200000000"}),
        ("Churn fell to 3.5% in 2025", {"3.5%", "2025"}),
        ("Renewal in Q1 2027 on EC2", {"q1", "2027", "ec2"}),
        ("They have three offices", {"3"}),
        ("No numbers here", set()),
    ],
)
def test_numbers_in(text: str, expected: set[str]) -> None:
    assert numbers_in(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("We met Jane Smith from Acme in Berlin.", {"jane", "smith", "acme", "berlin"}),
        ("The deal is with Globex.", {"globex"}),
        ("Acme's CTO moved them to AWS.", {"acme", "cto", "aws"}),
        ("They use PostgreSQL and HubSpot.", {"postgresql", "hubspot"}),
        ("they use postgres and salesforce", {"postgresql", "salesforce"}),
        ("The meeting went well. We will follow up.", set()),
    ],
)
def test_proper_nouns(text: str, expected: set[str]) -> None:
    assert proper_nouns(text) == expected


def test_negation_and_normal_form() -> None:
    assert is_negated("They no longer use Salesforce.")
    assert is_negated("They don't use Salesforce.")
    assert not is_negated("They use Salesforce.")
    assert normal_form("Deal value: $250,000") == normal_form("deal value - $250k") == "deal value usd 250000"


# --- topics -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("We use PostgreSQL for our main database.", "technology:database"),
        ("They migrated to MySQL.", "technology:database"),
        ("Our database is too slow.", "technology:database"),
        ("We use AWS.", "technology:cloud"),
        ("Everything runs on Google Cloud now.", "technology:cloud"),
        ("They switched their CRM to HubSpot.", "technology:crm"),
        ("The frontend is built with React.", "technology:framework"),
        ("The CEO is Jane Smith.", "leadership:ceo"),
        ("Mark Lee is the VP of Sales.", "leadership:vp_sales"),
        ("Sara Kim is head of marketing.", "leadership:head_marketing"),
        ("Acme has 250 employees.", "headcount"),
        ("The deal is closed won.", "deal_stage"),
        ("Deal moved to negotiation.", "deal_stage"),
        ("Deal value: $250,000", "amount:deal_value"),
        ("Budget for the project is $50k.", "amount:budget"),
        ("The CEO approved a $50k budget.", "amount:budget"),
        ("Annual revenue is $12M.", "amount:revenue"),
        ("Headquartered in Austin, Texas.", "location:hq"),
        ("They are on the Enterprise plan.", "pricing_plan"),
        ("Their payroll vendor is Gusto.", "vendor"),
        ("Jane loves hiking on weekends.", None),
        ("They raised a Series B last year.", "funding"),  # issue 15: funding is a topic that changes
        ("Great call, lots of energy.", None),
    ],
)
def test_topic_of(text: str, topic: str | None) -> None:
    assert topic_of(text) == topic


# --- contradictions (fresh fact wins) -----------------------------------------------------------------------

CONTRADICTIONS = [
    ("We use PostgreSQL for our main database.", "They migrated to MySQL."),
    ("We use AWS.", "They moved everything to Azure last year."),
    ("The CEO is Jane Smith.", "John Doe was appointed CEO."),
    ("Acme has 250 employees.", "Acme now has 300 employees."),
    ("Deal value: $250,000", "Deal value: $1,000,000"),
    ("The deal is in negotiation stage.", "The deal is closed won."),
    ("They use Salesforce as their CRM.", "They switched their CRM to HubSpot."),
    ("They use Salesforce as their CRM.", "They no longer use Salesforce."),
    ("Headquartered in Austin, Texas.", "They relocated their HQ to Denver."),
    ("They are on the Pro plan.", "They upgraded to the Enterprise plan."),
    ("Budget for the project is $50k.", "The budget was increased to $80k."),
    ("Annual revenue is $12M.", "Revenue reached $15M this year."),
    ("The VP of Sales is Mark Lee.", "Sara Kim joined as VP of Sales."),
]
NOT_CONTRADICTIONS = [
    ("We use AWS.", "We use PostgreSQL."),  # different slots
    ("The CEO is Jane Smith.", "Jane Smith, the CEO, loves golf."),  # same person
    ("The CEO is Jane Smith.", "John Doe is the new CTO."),  # different role
    ("Acme has 250 employees.", "Acme has 250 employees."),  # restatement
    ("Deal value: $250,000", "Budget for the project is $50k."),  # different amount slots
    ("They use Salesforce as their CRM.", "They also use HubSpot for marketing emails."),  # additive
    ("We use PostgreSQL.", "We also use MySQL for analytics."),  # additive
    ("Headquartered in Austin, Texas.", "Their HQ is in Austin, Texas."),  # same place
    ("Jane loves hiking on weekends.", "Jane enjoys skiing in winter."),  # no superseding topic
    ("We use PostgreSQL for our main database.", "Their office is in Berlin."),  # unrelated
    ("Deal value: $250,000", "The deal is closed won."),  # amount vs stage
    ("The VP of Sales is Mark Lee.", "Sara Kim joined as VP of Marketing."),  # different role
    ("Deal value: $250,000", "deal value: $250k"),  # same value, other spelling
]


@pytest.mark.parametrize(("old", "new"), CONTRADICTIONS)
def test_newer_fact_contradicts_older(wordllama: Embedder, old: str, new: str) -> None:
    assert contradicts(old, new, cos(wordllama, old, new))


@pytest.mark.parametrize(("old", "new"), NOT_CONTRADICTIONS)
def test_not_a_contradiction(wordllama: Embedder, old: str, new: str) -> None:
    assert not contradicts(old, new, cos(wordllama, old, new))


def test_contradiction_needs_related_texts() -> None:
    old, new = "We use PostgreSQL for our main database.", "They migrated to MySQL."
    assert contradicts(old, new, RELATED_COSINE + 0.01)
    assert not contradicts(old, new, RELATED_COSINE - 0.01)


def test_near_duplicates_are_not_contradictions(wordllama: Embedder) -> None:
    a, b = "We use PostgreSQL for our main database.", "We use PostgreSQL as our main database."
    assert is_near_duplicate(a, b, cos(wordllama, a, b))
    assert not contradicts(a, b, cos(wordllama, a, b))


# --- near duplicates ----------------------------------------------------------------------------------------

DUPLICATES = [
    ("Deal value: $250,000", "Deal value: $250k"),  # cosine 0.91, same words once canonical
    ("We use PostgreSQL for our main database.", "We use PostgreSQL as our main database."),
    ("They use Salesforce as their CRM.", "They use Salesforce as their CRM system."),
    ("The meeting went well.", "The meeting went well!"),
    ("Jane loves hiking on weekends.", "Jane loves hiking on weekends."),
]
NOT_DUPLICATES = [
    ("Deal value: $250,000", "Deal value: $1,000,000"),
    ("Deal value: $250,000", "Deal value: €250,000"),
    ("They use Salesforce as their CRM.", "They do not use Salesforce as their CRM."),
    ("Acme signed a contract with Globex.", "Acme signed a contract with Initech."),
    ("Acme has 250 employees.", "Acme has 300 employees."),
    ("The deal was marked closed won.", "The deal was marked closed lost."),
    ("Jane Smith is the CEO.", "Jane Smith is the CTO."),
    ("Meeting scheduled for March 3.", "Meeting scheduled for April 3."),
    ("Renewal is in Q1 2027.", "Renewal is in Q2 2027."),
    ("Jane loves hiking on weekends.", "Jane enjoys hiking at the weekend."),  # paraphrase, cosine < 0.95
]


@pytest.mark.parametrize(("a", "b"), DUPLICATES)
def test_near_duplicates(wordllama: Embedder, a: str, b: str) -> None:
    assert is_near_duplicate(a, b, cos(wordllama, a, b))


@pytest.mark.parametrize(("a", "b"), NOT_DUPLICATES)
def test_not_near_duplicates(wordllama: Embedder, a: str, b: str) -> None:
    assert not is_near_duplicate(a, b, cos(wordllama, a, b))


def test_high_cosine_alone_never_merges_different_values() -> None:
    assert not is_near_duplicate("Deal value: $250,000", "Deal value: $1,000,000", cosine=0.99)
    assert not is_near_duplicate("Renewal is in Q1 2027.", "Renewal is in Q2 2027.", cosine=0.999)
    assert is_near_duplicate("Deal value: $250,000", "Deal value: $250,000.", cosine=0.99)


def test_the_reference_pair_is_close_in_embedding_space(wordllama: Embedder) -> None:
    """The case the dedup rule exists for: cosine alone would call these the same fact."""
    assert cos(wordllama, "Deal value: $250,000", "Deal value: $1,000,000") > 0.85
