"""Typed source configuration: the base model every connector's config model extends.

A source's ``config`` (``POST /api/v1/sources``) is validated against its connector's model when it is
created or changed; the model's secret fields (``SecretStr``) drive redaction wherever a source is shown
and are what encryption at rest will cover. Stored configs keep their plain-JSON format: validation
never rewrites them, and rows stored before a field was declared still load (unknown keys are kept).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_core import ErrorDetails

from memrelay.engine.core.errors import ValidationFailed

MASK = "***"
LEGACY_SECRET_KEYS = frozenset({"access_token", "api_key", "client_secret", "password", "session_id"})
"""Masked whatever the connector declares (configs stored before the typed models existed)."""

_HTTP_URL = re.compile(r"^https?://[^\s/]+\S*$")


def _http_url(value: str) -> str:
    if len(value) > 2048 or not _HTTP_URL.match(value):
        raise ValueError("must be an http:// or https:// URL")
    return value


HttpUrlText = Annotated[str, AfterValidator(_http_url)]
"""An http(s) URL kept as the plain string it is stored as."""


class ConnectorConfig(BaseModel):
    """Base of every connector's ``config`` model. Declare secrets as ``SecretStr``."""

    model_config = ConfigDict(extra="allow", frozen=True)

    allow_query_token: bool = Field(
        False, description="also accept the source token as ?token= (it then shows in URLs and proxy logs; "
                           "prefer the X-Memrelay-Token header or the path)")

    @classmethod
    def secret_fields(cls) -> frozenset[str]:
        """Names of the fields typed ``SecretStr`` (optional or not)."""
        return frozenset(name for name, info in cls.model_fields.items() if _is_secret(info.annotation))

    @classmethod
    def validate_input(cls, config: Mapping[str, Any], *, connector: str) -> ConnectorConfig:
        """Validate a config sent by a client: unknown keys and bad values raise ``ValidationFailed`` (422)
        naming each field; secrets never appear in the message."""
        try:
            model = cls.model_validate(dict(config))
        except ValidationError as exc:
            problems = [{"field": ".".join(str(p) for p in err["loc"]) or "config", "message": _message(err)}
                        for err in exc.errors(include_input=False, include_url=False)]
            raise ValidationFailed(_summary(connector, problems), details={"problems": problems}) from None
        unknown = sorted(model.model_extra or {})
        if unknown:
            problems = [{"field": name, "message": "unknown config key"} for name in unknown]
            raise ValidationFailed(_summary(connector, problems),
                                   details={"problems": problems, "known": sorted(cls.model_fields)})
        return model

    @classmethod
    def redact(cls, config: Mapping[str, Any] | None) -> dict[str, Any]:
        """``config`` as shown through the API, CLI and logs: the model's secret fields, the legacy names and
        any key named like a credential (:func:`looks_secret`, at any depth) masked as ``***``."""
        hidden = cls.secret_fields() | LEGACY_SECRET_KEYS
        return {k: (MASK if (k in hidden or looks_secret(k)) and v else _redact_nested(v))
                for k, v in (config or {}).items()}


_SECRET_SUFFIXES = ("token", "secret", "password", "passwd", "api_key", "apikey", "private_key", "credentials",
                    "session_id", "client_secret")


def looks_secret(key: str) -> bool:
    """Suffix rule: ``refresh_token``, ``private_app_token``, ``smtp_password``, ``x_api_key`` ... are secrets."""
    name = key.lower().replace("-", "_")
    return any(name == s or name.endswith("_" + s) or name.endswith(s) for s in _SECRET_SUFFIXES)


def _redact_nested(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: (MASK if looks_secret(str(k)) and v else _redact_nested(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_nested(v) for v in value]
    return value


def _message(error: ErrorDetails) -> str:
    """Pydantic's message without its ``Value error, `` prefix for our own validators."""
    if error["type"] == "value_error" and "error" in error.get("ctx", {}):
        return str(error["ctx"]["error"])
    return error["msg"]


def _is_secret(annotation: Any) -> bool:
    if annotation is SecretStr:
        return True
    return any(_is_secret(arg) for arg in getattr(annotation, "__args__", ()))


def _summary(connector: str, problems: list[dict[str, str]]) -> str:
    listed = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
    return f"invalid {connector} source config: {listed}"


class CrmApiConfig(ConnectorConfig):
    """Options shared by the connectors with a CRM API client (record fetch and backfill)."""

    fetch: bool = Field(True, description="false maps webhook payloads only")
    access_token: SecretStr | None = Field(None, description="API token for record fetch and backfill")
    sync_objects: list[str] = Field(default_factory=list, description="backfill: object types to page")
    page_size: int | None = Field(None, ge=1, le=10_000, description="backfill page size")
    max_retries: int | None = Field(None, ge=0, le=20, description="API retries on 429/5xx")
    timeout_s: float | None = Field(None, gt=0, le=600, description="API request timeout")


class NoConfig(ConnectorConfig):
    """Connectors configured by their signing secret or token alone."""
