"""Webflow webhooks (OAuth-app signed): ``x-webflow-timestamp`` (ms) and ``x-webflow-signature``.

The signature is hex HMAC-SHA256(client secret, ``timestamp + ":" + raw body``); requests older than
5 minutes are rejected. Only ``form_submission`` triggers produce events; other triggers are
acknowledged and ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from memrelay.connectors.base import BaseConnector, InboundEvent, SourceConfig, Verified, header, load_json
from memrelay.connectors.form_record import form_event, form_record
from memrelay.connectors.signing import check_fresh, hex_digest, parse_timestamp, verify_hmac
from memrelay.connectors.timeutil import parse_datetime
from memrelay.engine.core.errors import BadRequest

TOLERANCE_S = 300


class WebflowConnector(BaseConnector):
    name = "webflow"

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
        timestamp = header(headers, "x-webflow-timestamp")
        check_fresh(
            parse_timestamp(timestamp, what="x-webflow-timestamp", unit_ms=True),
            now=now,
            tolerance=TOLERANCE_S,
        )
        signature = (header(headers, "x-webflow-signature") or "").strip().lower()
        message = (timestamp or "").strip().encode("ascii") + b":" + raw_body
        verify_hmac(source, message, [signature], encode=hex_digest, what="x-webflow-signature")
        return self.verified(source, raw_body, headers)

    def parse(self, verified: Verified) -> list[InboundEvent]:
        """One ``form.submitted`` event per ``form_submission`` trigger; other triggers yield none."""
        source = self.opened(verified).source
        body = load_json(verified.body)
        if not isinstance(body, dict):
            raise BadRequest("Webflow webhook body must be a JSON object")
        if body.get("triggerType") != "form_submission":
            return []
        submission: Any = body.get("payload")
        if not isinstance(submission, dict) or not isinstance(submission.get("data"), dict):
            raise BadRequest("Webflow form_submission has no payload.data object")
        submitted_at = parse_datetime(submission.get("submittedAt"))
        record = form_record(
            submission["data"],
            form_id=submission.get("formId"),
            form_name=submission.get("name"),
            submission_id=submission.get("id"),
            submitted_at=submitted_at,
        )
        record["site_id"] = submission.get("siteId")
        return [
            form_event(
                self,
                source,
                record=record,
                payload=body,
                dedup_id=record["submission_id"],
                submitted_at=submitted_at,
            )
        ]
