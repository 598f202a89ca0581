"""003 MEMORIZE and 004's memorize forms: ``POST /api/v1/memorize`` (``client.memory.memorize``)."""

from __future__ import annotations

from tests.contract.conftest import Personize, texts

SARAH = "sarah.chen@initech.com"
SARAH_NOTE = ("Also extract First Name, Last Name, Company Name, and Job Title if mentioned.\n\nCall with Sarah Chen "
              "(VP Eng, Initech). She mentioned they are evaluating SOC2 compliance tools. Main pain point: manual "
              "audit prep taking 2 weeks per quarter. Budget approved for Q2.")


def test_memorize_quick_example_answers_the_envelope_and_smart_recall_finds_it(pz: Personize) -> None:
    # 003 "Quick Example", verbatim
    pz.post("/memorize", {"content": SARAH_NOTE, "speaker": "Sales Team", "email": SARAH, "enhanced": True,
                          "tags": ["call-notes", "sales", "source:manual"]})
    found = pz.post("/smart-recall", {"query": "what pain points did this contact mention?", "email": SARAH,
                                      "type": "Contact", "limit": 10})
    assert any("audit prep" in t for t in texts(found["results"])), found


def test_memorize_tags_are_optional(pz: Personize) -> None:
    # SDK type signature: ``tags?: string[]`` (the "MUST include a tag" rule is advice to callers, not validation)
    pz.post("/memorize", {"content": "Prefers calls on Tuesday mornings.", "email": "tue@acme.com"})
    found = pz.post("/smart-recall", {"query": "when does she prefer calls?", "email": "tue@acme.com"})
    assert any("Tuesday" in t for t in texts(found["results"])), found


def test_memorize_company_by_website_url_reaches_the_company_digest(pz: Personize) -> None:
    pz.post("/memorize", {"content": "Acme runs its billing stack on Stripe and PostgreSQL.",
                          "website_url": "https://acme.com", "tags": ["account"]})
    digest = pz.post("/smart-memory-digest", {"website_url": "https://acme.com", "type": "Company",
                                              "token_budget": 1000})
    assert "Stripe" in digest["compiledContext"], digest


def test_memorize_record_id_keys_a_custom_entity(pz: Personize) -> None:
    # SDK reference "Custom Entities via record_id": campaign:q1-outbound, recalled with the same recordId
    pz.post("/memorize", {"record_id": "campaign:q1-outbound",
                          "content": "[CAMPAIGN] Sent to lead@company.com. Template: VP intro.",
                          "tags": ["campaign", "sent"]})
    digest = pz.post("/smart-memory-digest", {"recordId": "campaign:q1-outbound", "token_budget": 1000})
    assert "VP intro" in digest["compiledContext"], digest


def test_memorize_custom_key_with_collection_name_makes_a_student_found_by_either_key(pz: Personize,
                                                                                     student_type: None) -> None:
    # 004 "For non-standard entity types, custom keys work the same way", verbatim
    pz.post("/memorize", {"content": "Student: Alice Chen, enrolled in Computer Science. GPA: 3.8.",
                          "customKeyName": "studentNumber", "customKeyValue": "S-2024-1234",
                          "email": "alice@university.edu", "collectionName": "Student", "extractMemories": True})
    by_number = pz.post("/recall", {"query": "Academic record", "type": "Student",
                                    "customKeyName": "studentNumber", "customKeyValue": "S-2024-1234"})
    assert any("Computer Science" in str(m) for m in by_number["freeformMemories"]), by_number
    by_email = pz.post("/search", {"type": "Student", "email": "alice@university.edu", "returnRecords": True})
    assert by_email["totalMatched"] == 1, by_email
    # collectionName chose the entity type: no Contact was made for the secondary key
    contacts = pz.post("/search", {"type": "Contact", "email": "alice@university.edu", "returnRecords": True})
    assert contacts["totalMatched"] == 0, contacts


def test_memorize_about_self_is_recalled_by_the_same_key_only(pz: Personize, second_key: Personize) -> None:
    # 003 "MCP-Only Feature: Self-Memory (about='self')": no identifier needed, identity resolved from the caller.
    # Literal reading: the REST endpoints behind memory_store_pro / memory_recall_pro accept the same parameter.
    pz.post("/memorize", {"content": "I prefer formal communication. My timezone is PST.", "about": "self",
                          "tags": ["preferences"]})
    mine = pz.post("/smart-recall", {"query": "What are my preferences and working style?", "about": "self"})
    assert any("formal communication" in t for t in texts(mine["results"])), mine
    theirs = second_key.post("/smart-recall", {"query": "What are my preferences and working style?",
                                               "about": "self"})
    assert not any("formal communication" in t for t in texts(theirs.get("results") or [])), theirs
