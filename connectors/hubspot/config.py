"""The ``config`` of a HubSpot source (validated on create/update; ``access_token`` is secret)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from memrelay.connectors.config import CrmApiConfig, HttpUrlText
from memrelay.engine.egress.crm_hosts import crm_base_validator

HubSpotApiBase = Annotated[HttpUrlText, AfterValidator(crm_base_validator("hubspot"))]


class HubSpotConfig(CrmApiConfig):
    """HubSpot app webhooks, plus the private-app token for record fetch and backfill."""

    public_url: HttpUrlText | None = Field(
        None, description="the exact URL HubSpot calls and signs (v2/v3) when a proxy rewrites it")
    signature_versions: list[Literal["v1", "v2", "v3"]] | None = Field(
        None, min_length=1, description="signature versions accepted (default all three)")
    api_base: HubSpotApiBase | None = Field(
        None, description="CRM API host (default https://api.hubapi.com; HubSpot's hosts only)")
    properties: dict[str, list[str]] = Field(
        default_factory=dict, description="{object_type: [extra property names]} to fetch")
