"""The calling key's identity."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from memrelay_client.models._base import ApiModel


class Me(ApiModel):
    """The calling key: its org, scopes and rate limit."""

    org: dict[str, str]
    key: dict[str, Any]
    rate_limit: dict[str, int] = Field(default_factory=dict)
