"""`memrelay mcp` driven through the MCP SDK's own clients: stdio (spawned by the SDK) and streamable HTTP
(a real server subprocess), against a temp data dir and the test's private Redis."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from memrelay.composition import Services
from memrelay.engine.core.settings import Settings

MEMRELAY = str(Path(sys.executable).with_name("memrelay"))
CALL_TIMEOUT_S = 90.0  # a first memorize loads the embedding model
EXPECTED_TOOLS = {"memory_save", "memory_store_pro", "memory_retrieve", "memory_recall_pro", "memory_digest",
                  "ai_smart_guidelines", "memory_update_property", "memory_find_similar", "memory_segment",
                  "memory_search", "prompt"}


def _server_env(settings: Settings, tmp_path: Path, api_key: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMRELAY_")}
    env.update({"MEMRELAY_DATA_DIR": str(settings.data_dir), "MEMRELAY_DATABASE_URL": settings.sql_url,
                "MEMRELAY_REDIS_URL": settings.redis_url or "",
                "MEMRELAY_MILVUS_URI": str(tmp_path / "mcp-milvus.db"),  # its own Milvus Lite file
                "MEMRELAY_LOG_JSON": "false", "MEMRELAY_LOG_LEVEL": "WARNING"})
    if api_key is not None:
        env["MEMRELAY_API_KEY"] = api_key
    return env


def _keys(engine: Services) -> tuple[str, str, str]:
    """(admin key, read-only key, org id) of a fresh org."""
    org = engine.tenancy.get_or_create_org(f"mcp-{os.getpid()}-{os.urandom(4).hex()}")
    full, _ = engine.tenancy.create_key(org.id, scopes=["read", "write", "admin"])
    read, _ = engine.tenancy.create_key(org.id, scopes=["read"])
    return full, read, org.id


def _run(scenario: Callable[[], Awaitable[None]]) -> None:
    async def bounded() -> None:
        with anyio.fail_after(CALL_TIMEOUT_S * 3):
            await scenario()

    asyncio.run(bounded())


@asynccontextmanager
async def stdio_session(env: dict[str, str]) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(command=MEMRELAY, args=["mcp"], env=env)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


@asynccontextmanager
async def http_session(url: str, headers: dict[str, str]) -> AsyncIterator[ClientSession]:
    async with (httpx2.AsyncClient(headers=headers, timeout=CALL_TIMEOUT_S) as client,
                streamable_http_client(url, http_client=client) as (read, write),
                ClientSession(read, write) as session):
        await session.initialize()
        yield session


async def call(session: ClientSession, name: str, **arguments: Any) -> Any:
    return await session.call_tool(name, arguments, read_timeout_seconds=CALL_TIMEOUT_S)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def http_server(settings: Settings, tmp_path: Path, engine: Services) -> Iterator[str]:
    """A real `memrelay mcp --transport http` process; yields its MCP endpoint URL."""
    port = _free_port()
    log = (tmp_path / "mcp-http.log").open("wb")
    proc = subprocess.Popen([MEMRELAY, "mcp", "--transport", "http", "--port", str(port)],
                            env=_server_env(settings, tmp_path), stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"memrelay mcp exited: {(tmp_path / 'mcp-http.log').read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError("memrelay mcp did not listen within 60 s") from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


def _error_text(result: Any) -> str:
    assert result.is_error, result
    return " ".join(getattr(c, "text", "") for c in result.content)


async def _save_retrieve_digest(session: ClientSession, email: str) -> None:
    saved = await call(session, "memory_save", content="Ada prefers PostgreSQL and runs the platform team.",
                       tags=["note"], email=email)
    assert not saved.is_error, saved
    assert saved.structured_content["recordId"]
    recalled = await call(session, "memory_recall_pro", query="Which database does Ada prefer?", email=email)
    assert not recalled.is_error, recalled
    texts = " ".join(m["text"] for m in recalled.structured_content["results"])
    assert "PostgreSQL" in texts
    digest = await call(session, "memory_digest", email=email)
    assert not digest.is_error, digest
    assert "PostgreSQL" in str(digest.structured_content)
    guidelines = await call(session, "ai_smart_guidelines", message="Write a cold email to Ada")
    assert not guidelines.is_error, guidelines
    assert isinstance(guidelines.structured_content, dict)


def test_stdio_lists_tools_saves_retrieves_and_refuses_a_read_key(settings: Settings, tmp_path: Path,
                                                                   engine: Services) -> None:
    full, read, _ = _keys(engine)

    async def scenario() -> None:
        async with stdio_session(_server_env(settings, tmp_path, full)) as session:
            tools = {t.name: t for t in (await session.list_tools()).tools}
            assert EXPECTED_TOOLS <= set(tools)
            assert tools["memory_retrieve"].annotations.read_only_hint is True
            assert tools["memory_save"].annotations.read_only_hint is False
            assert tools["memory_update_property"].annotations.destructive_hint is True
            assert "content" in tools["memory_save"].input_schema["required"]
            assert tools["memory_save"].input_schema["properties"]["email"]["description"]
            await _save_retrieve_digest(session, "ada@example.com")
            updated = await call(session, "memory_update_property", email="ada@example.com",
                                 property_name="job_title", property_value="CTO")
            assert not updated.is_error, updated
            found = await call(session, "memory_search", type="contact",
                               conditions=[{"propertyName": "job_title", "operator": "equals", "value": "CTO"}])
            assert not found.is_error, found
            assert found.structured_content["total"] == 1
            assert found.structured_content["records"][0]["recordId"] == updated.structured_content["recordId"]
            similar = await call(session, "memory_find_similar", email="ada@example.com")
            assert not similar.is_error, similar
            segment = await call(session, "memory_segment", text="platform engineering leaders")
            assert not segment.is_error, segment
            generated = await call(session, "prompt", instructions=["Write a one-line hello to Ada"],
                                   email="ada@example.com")  # no LLM configured in tests
            assert "llm_not_configured" in _error_text(generated)
        async with stdio_session(_server_env(settings, tmp_path, read)) as session:
            refused = await call(session, "memory_store_pro", content="x", tags=["t"], email="ada@example.com")
            assert "lacks the 'write' scope" in _error_text(refused)
            allowed = await call(session, "memory_retrieve", query="database", email="ada@example.com")
            assert not allowed.is_error, allowed

    _run(scenario)


def test_stdio_without_a_key_is_refused(settings: Settings, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with stdio_session(_server_env(settings, tmp_path)) as session:
            refused = await call(session, "memory_retrieve", query="anything")
            assert "MEMRELAY_API_KEY" in _error_text(refused)

    _run(scenario)


def test_http_scopes_keys_to_their_org(http_server: str, engine: Services) -> None:
    full, read, _ = _keys(engine)
    other_full, _, _ = _keys(engine)

    async def scenario() -> None:
        async with http_session(http_server, {"Authorization": f"Bearer {full}"}) as session:
            assert EXPECTED_TOOLS <= {t.name for t in (await session.list_tools()).tools}
            await _save_retrieve_digest(session, "grace@example.com")
        async with http_session(http_server, {"X-API-Key": read}) as session:
            refused = await call(session, "memory_save", content="x", tags=["t"], email="grace@example.com")
            assert "lacks the 'write' scope" in _error_text(refused)
        async with http_session(http_server, {"X-API-Key": "mr_not_a_real_key"}) as session:
            assert "invalid or revoked API key" in _error_text(await call(session, "memory_digest",
                                                                          email="grace@example.com"))
        async with http_session(http_server, {}) as session:
            assert "missing API key" in _error_text(await call(session, "memory_digest", email="grace@example.com"))
        async with http_session(http_server, {"X-API-Key": other_full}) as session:  # another org sees nothing
            digest = await call(session, "memory_digest", email="grace@example.com")
            assert "not_found" in _error_text(digest)

    _run(scenario)


def test_about_self_is_saved_retrieved_and_digested_per_key(settings: Settings, tmp_path: Path,
                                                            engine: Services) -> None:
    """Issue 14: memory_save / memory_retrieve / memory_digest take ``about: "self"`` — the key's own record."""
    full, read, _ = _keys(engine)  # two keys of the same org: "self" is per key, not per org

    async def scenario() -> None:
        async with stdio_session(_server_env(settings, tmp_path, full)) as session:
            tools = {t.name: t for t in (await session.list_tools()).tools}
            for name in ("memory_save", "memory_retrieve", "memory_digest"):
                assert "self" in str(tools[name].input_schema["properties"]["about"]), name
            saved = await call(session, "memory_save", content="I prefer formal communication. My timezone is PST.",
                               tags=["preferences"], about="self")
            assert not saved.is_error, saved
            assert saved.structured_content["type"] == "self"
            mine = await call(session, "memory_retrieve", query="What are my preferences?", about="self")
            assert not mine.is_error, mine
            assert mine.structured_content["scope"] == "record"
            assert any("formal communication" in m["text"] for m in mine.structured_content["results"])
            digest = await call(session, "memory_digest", about="self")
            assert not digest.is_error, digest
            assert "formal communication" in digest.structured_content["compiledContext"]
            lead = await call(session, "memory_retrieve", query="What are my preferences?")  # org-wide, not self
            assert not lead.is_error and lead.structured_content["scope"] == "org", lead
        async with stdio_session(_server_env(settings, tmp_path, read)) as session:
            theirs = await call(session, "memory_retrieve", query="What are my preferences?", about="self")
            assert not theirs.is_error, theirs
            assert not any("formal communication" in m["text"] for m in theirs.structured_content["results"])
            assert "not_found" in _error_text(await call(session, "memory_digest", about="self"))

    _run(scenario)
