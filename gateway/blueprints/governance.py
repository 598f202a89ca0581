"""Governance API: guidelines CRUD with version history, and smart guidelines."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request
from pydantic import model_validator

from memrelay.engine.guidance.governance import (
    Governance,
    GuidelineCreate,
    GuidelineFields,
    SmartGuidelinesRequest,
)
from memrelay.engine.stores.tenancy import KeyInfo
from memrelay.gateway.api import endpoint
from memrelay.gateway.schemas import common
from memrelay.gateway.schemas import governance as sch
from memrelay.gateway.state import state

bp = Blueprint("governance", __name__, url_prefix="/api/v1")


class SmartGuidelinesBody(SmartGuidelinesRequest):
    """The request as Personize documents it: ``mode: 'full'`` is the former name of ``'deep'``;
    ``maxTokenBudget`` caps the compiled context (memrelay's ``maxTokens``)."""

    @model_validator(mode="before")
    @classmethod
    def _documented_spellings(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if data.get("mode") == "full":
            data["mode"] = "deep"
        if data.get("maxTokenBudget") is not None and data.get("maxTokens") is None:
            data["maxTokens"] = data["maxTokenBudget"]
        return data


def _gov() -> Governance:
    return state().services.governance


@endpoint(bp, "/guidelines", methods=("GET",), scope="read", response=sch.GuidelineList,
          query=sch.GuidelineListQuery)
def list_guidelines(auth: KeyInfo) -> dict[str, Any]:
    """The org's guidelines (``?tag=`` filters); each says whether it is stale (30+ days unchanged)."""
    return {"guidelines": _gov().list(auth.org_id, tag=request.args.get("tag"))}


@endpoint(bp, "/guidelines", methods=("POST",), scope="write", body=GuidelineCreate, response=sch.Guideline,
          status=201, errors=(409,))
def create_guideline(auth: KeyInfo, body: GuidelineCreate) -> tuple[dict[str, Any], int]:
    """Create a guideline (markdown content, tags, trigger keywords)."""
    return _gov().create(auth.org_id, body, actor=auth.key_id), 201


@endpoint(bp, "/guidelines/<guideline_id>", methods=("GET",), scope="read", response=sch.Guideline)
def get_guideline(auth: KeyInfo, guideline_id: str) -> dict[str, Any]:
    """One guideline."""
    return _gov().get(auth.org_id, guideline_id)


@endpoint(bp, "/guidelines/<guideline_id>", methods=("PUT",), scope="write", body=GuidelineCreate,
          response=sch.Guideline, errors=(409,))
def replace_guideline(auth: KeyInfo, body: GuidelineCreate, guideline_id: str) -> dict[str, Any]:
    """Replace a guideline; a real change becomes a new version."""
    return _gov().update(auth.org_id, guideline_id, body, replace=True, actor=auth.key_id)


@endpoint(bp, "/guidelines/<guideline_id>", methods=("PATCH",), scope="write", body=GuidelineFields,
          response=sch.Guideline, errors=(409,))
def patch_guideline(auth: KeyInfo, body: GuidelineFields, guideline_id: str) -> dict[str, Any]:
    """Change some fields of a guideline; a real change becomes a new version."""
    return _gov().update(auth.org_id, guideline_id, body, actor=auth.key_id)


@endpoint(bp, "/guidelines/<guideline_id>", methods=("DELETE",), scope="write", response=common.Deleted)
def delete_guideline(auth: KeyInfo, guideline_id: str) -> dict[str, Any]:
    """Delete a guideline (its history is kept)."""
    return _gov().delete(auth.org_id, guideline_id, actor=auth.key_id)


@endpoint(bp, "/guidelines/<guideline_id>/history", methods=("GET",), scope="read",
          response=sch.GuidelineHistory, query=common.HistoryModeQuery)
def guideline_history(auth: KeyInfo, guideline_id: str) -> dict[str, Any]:
    """Every version of a guideline; ``?mode=diff`` for unified diffs."""
    versions = _gov().history(auth.org_id, guideline_id, mode=request.args.get("mode", "full"))
    return {"guidelineId": guideline_id, "versions": versions}


@endpoint(bp, "/ai/smart-guidelines", scope="read", body=SmartGuidelinesBody, response=sch.SmartGuidelinesResult,
          errors=(402, 502), example={"message": "Write a cold email to a CTO", "mode": "fast"})
def smart_guidelines(auth: KeyInfo, body: SmartGuidelinesBody) -> dict[str, Any]:
    """Guideline content a message needs: fast (embeddings + keywords + tags) or deep (LLM selection)."""
    return _gov().smart_guidelines(auth.org_id, body)
