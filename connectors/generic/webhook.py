"""Generic HTTP actions (Webhooks by Zapier, Make, n8n, curl): JSON or form-encoded records.

Authentication is the gateway's API-key check, done before this connector runs. ``verify`` adds a
per-source token check only when the source has a ``token`` configured.

Each body is one record (a JSON object or form fields, ``__``-flattened keys expanded) or a JSON array
of up to 100 records. Optional meta keys per record:

- ``object_type``/``entity_type``: ``contact`` (default, or ``source.options["object_type"]``),
  ``company``, ``deal``... -- the key into ``generic/mapping.yaml``;
- ``event_type``/``event``: defaults to ``<object_type>.upsert``;
- ``event_id``/``idempotency_key``/``id``: dedup key (else a hash of the record's canonical JSON, so
  an identical re-post is a duplicate);
- ``occurred_at``/``updated_at``/``timestamp``: the change time (else the time of receipt).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from memrelay.connectors.base import (
    BaseConnector,
    InboundEvent,
    SourceConfig,
    Verified,
    as_id,
    check_batch_size,
    content_digest,
)
from memrelay.connectors.formdata import parse_body, unflatten
from memrelay.connectors.signing import provided_token, verify_token
from memrelay.connectors.timeutil import parse_datetime, utcnow
from memrelay.engine.core.errors import BadRequest

_OBJECT_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_EVENT_TYPE = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")


def _first(record: Mapping[str, Any], *names: str) -> Any:
    return next((record[name] for name in names if record.get(name) not in (None, "")), None)


class GenericConnector(BaseConnector):
    name = "generic"
    api_key_auth = True

    def verify(
        self,
        headers: Mapping[str, str],
        raw_body: bytes,
        *,
        source: SourceConfig,
        method: str = "POST",
        url: str = "",
        token: str | None = None,
        now: float | None = None,
    ) -> Verified:
        if source.token is not None:
            verify_token(source.token, provided_token(headers, token))
        return self.verified(source, raw_body, headers)

    def parse(self, verified: Verified) -> list[InboundEvent]:
        """One event per record (a JSON object, form fields, or a JSON array of up to 100)."""
        source = self.opened(verified).source
        body = parse_body(verified.body, verified.content_type)
        items = body if isinstance(body, list) else [body]
        check_batch_size(len(items))
        if not items:
            raise BadRequest("empty batch")
        return [self._parse_one(index, item, source) for index, item in enumerate(items)]

    def _parse_one(self, index: int, item: Any, source: SourceConfig) -> InboundEvent:
        if not isinstance(item, dict):
            raise BadRequest(f"record {index} is not an object", details={"index": index})
        record = unflatten(item)
        object_type = str(
            _first(record, "object_type", "entity_type") or source.options.get("object_type", "contact")
        )
        if not _OBJECT_TYPE.match(object_type):
            raise BadRequest(f"record {index} has an invalid object_type", details={"index": index})
        event_type = str(_first(record, "event_type", "event") or f"{object_type}.upsert")
        if not _EVENT_TYPE.match(event_type):
            raise BadRequest(f"record {index} has an invalid event_type", details={"index": index})
        event_id = as_id(_first(record, "event_id", "idempotency_key", "id"))
        raw_time = _first(record, "occurred_at", "updated_at", "timestamp")
        occurred_at = parse_datetime(raw_time)
        if raw_time is not None and occurred_at is None:
            raise BadRequest(f"record {index} has an unparseable occurred_at", details={"index": index})
        return self.new_event(
            source,
            dedup_key=f"generic:{event_id}" if event_id else f"generic:sha256-{content_digest(record)}",
            event_type=event_type,
            object_type=object_type,
            source_object_type=object_type,
            object_id=as_id(_first(record, "id", "external_id")),
            occurred_at=occurred_at or utcnow(),
            payload=item,
            record=record,
        )
