"""Pure webhook connectors (no Flask, no database, no Redis) and declarative field mappings.

Public interface (see ``connectors/README.md``)::

    from memrelay.connectors import SourceConfig, InboundEvent, get_connector, connector_names
    from memrelay.connectors.mapping import load_default_mapping, load_mapping, map_event, apply_mapping, lint_mapping_file
"""

from memrelay.connectors.base import (
    MAX_EVENTS_PER_REQUEST,
    AckResponse,
    Connector,
    InboundEvent,
    SourceConfig,
    connector_names,
    get_connector,
)

__all__ = [
    "MAX_EVENTS_PER_REQUEST",
    "AckResponse",
    "Connector",
    "InboundEvent",
    "SourceConfig",
    "connector_names",
    "get_connector",
]
