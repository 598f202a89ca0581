"""003/004 ``smartDigest`` (``POST /api/v1/smart-memory-digest``): ``data.compiledContext`` and friends."""

from __future__ import annotations

from tests.contract.conftest import Personize


def seed_sarah(pz: Personize) -> None:
    pz.upsert({"job_title": "VP Engineering"}, type="Contact", email="sarah@acme.com")
    pz.memorize("Sarah mentioned budget constraints twice in the last call.", email="sarah@acme.com")


def test_digest_by_email_answers_compiled_context_and_token_accounting(pz: Personize) -> None:
    seed_sarah(pz)
    data = pz.post("/smart-memory-digest", {"email": "sarah@acme.com", "type": "Contact", "token_budget": 2000,
                                            "include_properties": True, "include_memories": True})
    # 003: digest.data.compiledContext → ready-to-inject markdown; 004: tokenEstimate / tokenBudget
    assert "VP Engineering" in data["compiledContext"], data
    assert "budget constraints" in data["compiledContext"], data
    assert data["tokenBudget"] == 2000
    assert 0 < data["tokenEstimate"] <= 2000
    # recall.md SmartDigestResponse: properties Record<string,string>, memories [{text}]
    assert data["properties"]["job_title"] == "VP Engineering", data
    assert any("budget constraints" in m["text"] for m in data["memories"]), data
    assert data["recordId"] == pz.record_id(email="sarah@acme.com")


def test_digest_by_custom_key(pz: Personize) -> None:
    # 003: smartDigest({customKeyName: 'linkedin_url', customKeyValue: ...}) — "works with any customKeyName used
    # during memorize"
    pz.memorize("Sarah spoke at KubeCon about platform teams.", email="sarah@acme.com",
                customKeyName="linkedin_url", customKeyValue="sarah-chen-12345")
    data = pz.post("/smart-memory-digest", {"customKeyName": "linkedin_url", "customKeyValue": "sarah-chen-12345",
                                            "token_budget": 2000})
    assert "KubeCon" in data["compiledContext"], data


def test_digest_by_record_id_in_both_spellings(pz: Personize) -> None:
    seed_sarah(pz)
    rid = pz.record_id(email="sarah@acme.com")
    for key in ("recordId", "record_id"):  # SDK reference: both camelCase and snake_case accepted
        data = pz.post("/smart-memory-digest", {key: rid, "type": "Contact", "tokenBudget": 1000})
        assert "budget constraints" in data["compiledContext"], (key, data)


def test_digest_include_flags(pz: Personize) -> None:
    seed_sarah(pz)
    no_mem = pz.post("/smart-memory-digest", {"email": "sarah@acme.com", "token_budget": 1000,
                                              "include_memories": False})
    assert "VP Engineering" in no_mem["compiledContext"] and "budget constraints" not in no_mem["compiledContext"]
    no_props = pz.post("/smart-memory-digest", {"email": "sarah@acme.com", "token_budget": 1000,
                                                "includeProperties": False})
    assert "budget constraints" in no_props["compiledContext"] and "VP Engineering" not in no_props["compiledContext"]


def test_digest_respects_token_budget(pz: Personize) -> None:
    for i in range(30):
        pz.memorize(f"Meeting {i}: discussed rollout wave {i} across the EMEA region and its staffing plan.",
                    email="long@acme.com")
    data = pz.post("/smart-memory-digest", {"email": "long@acme.com", "type": "Contact", "token_budget": 100})
    assert data["tokenEstimate"] <= 100 and data["tokenBudget"] == 100, data


def test_cross_entity_context_contact_and_company_digests(pz: Personize) -> None:
    # 003 "Cross-Entity Context" / 004 assembleContext: a contact digest AND its company's digest
    pz.memorize("Sarah asked about SSO pricing.", email="sarah@acme.com", website_url="https://acme.com")
    pz.memorize("Acme raised a Series B; 3 open support tickets.", website_url="https://acme.com")
    contact = pz.post("/smart-memory-digest", {"email": "sarah@acme.com", "type": "Contact", "token_budget": 1500})
    company = pz.post("/smart-memory-digest", {"website_url": "https://acme.com", "type": "Company",
                                               "token_budget": 1000})
    assert "SSO pricing" in contact["compiledContext"], contact
    assert "Series B" in company["compiledContext"], company
    # the company digest is the company's: the contact's memory is not folded into it
    assert "SSO pricing" not in company["compiledContext"], company


def test_digest_of_unknown_record_is_a_404_naming_the_keys_tried(pz: Personize) -> None:
    # issue 11 "Bad input": an identifier that names no record → 404 with which keys were tried
    body = pz.fails("POST", "/smart-memory-digest", {"email": "nobody@nowhere.io", "type": "Contact",
                                                     "token_budget": 500}, 404)
    assert "nobody@nowhere.io" in str(body), body
