"""003 FIND SIMILAR (``POST /api/v1/similar``) and SEGMENT (``POST /api/v1/segment``), with ``seed: {...}``."""

from __future__ import annotations

import pytest

from tests.contract.conftest import Personize

TIERS = ("very_similar", "similar", "somewhat_similar")


def tier_of(score: float, min_score: float = 0.3) -> str | None:
    """similar.md: very_similar >= 0.75, similar >= 0.5, somewhat_similar >= minScore (default 0.3)."""
    if score >= 0.75:
        return "very_similar"
    if score >= 0.5:
        return "similar"
    return "somewhat_similar" if score >= min_score else None


@pytest.fixture
def people(pz: Personize) -> dict[str, str]:
    notes = {
        "john@acme.com": "CTO at a fintech SaaS. Evaluating AI automation for support. Uses Kubernetes.",
        "jane@beta.io": "CTO at a fintech SaaS. Evaluating AI automation for onboarding. Uses Kubernetes.",
        "max@gamma.dev": "VP Engineering at a SaaS company exploring AI automation and Kubernetes.",
        "lee@bakery.com": "Owns a neighbourhood bakery; sourdough and pastries; no software team.",
    }
    for email, note in notes.items():
        pz.upsert({"job_title": note.split(" at ")[0]}, type="Contact", email=email)
        pz.memorize(note, email=email)
    return {email: pz.record_id(email=email) for email in notes}


def test_similar_by_seed_email(pz: Personize, people: dict[str, str]) -> None:
    # 003 example, verbatim; result.data.results[0].recordId, .score, .tier, .matchBreakdown;
    # result.data.tiers.very_similar = ['REC#...', ...]
    data = pz.post("/similar", {"seed": {"email": "john@acme.com"}, "topK": 10, "dimensions": "hybrid"})
    results = data["results"]
    assert results and people["john@acme.com"] not in {r["recordId"] for r in results}, data
    for r in results:
        assert {"recordId", "score", "tier", "matchBreakdown"} <= set(r), r
        assert r["tier"] == tier_of(r["score"]), r
        assert r["recordId"] in data["tiers"][r["tier"]], data
    for tier in TIERS:
        assert isinstance(data["tiers"][tier], list), data["tiers"]
    # the closest lookalike of John is Jane, not the bakery
    assert results[0]["recordId"] == people["jane@beta.io"], results


@pytest.mark.parametrize("seed_key", ["recordId", "websiteUrl"])
def test_similar_by_seed_record_id_or_website_url(pz: Personize, people: dict[str, str], seed_key: str) -> None:
    if seed_key == "websiteUrl":
        pz.memorize("Acme: fintech SaaS, AI automation, Kubernetes.", website_url="https://acme.com")
        pz.memorize("Globex: fintech SaaS, AI automation, Kubernetes too.", website_url="https://globex.com")
        seed = {"websiteUrl": "https://acme.com"}
    else:
        seed = {"recordId": people["john@acme.com"]}
    data = pz.post("/similar", {"seed": seed, "topK": 5, "minScore": 0.0})
    assert data["results"], data


def test_similar_return_all_ids(pz: Personize, people: dict[str, str]) -> None:
    # similar.md: returnAllIds → flat allIds[] of {recordId, score, tier}
    data = pz.post("/similar", {"seed": {"email": "john@acme.com"}, "returnAllIds": True, "minScore": 0.0})
    assert data["allIds"] and all({"recordId", "score", "tier"} <= set(x) for x in data["allIds"]), data


def test_segment_by_text_seed_has_four_tiers_including_not_similar(pz: Personize, people: dict[str, str]) -> None:
    # 003 example, verbatim: result.data.tiers.very_similar.recordIds / .count; not_similar.approximate = true
    data = pz.post("/segment", {"seed": {"text": "Enterprise SaaS CTO interested in AI automation"},
                                "maxPerTier": 20})
    tiers = data["tiers"]
    assert set(TIERS) | {"not_similar"} <= set(tiers), tiers
    for name in (*TIERS, "not_similar"):
        assert isinstance(tiers[name]["count"], int) and isinstance(tiers[name]["recordIds"], list), tiers[name]
    assert tiers["not_similar"]["approximate"] is True
    # not_similar is an estimate (totalRecords - matched - 1): the tiers never count more records than exist
    assert sum(tiers[n]["count"] for n in (*TIERS, "not_similar")) <= len(people), tiers
    assert people["lee@bakery.com"] not in tiers["very_similar"]["recordIds"], tiers


def test_segment_by_seed_email_pages_one_tier(pz: Personize, people: dict[str, str]) -> None:
    # segment.md: returnTier fetches one tier; tierOffset pages it; hasMore / scoreRange per tier
    full = pz.post("/segment", {"seed": {"email": "john@acme.com"}, "maxPerTier": 50})
    name = max(TIERS, key=lambda n: full["tiers"][n]["count"])
    tier = full["tiers"][name]
    assert {"count", "recordIds", "scoreRange", "hasMore"} <= set(tier), tier
    page = pz.post("/segment", {"seed": {"email": "john@acme.com"}, "maxPerTier": 1, "returnTier": name,
                                "tierOffset": 0})
    one = page["tiers"][name]
    assert len(one["recordIds"]) == min(1, tier["count"]) and one["hasMore"] == (tier["count"] > 1), page
