"""The ``config`` of a Salesforce source (validated on create/update; ``access_token`` is secret)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

from memrelay.connectors.config import CrmApiConfig, HttpUrlText
from memrelay.engine.egress.crm_hosts import crm_base_validator

_ORG_ID = re.compile(r"^\s*[A-Za-z0-9]{15}([A-Za-z0-9]{3})?\s*$")


def _org_id(value: str) -> str:
    if not _ORG_ID.match(value):
        raise ValueError("must be a 15- or 18-character Salesforce organization id")
    return value


OrgId = Annotated[str, AfterValidator(_org_id)]
InstanceUrl = Annotated[HttpUrlText, AfterValidator(crm_base_validator("salesforce"))]


class SalesforceConfig(CrmApiConfig):
    """Outbound Messages (path token + organization allowlist), plus REST credentials for fetch/backfill."""

    allowed_org_ids: list[OrgId] = Field(
        default_factory=list, description="organization ids accepted in Outbound Messages (15 or 18 chars)")
    instance_url: InstanceUrl | None = Field(
        None, description="REST API instance, https://acme.my.salesforce.com (Salesforce's hosts only)")
    ca_bundle: str | None = Field(None, description="CA bundle path for TLS verification")
    api_version: str | None = Field(None, pattern=r"^\d{2,3}\.\d$", description="REST API version (59.0)")
    fields: dict[str, list[str]] = Field(default_factory=dict, description="{SObject: [extra field names]}")
    fetch_fields: bool = Field(True, description="false: never query the API for an outbound message")
    bulk: bool = Field(False, description="backfill through Bulk API 2.0")
    max_api_usage: float | None = Field(None, gt=0, le=1, description="pause a backfill at this API usage")
    bulk_poll_s: float | None = Field(None, gt=0, le=300, description="Bulk 2.0 job polling interval")
