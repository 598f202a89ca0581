"""Governance: guidelines (CRUD with versions, history and diffs) and smart guidelines — the guideline
content a message needs, routed fast (embeddings + keywords + tags) or deep (the LLM picks among the
fast pre-filtered candidates), delivered progressively within a session.

A department key (:func:`memrelay.engine.core.access.current_access` with guideline tags) reads only the
guidelines carrying one of its tags — list, get, history, routing and therefore prompt context — and writes
only guidelines all of whose tags are its own; any other guideline is "not found"."""

from __future__ import annotations

import builtins
import time
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from memrelay.engine.core.access import current_access, unrestricted
from memrelay.engine.core.errors import BadRequest, Forbidden, NotFound
from memrelay.engine.core.util import iso, new_id, utcnow
from memrelay.engine.core.versioning import render_history
from memrelay.engine.guidance.guideline_delivery import DeliveryLog, compile_context
from memrelay.engine.guidance.guideline_routing import (
    GuidelineIndex,
    Match,
    RoutedGuideline,
    Snapshot,
    is_stale,
    route,
)
from memrelay.engine.stores.db.database import Database
from memrelay.engine.stores.db.models_llm import Guideline, GuidelineVersion
from memrelay.engine.stores.metered_llm import BudgetedLLM

if TYPE_CHECKING:
    from memrelay.engine.core.embedder import Embedder

DEEP_CANDIDATES = 10
DEEP_MIN_SCORE = 0.25
FIELDS = ("name", "description", "content", "tags", "triggerKeywords")


