"""Base classes and helpers of the typed models: snake_case attributes, the API's camelCase on the wire."""

from __future__ import annotations

from typing import Any, TypedDict

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class ApiModel(BaseModel):
    """An answer of the API. Unknown keys are kept (``model_extra``) so newer gateways never break a client."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")


class RequestModel(BaseModel):
    """A request body; ``body()`` renders it as the API expects (camelCase, no unset optionals)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class RecordKeys(TypedDict, total=False):
    """Ways to name a record (any one finds it): Personize's identifier fields."""

    email: str
    website_url: str
    record_id: str
    custom_key_name: str
    custom_key_value: str
    custom_keys: dict[str, str]


class RecordRef(RecordKeys, total=False):
    """A record's keys plus its entity ``type`` (contact, company, deal, a custom type)."""

    type: str


_WIRE = {"email": "email", "website_url": "websiteUrl", "record_id": "recordId", "custom_key_name": "customKeyName",
         "custom_key_value": "customKeyValue", "custom_keys": "customKeys", "type": "type"}


def identifiers(ref: RecordKeys | RecordRef) -> dict[str, Any]:
    """The wire form of a :class:`RecordRef` (top-level identifier fields of a request body)."""
    unknown = set(ref) - set(_WIRE)
    if unknown:
        raise TypeError(f"unknown identifier field(s): {', '.join(sorted(unknown))}")
    return {_WIRE[k]: v for k, v in ref.items() if v is not None}


def drop_none(**fields: Any) -> dict[str, Any]:
    """``fields`` without the ones left ``None`` (optional parameters the caller did not give)."""
    return {k: v for k, v in fields.items() if v is not None}
