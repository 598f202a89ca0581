"""Typeform webhooks: ``Typeform-Signature: sha256=<base64 HMAC-SHA256(secret, raw body)>``.

Typeform signs no timestamp; redeliveries carry the same ``event_id``, which is the dedup key. Answers
are keyed by their field ``ref`` (or id when no ref is set), normalised to snake_case.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from memrelay.connectors.base import (
    BaseConnector,
    InboundEvent,
    SourceConfig,
    Verified,
    as_dict,
    header,
    load_json,
)
from memrelay.connectors.form_record import form_event, form_record
from memrelay.connectors.signing import b64_digest, verify_hmac
from memrelay.connectors.timeutil import parse_datetime
from memrelay.engine.core.errors import BadRequest, SignatureError

SIGNATURE_PREFIX = "sha256="


def answer_value(answer: Mapping[str, Any]) -> Any:
    """The plain value of one Typeform answer (choice -> label, choices -> labels list)."""
    kind = answer.get("type")
    if kind == "choice":
        choice = answer.get("choice") or {}
        return choice.get("label") or choice.get("other")
    if kind == "choices":
        choices = answer.get("choices") or {}
        labels = list(choices.get("labels") or [])
        return [*labels, choices["other"]] if choices.get("other") else labels
    return answer.get(kind) if isinstance(kind, str) else None


class TypeformConnector(BaseConnector):
    name = "typeform"

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
        received = (header(headers, "Typeform-Signature") or "").strip()
        if not received:
            raise SignatureError("missing Typeform-Signature header")
        if not received.startswith(SIGNATURE_PREFIX):
            raise SignatureError("Typeform-Signature must start with sha256=")
        verify_hmac(
            source,
            raw_body,
            [received[len(SIGNATURE_PREFIX) :]],
            encode=b64_digest,
            what="Typeform-Signature",
        )
        return self.verified(source, raw_body, headers)

    def parse(self, verified: Verified) -> list[InboundEvent]:
        """One ``form.submitted`` event per ``form_response``; other event types yield none."""
        source = self.opened(verified).source
        body = load_json(verified.body)
        if not isinstance(body, dict):
            raise BadRequest("Typeform webhook body must be a JSON object")
        event_id = body.get("event_id")
        response = body.get("form_response")
        if not isinstance(event_id, str) or not event_id:
            raise BadRequest("Typeform webhook has no event_id")
        if body.get("event_type") != "form_response":
            return []
        if not isinstance(response, dict):
            raise BadRequest("Typeform webhook has no form_response object")
        answers = response.get("answers") or []
        if not isinstance(answers, list):
            raise BadRequest("form_response.answers must be a list")

        fields: dict[str, Any] = {}
        email = None
        for answer in answers:
            if not isinstance(answer, dict) or not isinstance(answer.get("field"), dict):
                raise BadRequest("form_response.answers items must be objects with a field")
            key = answer["field"].get("ref") or answer["field"].get("id")
            if key:
                fields[str(key)] = answer_value(answer)
            if answer.get("type") == "email" and email is None:
                email = answer.get("email")
        definition = as_dict(response.get("definition"))
        submitted_at = parse_datetime(response.get("submitted_at"))
        record = form_record(
            fields,
            form_id=response.get("form_id"),
            form_name=definition.get("title"),
            submission_id=response.get("token"),
            submitted_at=submitted_at,
            hidden=response.get("hidden") if isinstance(response.get("hidden"), dict) else None,
            email=email,
        )
        calculated = response.get("calculated")
        if isinstance(calculated, dict) and "score" in calculated:
            record["score"] = calculated["score"]
        return [
            form_event(
                self,
                source,
                record=record,
                payload=body,
                dedup_id=event_id,
                submitted_at=submitted_at,
            )
        ]
