"""Contract tests: Personize's documented calls, sent as documented, answered as documented.

Written from Personize's documents (``/work/shared/reference/personize/001``–``004``, the SDK reference of the
v1.1 surface and the memory skill's reference pages in ``personizeai/personize-skills``), not from memrelay's
code. Every Personize answer is an envelope ``{"success": true, "data": ...}``; errors carry ``success: false``.

Fixtures build the app exactly like the rest of the suite (``tests/conftest.py``: real SQLite, private Redis,
Milvus Lite). LLM-backed calls use the local fake OpenAI-compatible server (mark the test ``@pytest.mark.llm``
and take the ``fake_llm`` fixture). Asynchronous writes (batch memorize, webhooks) are drained with
``settle()``, the test stand-in for Personize's "records land in ~1-2 minutes".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from memrelay.composition import Services
from memrelay.engine.core.settings import Settings
from tests.conftest import Api, make_api
from tests.support.fake_llm import FakeLLMServer
from tests.support.llm_env import with_llm

V1 = "/api/v1"
V11 = "/api/v1.1"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "llm: the app is configured with the local fake LLM server (fake_llm)")


class Personize:
    """A thin stand-in for ``@personize/sdk``: documented method + path + JSON body, documented envelope back."""

    def __init__(self, api: Api, base: str = V1):
        self.api, self.base = api, base

    @property
    def org_id(self) -> str:
        return self.api.org_id

    def at(self, base: str) -> Personize:
        """The same key on another API version (``/api/v1.1``)."""
        return Personize(self.api, base)

    def send(self, method: str, path: str, body: Any = None) -> Any:
        url = path if path.startswith(("/api/", "/webhooks/")) else self.base + path
        call = getattr(self.api, method.lower())
        return call(url, json=body) if method.upper() in ("POST", "PUT", "PATCH") else call(url)

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        """Send; assert a 2xx answer in Personize's envelope ``{success: true, data}``; return ``data``."""
        r = self.send(method, path, body)
        payload = r.get_json(silent=True)
        assert 200 <= r.status_code < 300, f"{method} {path} -> {r.status_code}: {payload}"
        assert isinstance(payload, dict), f"{method} {path}: answer is not a JSON object: {payload!r}"
        assert payload.get("success") is True, f"{method} {path}: no success: true envelope: {payload}"
        assert "data" in payload, f"{method} {path}: envelope without data: {payload}"
        return payload["data"]

    def post(self, path: str, body: Any = None) -> Any:
        return self.ok("POST", path, body)

    def get(self, path: str) -> Any:
        return self.ok("GET", path)

    def fails(self, method: str, path: str, body: Any, status: int | tuple[int, ...]) -> dict[str, Any]:
        """Send; assert the documented error status and an answer carrying ``success: false``."""
        r = self.send(method, path, body)
        payload = r.get_json(silent=True)
        wanted = (status,) if isinstance(status, int) else status
        assert r.status_code in wanted, f"{method} {path}: expected {wanted}, got {r.status_code}: {payload}"
        assert isinstance(payload, dict) and payload.get("success") is False, \
            f"{method} {path}: error without success: false: {payload}"
        return payload

    # -- documented reads used by many tests ---------------------------------------------------------------
    def search_records(self, **body: Any) -> dict[str, dict[str, Any]]:
        """``search({..., returnRecords: true}).data.records``: an object keyed by recordId (as the n8n
        Slack template reads it: ``Object.entries(data.records)`` → ``props.email?.value``)."""
        data = self.post("/search", {"returnRecords": True, **body})
        records = data.get("records")
        assert isinstance(records, dict), f"data.records is not an object keyed by recordId: {data}"
        return records

    def record_id(self, **keys: Any) -> str:
        """Set-up helper: the one record a key-only search finds (003: ``search({ email, returnRecords })``).

        Lenient about the shape of ``records`` (object or list) so that a search-shape defect is reported by
        the search tests and not by every test that merely needs a recordId.
        """
        data = self.post("/search", {"returnRecords": True, **keys})
        records = data.get("records")
        ids = list(records) if isinstance(records, dict) else [r.get("recordId") for r in records or []]
        assert len(ids) == 1, f"expected exactly one record for {keys}, got {ids}"
        return str(ids[0])

    def upsert(self, properties: dict[str, Any] | None = None, **keys: Any) -> Any:
        """Set-up: a structured write through ``POST /api/v1/upsert`` (001: "Structured upsert, no AI")."""
        return self.post("/upsert", {**keys, "properties": properties or {}})

    def memorize(self, content: str, **keys: Any) -> Any:
        """Set-up: ``memory.memorize({content, ...keys, tags})`` (003)."""
        return self.post("/memorize", {"content": content, "tags": ["contract-test"], **keys})


def prop(record: dict[str, Any], name: str) -> Any:
    """A property value as Personize's search answer carries it: ``props[name].value``."""
    cell = record.get(name)
    return cell.get("value") if isinstance(cell, dict) else None