class GuidelineFields(BaseModel):
    """Optional guideline fields (PATCH). Personize's spellings are accepted: ``value`` (the markdown,
    alias of ``content``) and ``governanceScope.triggerKeywords``."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=5000)
    content: str | None = Field(None, max_length=200_000)
    tags: list[str] | None = None
    triggerKeywords: list[str] | None = None

    @model_validator(mode="before")
    @classmethod
    def _documented_spellings(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if "value" in data:
            value = data.pop("value")
            if "content" in data and data["content"] != value:
                raise ValueError("give the guideline's markdown as 'content' or 'value', not both")
            data["content"] = value
        scope = data.pop("governanceScope", None)
        if isinstance(scope, dict) and scope.get("triggerKeywords") is not None:
            data.setdefault("triggerKeywords", scope["triggerKeywords"])
        return data


class GuidelineCreate(GuidelineFields):
    """POST /guidelines and PUT /guidelines/<id> (full replacement)."""

    name: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=5000)
    content: str = Field("", max_length=200_000)
    tags: list[str] = Field(default_factory=list)
    triggerKeywords: list[str] = Field(default_factory=list)


class SmartGuidelinesRequest(BaseModel):
    """POST /api/v1/ai/smart-guidelines."""

    model_config = ConfigDict(extra="ignore")

    message: str = Field(min_length=1, max_length=20_000)
    mode: Literal["fast", "deep"] = "fast"
    sessionId: str | None = Field(None, min_length=1, max_length=200)
    maxTokens: int | None = Field(None, ge=50, le=100_000)
    maxGuidelines: int = Field(5, ge=1, le=20)
    guidelineIds: list[str] = Field(default_factory=list, max_length=50,
                                    description="Always include these guidelines (no scoring).")
    guidelineNames: list[str] = Field(default_factory=list, max_length=50,
                                      description="Always include the guidelines of these names (case-insensitive).")


class _Pick(BaseModel):
    id: str
    priority: Literal["critical", "supplementary"] = "supplementary"
    sections: list[str] = Field(default_factory=list, description="Headings to deliver; empty = whole guideline.")
    reason: str = ""


class _DeepSelection(BaseModel):
    selected: list[_Pick] = Field(default_factory=list)


def guideline_to_dict(g: Guideline) -> dict[str, Any]:
    return {"id": g.id, "name": g.name, "description": g.description, "content": g.content,
            "tags": list(g.tags or []), "triggerKeywords": list(g.trigger_keywords or []), "version": g.version,
            "createdAt": iso(g.created_at), "updatedAt": iso(g.updated_at), "stale": is_stale(g.updated_at)}


def _snapshot(g: Guideline) -> dict[str, Any]:
    return {"name": g.name, "description": g.description, "content": g.content, "tags": list(g.tags or []),
            "triggerKeywords": list(g.trigger_keywords or []), "deleted": g.deleted_at is not None}


def _render(snapshot: dict[str, Any]) -> list[str]:
    head = [f"name: {snapshot['name']}", f"description: {snapshot['description']}",
            f"tags: {', '.join(snapshot['tags'])}", f"triggerKeywords: {', '.join(snapshot['triggerKeywords'])}"]
    return [*head, "---", *snapshot["content"].splitlines()]


class Governance:
    """Guidelines and smart guidelines for every org (``memrelay.engine.guidance.governance``)."""

    def __init__(self, db: Database, embedder: Embedder, llm: BudgetedLLM):
        self.db, self.embedder, self.llm = db, embedder, llm
        self.index = GuidelineIndex(db, lambda: embedder)
        self.deliveries = DeliveryLog(db)

    # --- CRUD ------------------------------------------------------------------------------------
    def create(self, org_id: str, body: GuidelineCreate, *, actor: str | None = None) -> dict[str, Any]:
        _check_writable(_clean(body.tags))
        now = utcnow()
        g = Guideline(id=new_id("gdl"), org_id=org_id, name=body.name, description=body.description,
                      content=body.content, tags=_clean(body.tags), trigger_keywords=_clean(body.triggerKeywords),
                      version=1, created_at=now, updated_at=now)
        with self.db.session() as s:
            s.add(g)
            s.flush()
            self._version(s, g, actor)
            return guideline_to_dict(g)

    def list(self, org_id: str, *, tag: str | None = None) -> list[dict[str, Any]]:
        with self.db.read() as s:
            rows = s.scalars(select(Guideline).where(Guideline.org_id == org_id, Guideline.deleted_at.is_(None))
                             .order_by(Guideline.name, Guideline.id)).all()
            access = current_access()
            return [guideline_to_dict(g) for g in rows
                    if (tag is None or tag in (g.tags or [])) and access.allows_guideline(g.tags)]

    def get(self, org_id: str, guideline_id: str) -> dict[str, Any]:
        with self.db.read() as s:
            return guideline_to_dict(self._get(s, org_id, guideline_id))

    def update(self, org_id: str, guideline_id: str, body: GuidelineFields, *, replace: bool = False,
               actor: str | None = None) -> dict[str, Any]:
        """Apply the given fields (all of them for PUT); a real change becomes a new version."""
        given = body.model_dump(exclude_unset=not replace)
        with self.db.session() as s:
            g = self._get(s, org_id, guideline_id, lock=True)
            _check_writable(g.tags)
            before = _snapshot(g)
            for name, value in given.items():
                if value is None:
                    continue
                if name in ("tags", "triggerKeywords"):
                    value = _clean(value)
                setattr(g, "trigger_keywords" if name == "triggerKeywords" else name, value)
            _check_writable(g.tags)  # the new tags too: a department never hands a guideline to another
            if _snapshot(g) != before:
                g.version += 1
                g.updated_at = utcnow()
                self._version(s, g, actor)
            result = guideline_to_dict(g)
        self.index.invalidate(org_id)
        return result

    def delete(self, org_id: str, guideline_id: str, *, actor: str | None = None) -> dict[str, Any]:
        with self.db.session() as s:
            g = self._get(s, org_id, guideline_id, lock=True)
            _check_writable(g.tags)
            g.deleted_at = g.updated_at = utcnow()
            g.version += 1
            self._version(s, g, actor)
        self.index.invalidate(org_id)
        return {"id": guideline_id, "deleted": True}

    def history(self, org_id: str, guideline_id: str, *, mode: str = "full") -> builtins.list[dict[str, Any]]:
        """Every version, oldest first; ``mode='diff'`` gives a unified diff against the previous one."""
        if mode not in ("full", "diff"):
            raise BadRequest("mode must be 'full' or 'diff'")
        with self.db.read() as s:
            self._get(s, org_id, guideline_id)
            versions = s.scalars(select(GuidelineVersion).where(
                GuidelineVersion.org_id == org_id, GuidelineVersion.guideline_id == guideline_id)
                .order_by(GuidelineVersion.version)).all()
        return render_history(versions, mode=mode, lines_of=_render)

    @staticmethod
    def _get(s: Session, org_id: str, guideline_id: str, *, lock: bool = False) -> Guideline:
        q = select(Guideline).where(Guideline.org_id == org_id, Guideline.id == guideline_id,
                                    Guideline.deleted_at.is_(None))
        g = s.scalar(q.with_for_update() if lock else q)
        if g is None or not current_access().allows_guideline(g.tags):
            raise NotFound(f"guideline {guideline_id} not found")
        return g

    @staticmethod
    def _version(s: Session, g: Guideline, actor: str | None) -> None:
        s.add(GuidelineVersion(org_id=g.org_id, guideline_id=g.id, version=g.version, snapshot=_snapshot(g),
                               actor=actor, created_at=utcnow()))

    # --- smart guidelines ------------------------------------------------------------------------
    def routable(self, org_id: str) -> Snapshot:
        """The org's prepared guidelines the caller may read. The per-process index is built org-wide (so
        one department's call never narrows another's cache) and filtered per call."""
        with unrestricted():
            snap = self.index.snapshot(org_id)
        access = current_access()
        if access.guideline_tags is None:
            return snap
        return restrict_snapshot(snap, [g for g in snap.guidelines if access.allows_guideline(g.tags)])

    def smart_guidelines(self, org_id: str, req: SmartGuidelinesRequest) -> dict[str, Any]:
        """The guideline content ``req.message`` needs, as one compiled markdown context."""
        t0 = time.perf_counter()
        snap = self.routable(org_id)
        qvec = self.embedder.embed([req.message])[0]
        usage = None
        if req.mode == "deep":
            matches, usage = self._deep(org_id, req, route(snap, req.message, qvec,
                                                          max_selected=DEEP_CANDIDATES, min_score=DEEP_MIN_SCORE,
                                                          margin=None))
        else:
            matches = route(snap, req.message, qvec, max_selected=req.maxGuidelines, embed=self.embedder.embed)
        requested, unresolved = requested_matches(snap, req)
        matches = requested + [m for m in matches if m.guideline.id not in {r.guideline.id for r in requested}]
        already = self.deliveries.delivered(org_id, req.sessionId) if req.sessionId else set()
        compiled = compile_context(matches, already=already, max_tokens=req.maxTokens)
        if req.sessionId:
            self.deliveries.mark(org_id, req.sessionId, compiled.delivered)
        delivered: dict[str, builtins.list[str]] = {}
        for gid, section in compiled.delivered:
            delivered.setdefault(gid, []).append(section.text)
        selection = [{"id": i["id"], "name": i["name"], "score": i["score"], "priority": i["priority"],
                      "delivery": i["delivery"], "content": "\n".join(delivered.get(i["id"], []))}
                     for i in compiled.items]
        demoted = [i["name"] for i in compiled.items if i["delivery"] == "omitted_budget"]
        took_ms = round((time.perf_counter() - t0) * 1000, 3)
        return {"compiledContext": compiled.text, "mode": req.mode, "sessionId": req.sessionId,
                "selection": selection, "supplementary": demoted,
                "budgetMetadata": {"maxTokens": req.maxTokens, "usedTokens": compiled.tokens,
                                   "demotedGuidelines": demoted},
                "guidelines": compiled.items, "tokens": compiled.tokens, "tokensSaved": compiled.tokens_saved,
                "staleGuidelines": [i["name"] for i in compiled.items if i["stale"]],
                "unresolvedGuidelines": unresolved,
                "candidatesConsidered": len(snap.guidelines), "usage": usage or {"durationMs": took_ms},
                "tookMs": took_ms}

    def _deep(self, org_id: str, req: SmartGuidelinesRequest,
              candidates: builtins.list[Match]) -> tuple[builtins.list[Match], dict[str, Any]]:
        """Let the LLM choose among the fast candidates (and which of their sections matter)."""
        run = self.llm.run(org_id, "smart_guidelines")
        if not candidates:
            return [], run.usage_dict()
        listing = "\n\n".join(
            f"id: {m.guideline.id}\nname: {m.guideline.name}\ndescription: {m.guideline.description}\n"
            f"sections: {', '.join(s.heading or '(intro)' for s in m.guideline.sections)}" for m in candidates)
        messages = [
            {"role": "system", "content": (
                "You route company guidelines to a task. Select only guidelines the task really needs "
                f"(at most {req.maxGuidelines}); priority critical = must be followed for this task, "
                "supplementary = useful background. List the relevant section headings, or none for the "
                "whole guideline.")},
            {"role": "user", "content": f"Task:\n{req.message}\n\nCandidate guidelines:\n{listing}"}]
        picks = run.client.structured(messages, _DeepSelection, tier="pro").value.selected
        by_id = {m.guideline.id: m for m in candidates}
        chosen: builtins.list[Match] = []
        for pick in picks[: req.maxGuidelines]:
            m = by_id.pop(pick.id, None)
            if m is None:
                continue
            wanted = {h.casefold() for h in pick.sections}
            sections = [s for s in m.guideline.sections if (s.heading or "(intro)").casefold() in wanted]
            m.priority = pick.priority
            m.reasons = [*m.reasons, f"llm: {pick.reason}" if pick.reason else "llm"]
            if sections:
                m.sections, m.whole = sections, len(sections) == len(m.guideline.sections)
            else:
                m.sections, m.whole = list(m.guideline.sections), True
            chosen.append(m)
        return chosen, run.usage_dict()


def _check_writable(tags: builtins.list[str] | None) -> None:
    access = current_access()
    if not access.may_write_guideline(tags):
        raise Forbidden("this key may only write guidelines tagged with its own guideline tags",
                        details={"tags": builtins.list(tags or []), "access": access.to_json()})


def restrict_snapshot(snap: Snapshot, allowed: builtins.list[RoutedGuideline]) -> Snapshot:
    """``snap`` limited to ``allowed`` (vectors re-stacked; cheap: no embedding)."""
    return snap if len(allowed) == len(snap.guidelines) else Snapshot.build(allowed)


def requested_matches(snap: Snapshot, req: SmartGuidelinesRequest) -> tuple[list[Match], list[str]]:
    """The guidelines ``req`` names by id or (case-insensitive) name, whole and critical, in the order
    asked; plus the ids/names that name no guideline."""
    by_id = {g.id: g for g in snap.guidelines}
    by_name = {g.name.casefold(): g for g in reversed(snap.guidelines)}
    found: dict[str, tuple[RoutedGuideline, str]] = {}
    unresolved: list[str] = []
    for ref, g, how in ([(i, by_id.get(i), "id") for i in req.guidelineIds]
                        + [(n, by_name.get(n.strip().casefold()), "name") for n in req.guidelineNames]):
        if g is None:
            unresolved.append(ref)
        else:
            found.setdefault(g.id, (g, f"requested by {how}"))
    return [Match(g, 1.0, 1.0, "critical", [why], list(g.sections), True) for g, why in found.values()], unresolved


def _clean(values: list[str]) -> list[str]:
    return list(dict.fromkeys(v.strip() for v in values if v and v.strip()))

