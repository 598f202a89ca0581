"""The async client against a real `memrelay serve`: the same resource methods, awaited; paging as an async
iterator; errors mapped the same way."""

from __future__ import annotations

import asyncio

import pytest
from memrelay_client import (
    AsyncMemrelayClient,
    BatchMapping,
    NotFoundError,
    PermissionDeniedError,
    PropertyMapping,
    SearchCondition,
    SearchGroup,
)

from tests.sdk.conftest import Gateway, OrgKeys


def test_async_client_memory_records_guidelines_and_paging(gateway: Gateway, org: OrgKeys) -> None:
    rows = [{"mail": f"a{i}@async.example", "title": "Async"} for i in range(7)]

    async def import_rows() -> None:
        async with AsyncMemrelayClient(org.admin_key, base_url=gateway.base_url, timeout=90) as client:
            run = await client.memory.memorize_batch(rows, BatchMapping(email="mail", properties={
                "job_title": PropertyMapping(source_field="title")}))
            assert run.status == "queued"

    asyncio.run(import_rows())
    gateway.run_jobs()  # the worker installs signal handlers: main thread, outside the event loop

    async def scenario() -> None:
        async with AsyncMemrelayClient(org.admin_key, base_url=gateway.base_url, timeout=90) as client:
            assert (await client.me()).org["id"] == org.org_id
            saved = await client.memory.memorize("Lin runs payments on Stripe.", email="lin@acme.example",
                                                  tags=["note"])
            recalled, digest = await asyncio.gather(
                client.memory.smart_recall("What does Lin use for payments?", email="lin@acme.example"),
                client.memory.smart_digest(email="lin@acme.example"))
            assert recalled.results[0].record_id == saved.record_id and "Stripe" in recalled.results[0].text
            assert "Stripe" in digest.compiled_context

            await client.records.upsert({"job_title": "CTO"}, email="lin@acme.example")
            assert (await client.records.get(type="contact", email="lin@acme.example")).value("job_title") == "CTO"

            group = SearchGroup(conditions=[SearchCondition(property="job_title", operator="EQ", value="Async")])
            emails = [r.keys["email"] async for r in client.records.iter_search([group], type="contact",
                                                                                 page_size=3)]
            assert sorted(emails) == sorted(r["mail"] for r in rows)

            guideline = await client.guidelines.create("Voice", content="# Voice\nPlain words.")
            assert (await client.guidelines.get(guideline.id)).name == "Voice"
            with pytest.raises(NotFoundError) as missing:
                await client.collections.get("col_missing")
            assert missing.value.status == 404 and missing.value.request_id

        async with AsyncMemrelayClient(org.read_key, base_url=gateway.base_url) as reader:
            with pytest.raises(PermissionDeniedError):
                await reader.memory.memorize("nope", email="lin@acme.example", tags=["note"])

    asyncio.run(scenario())
