"""Pure webhook connectors (no Flask, no database, no Redis) and declarative field mappings.

Owns one package per provider (``hubspot/``, ``salesforce/``, ``stripe/``, ``typeform/``, ``webflow/``,
``generic_hmac/``, ``forms/``, ``generic/``: verification and parsing, API client, default mapping,
fixtures, doc), the registry of them (``registry``), the shared contract (``base``), typed source configs
(``config``) and shared helpers (``signing``, ``formdata``, ``form_record``, ``timeutil``, ``safexml``,
``money``, ``crm_http``), mappings (``mapping``, ``transforms``) and the CRM backfill loop (``sync``).

May import ``memrelay.engine.core`` and ``memrelay.engine.egress`` and third-party SDKs; never the engine's
stores or services, ingest, queue, workflows, gateway or worker.

Public interface (see ``connectors/README.md``)::

    from memrelay.connectors import SourceConfig, InboundEvent, Verified, get_connector, connector_names
    from memrelay.connectors.registry import connector_info, validate_config, redact_config
    from memrelay.connectors.mapping import load_default_mapping, load_mapping, map_event, apply_mapping, lint_mapping_file
"""

from memrelay.connectors.base import (
    MAX_EVENTS_PER_REQUEST,
    AckResponse,
    Connector,
    FetchingConnector,
    InboundEvent,
    SourceConfig,
    Verified,
)
from memrelay.connectors.registry import ConnectorInfo, connector_info, connector_names, get_connector

__all__ = [
    "MAX_EVENTS_PER_REQUEST",
    "AckResponse",
    "Connector",
    "ConnectorInfo",
    "FetchingConnector",
    "InboundEvent",
    "SourceConfig",
    "Verified",
    "connector_info",
    "connector_names",
    "get_connector",
]