def texts(results: list[dict[str, Any]]) -> list[str]:
    """Texts of recall results as the documents read them: ``m.text || m.content`` (003)."""
    return [str(m.get("text") or m.get("content") or "") for m in results]


@pytest.fixture
def fake_llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    """The suite's settings; with ``@pytest.mark.llm`` the fake LLM server is the model provider."""
    if request.node.get_closest_marker("llm"):
        return with_llm(settings, request.getfixturevalue("fake_llm"))
    return settings


@pytest.fixture
def pz(api: Api) -> Personize:
    """An admin key of a fresh org, speaking ``/api/v1``."""
    return Personize(api)


@pytest.fixture
def pz11(api: Api) -> Personize:
    """The same key speaking the v1.1 surface (``/api/v1.1``)."""
    return Personize(api, V11)


@pytest.fixture
def second_key(app: Any, engine: Services, api: Api) -> Personize:
    """Another admin key of the SAME org (``about: "self"`` is per key/user)."""
    key, _ = engine.tenancy.create_key(api.org_id, scopes=["read", "write", "admin"])
    return Personize(Api(app.test_client(), key, api.org_id))


@pytest.fixture
def rate_limited(app: Any, engine: Services) -> Personize:
    """A key with a per-minute rate limit of 120 (for ``me().plan.limits``)."""
    return Personize(make_api(app, engine, rate_limit=120))


@pytest.fixture
def settle(run_jobs: Callable[[], None]) -> Callable[[], None]:
    """Drain queued work (batch chunks, webhook events) through the production worker."""
    return run_jobs


# -- set-up a migrating user already has in Personize: their collections and custom entity types -------------------
CONTRACT_FIELDS = {"status": "text", "score": "number", "tags": "array", "tasks": "array", "renewal_stage": "text",
                   "bio": "text"}


def define_fields(pz: Personize, entity_type: str, collection: str, fields: dict[str, str]) -> None:
    """Create a collection of ``fields`` (name → type) for ``entity_type`` (001: ``POST /api/v1/collections``;
    the body is memrelay's — Personize's create payload is not spelled out in the documents)."""
    r = pz.send("POST", "/collections", {"collectionName": collection, "entityType": entity_type, "properties": [
        {"propertyName": name, "type": type_, "description": f"{name} (contract test)"}
        for name, type_ in fields.items()]})
    assert 200 <= r.status_code < 300, r.get_json()


def contacts_collection(pz: Personize) -> tuple[str, str]:
    """``collections.list()`` → the Contact collection's real (collectionId, collectionName) — the SDK reference's
    "Step 0" (lenient about the list's shape; the documented shape is asserted in test_batch)."""
    data = pz.get("/collections")
    items: list[Any] = (data.get("actions") or data.get("collections") or []) if isinstance(data, dict) else data
    for item in items:
        c = item.get("payload", item)
        if str(c.get("collectionName", "")).lower() in ("contact", "contacts"):
            return str(c["collectionId"]), str(c["collectionName"])
    raise AssertionError(f"no Contact collection in {data}")


@pytest.fixture
def contact_fields(pz: Personize) -> None:
    """Properties the documents' examples write on contacts that memrelay's starter Contact lacks."""
    define_fields(pz, "contact", "Contract Test Fields", CONTRACT_FIELDS)


@pytest.fixture
def student_type(pz: Personize) -> None:
    """004's custom Student type: primary key studentNumber, secondary email, a 'Student' collection."""
    r = pz.send("POST", "/entities", {"name": "Student", "primaryKeyField": "studentNumber", "secondaryKeys": ["email"]})
    assert 200 <= r.status_code < 300, r.get_json()
    define_fields(pz, "Student", "Student", {"full_name": "text", "gpa": "number"})


# -- a fake model that follows the JSON Schema it is given --------------------------------------------------------
def _fill(schema: dict[str, Any], defs: dict[str, Any], values: dict[str, Any], name: str = "") -> Any:
    if "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    if name in values:
        return values[name]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {k: _fill(s, defs, values, k) for k, s in (schema.get("properties") or {}).items()}
    if kind == "array":
        return []
    if kind in ("number", "integer"):
        return schema.get("maximum", 1)
    if kind == "boolean":
        return True
    if "enum" in schema:
        return schema["enum"][0]
    return "ok"


def schema_following(text: str, values: dict[str, Any] | None = None) -> Callable[[list[dict[str, Any]]], str]:
    """A responder for :class:`FakeLLMServer`: when the prompt carries a JSON Schema it answers an object that
    validates against it (``values`` by property name, neutral defaults otherwise); else it answers ``text``."""
    import json
    import re

    def respond(messages: list[dict[str, Any]]) -> str:
        system = " ".join(str(m.get("content")) for m in messages if m.get("role") == "system")
        found = re.search(r"JSON Schema:\s*(\{.*\})", system, re.S)
        if not found:
            return text
        schema = json.loads(found.group(1))
        return json.dumps(_fill(schema, schema.get("$defs", {}), values or {}))

    return respond
