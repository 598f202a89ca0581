"""Guidelines (governance documents with version history) and smart guidelines."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any, Literal

from memrelay_client._decode import as_dict, listed, one
from memrelay_client._protocol import Call
from memrelay_client._resource import ModeT, Resource, operation
from memrelay_client.models._base import drop_none
from memrelay_client.models.collections import Version
from memrelay_client.models.guidelines import Guideline, SmartGuidelinesResult


def _fields(name: str | None, content: str | None, description: str | None, tags: Sequence[str] | None,
            trigger_keywords: Sequence[str] | None) -> dict[str, Any]:
    return drop_none(name=name, content=content, description=description,
                     tags=None if tags is None else list(tags),
                     triggerKeywords=None if trigger_keywords is None else list(trigger_keywords))


class Guidelines(Resource[ModeT]):
    """``client.guidelines``: the org's rules and playbooks, and the content a given task needs."""

    @operation
    def list(self, *, tag: str | None = None) -> Call[builtins.list[Guideline]]:
        """The org's guidelines (optionally those with ``tag``)."""
        return Call("GET", "/guidelines", listed(Guideline, "guidelines"), params={"tag": tag})

    @operation
    def create(self, name: str, *, content: str = "", description: str = "", tags: Sequence[str] = (),
               trigger_keywords: Sequence[str] = ()) -> Call[Guideline]:
        """Create a guideline (markdown ``content``; headings become deliverable sections)."""
        return Call("POST", "/guidelines", one(Guideline),
                    json=_fields(name, content, description, tags, trigger_keywords))

    @operation
    def get(self, guideline_id: str) -> Call[Guideline]:
        """One guideline."""
        return Call("GET", f"/guidelines/{guideline_id}", one(Guideline))

    @operation
    def update(self, guideline_id: str, *, name: str | None = None, content: str | None = None,
               description: str | None = None, tags: Sequence[str] | None = None,
               trigger_keywords: Sequence[str] | None = None) -> Call[Guideline]:
        """Change the given fields; a real change becomes a new version."""
        return Call("PATCH", f"/guidelines/{guideline_id}", one(Guideline),
                    json=_fields(name, content, description, tags, trigger_keywords))

    @operation
    def replace(self, guideline_id: str, name: str, *, content: str = "", description: str = "",
                tags: Sequence[str] = (), trigger_keywords: Sequence[str] = ()) -> Call[Guideline]:
        """Replace every field of a guideline."""
        return Call("PUT", f"/guidelines/{guideline_id}", one(Guideline),
                    json=_fields(name, content, description, tags, trigger_keywords))

    @operation
    def delete(self, guideline_id: str) -> Call[dict[str, Any]]:
        """Delete a guideline (its history is kept)."""
        return Call("DELETE", f"/guidelines/{guideline_id}", as_dict)

    @operation
    def history(self, guideline_id: str, *, mode: Literal["full", "diff"] = "full") -> Call[builtins.list[Version]]:
        """Every version of a guideline (``mode="diff"``: unified diffs)."""
        return Call("GET", f"/guidelines/{guideline_id}/history", listed(Version, "versions"), params={"mode": mode})

    @operation
    def smart_guidelines(self, message: str, *, mode: Literal["fast", "deep"] | None = None,
                         session_id: str | None = None, max_tokens: int | None = None,
                         max_guidelines: int | None = None) -> Call[SmartGuidelinesResult]:
        """The guideline content ``message`` needs, as ``compiled_context`` (``session_id``: deliver each
        guideline once per session)."""
        body = {"message": message, **drop_none(mode=mode, sessionId=session_id, maxTokens=max_tokens,
                                                maxGuidelines=max_guidelines)}
        return Call("POST", "/ai/smart-guidelines", one(SmartGuidelinesResult), json=body)
