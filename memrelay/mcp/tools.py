"""The MCP tools: each authorises the call, validates it into the request model the REST API uses, and makes
one call on a service of :class:`memrelay.composition.Services`. Results are structured content (JSON)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import BaseModel, Field, ValidationError

from memrelay.composition import Services
from memrelay.engine.core.access import access_scope
from memrelay.engine.core.errors import MemrelayError
from memrelay.engine.guidance.generation import PromptRequest
from memrelay.engine.guidance.governance import SmartGuidelinesRequest
from memrelay.engine.memory.digest import DigestRequest
from memrelay.engine.memory.memories import MemorizeRequest
from memrelay.engine.memory.recall import RecallRequest
from memrelay.engine.memory.similar import SegmentRequest, SimilarRequest
from memrelay.engine.stores.identity import Identifiers
from memrelay.engine.stores.properties import Provenance
from memrelay.engine.stores.search import (
    FILTER_OPERATORS,
    Condition,
    Group,
    SearchQuery,
    check_page,
    run_search,
)
from memrelay.engine.stores.tenancy import KeyInfo
from memrelay.mcp.auth import authorise

Result = dict[str, Any]

# --- shared parameter types (their descriptions are what an LLM reads) ------------------------------------
Email = Annotated[str | None, Field(description="The record's email address (identifies a contact).")]
Website = Annotated[str | None, Field(description="The record's website URL or domain (identifies a company).")]
RecordId = Annotated[str | None, Field(description="memrelay's record id, when known.")]
EntityType = Annotated[str | None, Field(description="Entity type: contact, company, deal, or a custom type.")]
About = Annotated[Literal["lead", "self"] | None,
                  Field(description="'self': about you, the user of this API key (your own preferences and notes; "
                                    "no identifier needed). Default: the record the identifiers name.")]

READ = ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=True, openWorldHint=False)
ADD = ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=False, openWorldHint=False)
OVERWRITE = ToolAnnotations(readOnlyHint=False, destructiveHint=True, idempotentHint=True, openWorldHint=False)
GENERATE = ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=False, openWorldHint=True)


class SearchCondition(BaseModel):
    """One property condition of ``memory_search``."""

    propertyName: str = Field(min_length=1, description="The property to test, e.g. 'job_title'.")
    operator: Literal["equals", "notEquals", "contains", "gt", "lt", "gte", "lte", "exists", "isEmpty", "in"]
    value: Any = Field(None, description="The value to compare with (a list for 'in'; none for exists/isEmpty).")


def _ids(email: str | None, website_url: str | None, record_id: str | None, type_: str | None) -> dict[str, Any]:
    given = {"email": email, "website_url": website_url, "record_id": record_id, "type": type_}
    return {k: v for k, v in given.items() if v is not None}


class MemoryTools:
    """The tools of one server process, over one :class:`Services`."""

    def __init__(self, services: Services):
        self.services = services

    def _run(self, ctx: Context[Any, Any], scope: str, call: Callable[[KeyInfo], Result]) -> Result:
        info = authorise(self.services.tenancy, ctx, scope)
        try:
            with access_scope(info.access):  # a department key's restriction, enforced by the engine
                return call(info)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
            raise ToolError(f"validation_failed: {problems}") from None
        except MemrelayError as exc:
            raise ToolError(f"{exc.code}: {exc.message}") from None

    # --- writes ----------------------------------------------------------------------------------------
    def memory_save(
        self, ctx: Context[Any, Any],
        content: Annotated[str, Field(description="What to remember: a note, an email, a transcript, a fact.")],
        tags: Annotated[list[str] | None, Field(description="Tags, e.g. ['note'] or ['call', 'sales'] "
                                                            "(default ['mcp']).")] = None,
        email: Email = None, website_url: Website = None, record_id: RecordId = None, type: EntityType = None,  # noqa: A002
        speaker: Annotated[str | None, Field(description="Who said or wrote it.")] = None,
        enhanced: Annotated[bool, Field(description="Also extract property values with the LLM (if configured).")] = False,
        about: About = None,
    ) -> Result:
        """Save free text about a person, company or other record as memories (and extracted property values).
        Name the record by email, website_url or record_id (it is created when new), or save about yourself
        with about='self'."""
        def call(info: KeyInfo) -> Result:
            body = MemorizeRequest.model_validate({"content": content, "tags": tags or ["mcp"], "speaker": speaker,
                                                   "enhanced": enhanced, "source": "mcp", "about": about,
                                                   **_ids(email, website_url, record_id, type)})
            return self.services.memories.memorize(info.org_id, body.for_key(info.key_id))
        return self._run(ctx, "write", call)

    def memory_update_property(
        self, ctx: Context[Any, Any],
        property_name: Annotated[str, Field(description="The property to set, e.g. 'job_title' or 'deal_stage'.")],
        property_value: Annotated[Any, Field(description="Its new value (replaces the current one).")],
        email: Email = None, website_url: Website = None, record_id: RecordId = None, type: EntityType = None,  # noqa: A002
    ) -> Result:
        """Set one property of an existing record (the old value stays in the property's history)."""
        def call(info: KeyInfo) -> Result:
            ids = Identifiers.model_validate(_ids(email, website_url, record_id, type))
            return self.services.records.update(info.org_id, ids, Provenance(source="mcp", actor=info.key_id),
                                                properties={property_name: property_value})
        return self._run(ctx, "write", call)

    def prompt(
        self, ctx: Context[Any, Any],
        instructions: Annotated[list[str], Field(min_length=1, max_length=10,
                                                 description="The steps to run, in order, each a prompt.")],
        context: Annotated[str | None, Field(description="Extra context for the generation.")] = None,
        email: Email = None, website_url: Website = None, record_id: RecordId = None, type: EntityType = None,  # noqa: A002
        channel: Annotated[Literal["email", "sms", "push", "slack", "in_app"] | None,
                           Field(description="Delivery channel whose rules apply.")] = None,
    ) -> Result:
        """Generate text with the LLM, using the record's memories and the org's guidelines as context."""
        def call(info: KeyInfo) -> Result:
            body = PromptRequest.model_validate({"instructions": [{"prompt": p} for p in instructions],
                                                 "context": context, "channel": channel,
                                                 **_ids(email, website_url, record_id, type)})
            return self.services.generation.generate(info.org_id, body)
        return self._run(ctx, "write", call)

    # --- reads -----------------------------------------------------------------------------------------
    def memory_retrieve(
        self, ctx: Context[Any, Any],
        query: Annotated[str, Field(description="What you want to know, in natural language.")],
        email: Email = None, website_url: Website = None, record_id: RecordId = None, type: EntityType = None,  # noqa: A002
        limit: Annotated[int, Field(ge=1, le=200, description="At most this many memories.")] = 10,
        mode: Annotated[Literal["fast", "deep"], Field(description="'deep' uses the LLM (if configured).")] = "fast",
        about: About = None,
    ) -> Result:
        """Recall the memories most relevant to a question: about one record (give its email, website_url or
        record_id), about yourself (about='self') or across the whole org (give none)."""
        def call(info: KeyInfo) -> Result:
            body = RecallRequest.model_validate({"query": query, "limit": limit, "mode": mode, "about": about,
                                                 "identifiers": _ids(email, website_url, record_id, type)})
            return self.services.recall.smart_recall(info.org_id, body.for_key(info.key_id))
        return self._run(ctx, "read", call)

    def memory_digest(
        self, ctx: Context[Any, Any],
        email: Email = None, website_url: Website = None, record_id: RecordId = None, type: EntityType = None,  # noqa: A002
        token_budget: Annotated[int, Field(ge=20, le=32_000, description="Size limit of the digest in tokens.")] = 1000,
        about: About = None,
    ) -> Result:
        """A compiled markdown digest of everything known about one record (properties and memories), or
        about yourself (about='self')."""
        def call(info: KeyInfo) -> Result:
            body = DigestRequest.model_validate({"tokenBudget": token_budget, "about": about,
                                                 "identifiers": _ids(email, website_url, record_id, type)})
            return self.services.digests.digest(info.org_id, body.for_key(info.key_id))
        return self._run(ctx, "read", call)

    def ai_smart_guidelines(
        self, ctx: Context[Any, Any],
        message: Annotated[str, Field(description="The task or message the guidelines should apply to.")],
        mode: Annotated[Literal["fast", "deep"],
                        Field(description="'fast': embeddings and keywords; 'deep': LLM selection.")] = "fast",
        max_guidelines: Annotated[int, Field(ge=1, le=20, description="At most this many guidelines.")] = 5,
    ) -> Result:
        """The org's guidelines (brand voice, rules, playbooks) that apply to a message."""
        def call(info: KeyInfo) -> Result:
            body = SmartGuidelinesRequest.model_validate({"message": message, "mode": mode,
                                                          "maxGuidelines": max_guidelines})
            return self.services.governance.smart_guidelines(info.org_id, body)
        return self._run(ctx, "read", call)

    def memory_find_similar(
        self, ctx: Context[Any, Any],
        email: Email = None, website_url: Website = None, record_id: RecordId = None, type: EntityType = None,  # noqa: A002
        top_k: Annotated[int, Field(ge=1, le=500, description="At most this many similar records.")] = 10,
        dimensions: Annotated[Literal["properties", "memories", "hybrid"],
                              Field(description="Compare by properties, memories or both.")] = "hybrid",
    ) -> Result:
        """Records most similar to a seed record, in similarity tiers (lookalikes)."""
        def call(info: KeyInfo) -> Result:
            body = SimilarRequest.model_validate({"topK": top_k, "dimensions": dimensions,
                                                  "identifiers": _ids(email, website_url, record_id, type)})
            return self.services.similarity.similar(info.org_id, body)
        return self._run(ctx, "read", call)

    def memory_segment(
        self, ctx: Context[Any, Any],
        text: Annotated[str | None, Field(description="Describe the segment (instead of a seed record).")] = None,
        email: Email = None, website_url: Website = None, record_id: RecordId = None, type: EntityType = None,  # noqa: A002
        page: Annotated[int, Field(ge=1, description="Page number, from 1.")] = 1,
        page_size: Annotated[int, Field(ge=1, le=500, description="Records per page.")] = 50,
    ) -> Result:
        """Records grouped into similarity tiers around a seed record or a text, with counts and paging."""
        def call(info: KeyInfo) -> Result:
            body = SegmentRequest.model_validate({"text": text, "page": page, "pageSize": page_size,
                                                  "identifiers": _ids(email, website_url, record_id, type)})
            return self.services.similarity.segment(info.org_id, body)
        return self._run(ctx, "read", call)

    def memory_search(
        self, ctx: Context[Any, Any],
        conditions: Annotated[list[SearchCondition] | None,
                              Field(description="Property conditions the records must meet.")] = None,
        logic: Annotated[Literal["AND", "OR"], Field(description="Combine the conditions with AND or OR.")] = "AND",
        type: EntityType = None,  # noqa: A002
        page: Annotated[int, Field(ge=1, description="Page number, from 1.")] = 1,
        page_size: Annotated[int, Field(ge=1, le=200, description="Records per page.")] = 50,
    ) -> Result:
        """Find records by their property values (exact filters, not semantic), with their properties."""
        def call(info: KeyInfo) -> Result:
            check_page(page, page_size)
            group = Group(logic=logic, conditions=[
                Condition(property=c.propertyName, operator=FILTER_OPERATORS[c.operator],
                          value=c.value) for c in conditions or []])
            q = SearchQuery(identifiers=Identifiers.model_validate(_ids(None, None, None, type)),
                            groups=[group] if conditions else [], offset=(page - 1) * page_size, limit=page_size)
            services = self.services
            with services.db.read() as s:
                rows, total = run_search(s, services.collections, info.org_id, q)
                records = services.records.render(s, rows)
            return {"records": records, "total": total, "page": page, "pageSize": page_size,
                    "hasMore": page * page_size < total}
        return self._run(ctx, "read", call)


# name -> (method name, annotations, title); aliases are the names Personize's MCP server uses
TOOLS: tuple[tuple[str, str, ToolAnnotations, str], ...] = (
    ("memory_save", "memory_save", ADD, "Save a memory"),
    ("memory_store_pro", "memory_save", ADD, "Save a memory (alias of memory_save)"),
    ("memory_retrieve", "memory_retrieve", READ, "Recall memories"),
    ("memory_recall_pro", "memory_retrieve", READ, "Recall memories (alias of memory_retrieve)"),
    ("memory_digest", "memory_digest", READ, "Digest of a record"),
    ("ai_smart_guidelines", "ai_smart_guidelines", READ, "Guidelines for a task"),
    ("memory_update_property", "memory_update_property", OVERWRITE, "Set a property"),
    ("memory_find_similar", "memory_find_similar", READ, "Find similar records"),
    ("memory_segment", "memory_segment", READ, "Segment records"),
    ("memory_search", "memory_search", READ, "Search records by property"),
    ("prompt", "prompt", GENERATE, "Generate with memory and guidelines"),
)


def register_tools(server: MCPServer[Any], services: Services) -> None:
    """Add every memrelay tool (aliases included) to ``server``."""
    tools = MemoryTools(services)
    for name, method, hints, title in TOOLS:
        server.add_tool(getattr(tools, method), name=name, title=title, annotations=hints,
                        structured_output=True)
