"""Every SDK method against a real `memrelay serve` (see conftest): answers unwrapped and typed, errors mapped."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from memrelay_client import (
    AuthenticationError,
    BatchMapping,
    ConflictError,
    Instruction,
    MemrelayClient,
    NotFoundError,
    OutputSpec,
    PermissionDeniedError,
    PropertyDefinition,
    PropertyMapping,
    RateLimitError,
    RetryPolicy,
    SearchCondition,
    SearchGroup,
    ValidationFailedError,
)

from tests.sdk.conftest import Gateway, OrgKeys

EMAIL = "ada@acme.example"


@pytest.fixture
def client(gateway: Gateway, org: OrgKeys) -> Iterator[MemrelayClient]:
    with MemrelayClient(org.admin_key, base_url=gateway.base_url, timeout=90) as c:
        yield c


def test_memory_methods(client: MemrelayClient, gateway: Gateway) -> None:
    saved = client.memory.memorize("Ada prefers PostgreSQL. Ada leads the platform team.", email=EMAIL,
                                   tags=["note"], speaker="call")
    assert saved.record_id.startswith("rec_") and saved.memories_created >= 1 and saved.memory_ids

    recalled = client.memory.smart_recall("Which database does Ada prefer?", email=EMAIL, limit=5)
    assert "PostgreSQL" in recalled.results[0].text and recalled.results[0].record_id == saved.record_id

    direct = client.memory.recall(type="contact", email=EMAIL)
    assert direct.record_id == saved.record_id and {m.text for m in direct.freeform_memories} >= {
        "Ada prefers PostgreSQL."}

    digest = client.memory.smart_digest(email=EMAIL, token_budget=500)
    assert "PostgreSQL" in digest.compiled_context and digest.record_id == saved.record_id

    grace = client.memory.memorize("Grace prefers PostgreSQL too.", email="grace@acme.example", tags=["note"])
    similar = client.memory.similar(email=EMAIL, dimensions="memories", min_score=-1.0)
    assert similar.seed["recordId"] == saved.record_id
    assert any(r.keys.get("email") == "grace@acme.example" for r in similar.results)

    segment = client.memory.segment(text="PostgreSQL", type="contact", min_score=-1.0)
    assert {i.record_id for t in segment.tiers.values() for i in t.items} == {saved.record_id, grace.record_id}

    memory_id = saved.memory_ids[0]
    client.memory.update_memory(memory_id, "Ada prefers MySQL now.", email=EMAIL)
    recalled_again = client.memory.recall(type="contact", email=EMAIL)
    assert "Ada prefers MySQL now." in {m.text for m in recalled_again.freeform_memories}

    deleted = client.memory.delete([memory_id])
    assert deleted.deleted == 1 and deleted.memory_ids == [memory_id]
    deleted_all = client.memory.delete(email=EMAIL)
    assert deleted_all.deleted == len(saved.memory_ids) - 1


def test_memorize_batch_and_status(client: MemrelayClient, gateway: Gateway) -> None:
    mapping = BatchMapping(email="mail", properties={"first_name": PropertyMapping(source_field="name")})
    rows = [{"mail": "b1@acme.example", "name": "Bo"}, {"mail": "b2@acme.example", "name": "Cy"}]
    dry = client.memory.memorize_batch(rows, mapping, dry_run=True)
    assert dry.dry_run and dry.valid_rows == 2 and dry.would_write == {
        "recordsCreated": 2, "recordsUpdated": 0, "propertyValues": 2, "memories": 0}

    run = client.memory.memorize_batch(rows, mapping, source="crm-export")
    assert run.run_id and run.status == "queued" and run.total_rows == 2
    gateway.run_jobs()
    status = client.memory.batch_status(run.run_id)
    assert status.status == "completed", status
    assert client.records.get(type="contact", email="b2@acme.example").value("first_name") == "Cy"


def test_record_methods(client: MemrelayClient) -> None:
    written = client.records.upsert({"first_name": "Bob", "job_title": "CEO"}, email="bob@acme.example",
                                    source="crm")
    assert written.created and sorted(written.updated) == ["first_name", "job_title"]

    got = client.records.get(type="contact", email="bob@acme.example")
    assert got.value("job_title") == "CEO" and got.properties["job_title"].source == "crm"

    changed = client.records.update("job_title", "CTO", email="bob@acme.example")
    assert changed.updated == ["job_title"] and changed.version == written.version + 1  # type: ignore[operator]

    bulk = client.records.bulk_update({"job_title": "CFO", "first_name": "Rob"}, email="bob@acme.example")
    assert sorted(bulk.updated) == ["first_name", "job_title"]

    history = client.records.property_history("job_title", email="bob@acme.example")
    assert [e.value for e in history.entries] == ["CFO", "CTO", "CEO"]
    assert [e.previous_value for e in history.entries] == ["CTO", "CEO", None]

    page = client.records.search([SearchGroup(conditions=[SearchCondition(property="first_name", operator="EQ",
                                                                          value="Rob")])], type="contact")
    assert [r.record_id for r in page.results] == [written.record_id] and page.total_matched == 1

    filtered = client.records.filter_by_property([{"propertyName": "job_title", "operator": "equals",
                                                   "value": "CFO"}], type="contact")
    assert [r.record_id for r in filtered.records] == [written.record_id] and filtered.next_token is None
    assert [r.record_id for r in client.records.iter_filter_by_property(
        [{"propertyName": "job_title", "operator": "exists"}], type="contact", limit=1)] == [written.record_id]

    removed = client.records.delete(email="bob@acme.example")
    assert removed.deleted_at is not None and removed.purge_after is not None
    with pytest.raises(NotFoundError):
        client.records.get(type="contact", email="bob@acme.example")
    restored = client.records.cancel_deletion(email="bob@acme.example")
    assert restored.record_id == written.record_id and restored.deleted_at is None

    erased = client.records.erase(email="bob@acme.example")
    assert erased.erased and erased.records == 1
    with pytest.raises(NotFoundError):
        client.records.get(type="contact", email="bob@acme.example")


def test_search_pages_over_250_records(client: MemrelayClient, gateway: Gateway) -> None:
    rows = [{"mail": f"p{i:03d}@paging.example", "title": "Pager"} for i in range(260)]
    run = client.memory.memorize_batch(rows, BatchMapping(email="mail", properties={
        "job_title": PropertyMapping(source_field="title")}))
    gateway.run_jobs()
    assert client.memory.batch_status(run.run_id or "").status == "completed"

    pages: list[int] = []

    def count_pages(response: httpx.Response) -> None:
        if response.request.url.path.endswith("/search"):
            pages.append(response.status_code)

    cohort = [SearchGroup(conditions=[SearchCondition(property="job_title", operator="EQ", value="Pager")])]
    with MemrelayClient(client._transport.protocol.api_key, base_url=gateway.base_url,
                        http_client=httpx.Client(event_hooks={"response": [count_pages]})) as counted:
        emails = [r.keys["email"] for r in counted.records.iter_search(cohort, type="contact", page_size=100)]
    assert sorted(emails) == sorted(r["mail"] for r in rows)
    assert pages == [200, 200, 200]  # 100 + 100 + 60


def test_collection_methods(client: MemrelayClient) -> None:
    created = client.collections.create("Sales", entity_type="contact", tags=["crm"],
                                        properties=[PropertyDefinition(property_name="deal_size", type="number")])
    assert created.collection_name == "Sales" and created.properties[0].property_name == "deal_size"
    assert created.collection_id in {c.collection_id for c in client.collections.list(entity_type="contact")}
    assert client.collections.get(created.collection_id).version == 1
    updated = client.collections.update(created.collection_id, description="Deal facts")
    assert updated.version == 2 and updated.description == "Deal facts"
    versions = client.collections.history(created.collection_id)
    assert [v.version for v in versions] == [1, 2]
    assert client.collections.delete(created.collection_id).archived

    student = client.collections.create_entity_type("student", primary_key_field="student_number")
    assert student.primary_key_field == "student_number"
    assert "student" in {e.name for e in client.collections.list_entity_types()}
    assert client.collections.archive_entity_type("student").archived
    assert "student" not in {e.name for e in client.collections.list_entity_types()}
    assert "student" in {e.name for e in client.collections.list_entity_types(include_archived=True)}
    assert not client.collections.restore_entity_type("student").archived


def test_guideline_methods(client: MemrelayClient) -> None:
    tone = client.guidelines.create("Tone", content="# Tone\nKeep cold emails under 90 words.", tags=["email"],
                                    trigger_keywords=["cold email"])
    assert tone.version == 1 and tone.trigger_keywords == ["cold email"]
    assert [g.id for g in client.guidelines.list(tag="email")] == [tone.id]
    assert client.guidelines.get(tone.id).content.startswith("# Tone")
    assert client.guidelines.update(tone.id, description="How we write").version == 2
    replaced = client.guidelines.replace(tone.id, "Tone of voice", content="# Tone\nBe brief in cold emails.",
                                         tags=["email"], trigger_keywords=["cold email"])
    assert replaced.name == "Tone of voice" and replaced.description == ""
    assert [v.version for v in client.guidelines.history(tone.id)] == [1, 2, 3]

    picked = client.guidelines.smart_guidelines("Write a cold email to a CTO", session_id="s1")
    assert "Be brief in cold emails." in picked.compiled_context and picked.guidelines[0].id == tone.id

    client.guidelines.delete(tone.id)
    with pytest.raises(NotFoundError):
        client.guidelines.get(tone.id)


def test_generation_methods(client: MemrelayClient, gateway: Gateway) -> None:
    client.memory.memorize("Ada prefers PostgreSQL.", email=EMAIL, tags=["note"])
    gateway.llm.reply_json({"subject": "Hello Ada"})
    result = client.generation.prompt(instructions=[Instruction(prompt="Write a subject line for Ada")],
                                      outputs=[OutputSpec(name="subject")], email=EMAIL)
    assert result.outputs["subject"] == "Hello Ada"

    plain = client.generation.prompt("Say hello")
    assert plain.text.startswith("fake reply to:")

    queued = client.generation.submit_prompt("Say hello later")
    assert queued.status == "queued"
    gateway.run_jobs()
    done = client.generation.job(queued.job_id)
    assert done.status == "finished" and done.result is not None

    agent = client.generation.create_agent("greeter", {"instructions": [{"prompt": "Greet {{ input }}"}]})
    assert agent.variables == ["input"]
    assert [a.id for a in client.generation.list_agents()] == [agent.id]
    assert client.generation.get_agent(agent.id).name == "greeter"
    assert client.generation.update_agent(agent.id, description="Says hi").description == "Says hi"
    ran = client.generation.run_agent(agent.id, "Ada")
    assert ran.text == "fake reply to: Greet Ada"
    later = client.generation.submit_agent_run(agent.id, "Grace")
    gateway.run_jobs()
    assert client.generation.job(later.job_id).status == "finished"
    assert client.generation.usage().by_feature["generation"]["calls"] >= 3
    client.generation.delete_agent(agent.id)
    with pytest.raises(NotFoundError):
        client.generation.get_agent(agent.id)


def test_webhook_methods(client: MemrelayClient) -> None:
    assert "memory.property.updated" in client.webhooks.event_types()
    assert client.webhooks.set_allowlist(["127.0.0.1"]) == ["127.0.0.1/32"]
    assert client.webhooks.allowlist() == ["127.0.0.1/32"]
    sub = client.webhooks.create("http://127.0.0.1:9/hook", ["memory.property.updated"], description="crm")
    assert sub.secret and sub.secret.startswith("whsec_")
    assert [s.id for s in client.webhooks.list()] == [sub.id]
    assert client.webhooks.get(sub.id).secret is None
    assert client.webhooks.update(sub.id, active=False).active is False

    client.records.upsert({"first_name": "Dee"}, email="dee@acme.example")  # emits memory.property.updated
    page = client.webhooks.deliveries(sub.id)
    everything = list(client.webhooks.iter_deliveries(sub.id, page_size=1))
    assert len(everything) == page.total
    if everything:
        assert client.webhooks.redeliver(sub.id, everything[0]["id"])
    with pytest.raises(NotFoundError):
        client.webhooks.redeliver(sub.id, "dlv_missing")
    assert client.webhooks.delete(sub.id)["deleted"] is True
    with pytest.raises(NotFoundError):
        client.webhooks.get(sub.id)


def test_me_and_errors_carry_code_status_and_request_id(client: MemrelayClient, gateway: Gateway,
                                                         org: OrgKeys) -> None:
    assert client.me().org["id"] == org.org_id

    with MemrelayClient("mr_not_a_key", base_url=gateway.base_url) as stranger, \
            pytest.raises(AuthenticationError) as auth:
        stranger.me()
    assert auth.value.status == 401 and auth.value.code == "unauthorized" and auth.value.request_id

    with MemrelayClient(org.read_key, base_url=gateway.base_url) as reader, \
            pytest.raises(PermissionDeniedError) as denied:
        reader.records.upsert({"first_name": "Eve"}, email="eve@acme.example")
    assert denied.value.status == 403 and denied.value.details["scopes"] == ["read"]

    with pytest.raises(ValidationFailedError) as invalid:
        client.memory.smart_recall("x", limit=100_000)
    assert invalid.value.status == 422 and invalid.value.details["errors"][0]["field"] == "limit"

    first = client.records.upsert({"first_name": "Fay"}, email="fay@acme.example")
    with pytest.raises(ConflictError) as conflict:
        client.records.update("first_name", "May", email="fay@acme.example",
                              expected_version=(first.version or 0) + 5)
    assert conflict.value.status == 409 and conflict.value.request_id


def test_a_429_is_retried_after_retry_after(gateway: Gateway) -> None:
    keys = gateway.new_org(rate_limit=2)
    into_window = time.time() % 60  # the limiter's windows are whole minutes: start well inside one
    if into_window > 50:
        time.sleep(61 - into_window)
    seen: list[tuple[int, str | None]] = []
    slept: list[float] = []

    def record(response: httpx.Response) -> None:
        seen.append((response.status_code, response.headers.get("retry-after")))

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)

    impatient = MemrelayClient(keys.admin_key, base_url=gateway.base_url, retry=RetryPolicy(max_retry_after=0.0))
    patient = MemrelayClient(keys.admin_key, base_url=gateway.base_url,
                             retry=RetryPolicy(max_attempts=2, max_retry_after=65.0),
                             http_client=httpx.Client(event_hooks={"response": [record]}))
    patient._transport.sleep = sleep
    with impatient, patient:
        patient.me()
        patient.me()
        with pytest.raises(RateLimitError) as limited:  # a wait longer than allowed is not taken: raised
            impatient.me()
        assert limited.value.status == 429 and limited.value.retry_after and limited.value.retry_after > 0
        assert patient.me().org["id"] == keys.org_id  # 429, wait Retry-After, then the next window's 200
    assert [s for s, _ in seen] == [200, 200, 429, 200]
    assert slept == [float(seen[2][1] or "nan")]
