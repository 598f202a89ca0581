"""The ``config`` of a generic source (Zapier, Make, n8n, curl)."""

from __future__ import annotations

from pydantic import Field

from memrelay.connectors.config import ConnectorConfig


class GenericConfig(ConnectorConfig):
    """Records posted by any HTTP client; the body's ``object_type`` wins over the default below."""

    object_type: str | None = Field(None, pattern=r"^[a-z][a-z0-9_]{0,63}$",
                                    description="object type of records that name none (default contact)")
