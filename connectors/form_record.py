"""Form submissions: the record shape and event shared by every form connector.

Every form connector (``typeform``, ``webflow``, ``generic_hmac``, ``form``) emits ``form.submitted``
events with ``object_type="contact"``, ``source_object_type="form_submission"`` and this ``record``::

    {"form_id", "form_name", "submission_id", "submitted_at" (ISO), "email",
     "fields": {snake_case_field_name: value}, "hidden": {...}}

so one mapping (``forms/mapping.yaml``) fits them all. Field names are normalised to snake_case
("First Name" -> ``first_name``); ``email`` is the first email-looking field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from memrelay.connectors.base import (
    BaseConnector,
    InboundEvent,
    SourceConfig,
    Verified,
    as_id,
    content_digest,
    isoformat,
)
from memrelay.connectors.formdata import parse_fields
from memrelay.connectors.timeutil import parse_datetime, utcnow

FORM_OBJECT_TYPE = "form_submission"
FORM_EVENT_TYPE = "form.submitted"

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_NON_WORD = re.compile(r"[^0-9a-z]+")
_EMAIL_KEYS = ("email", "email_address", "e_mail", "work_email", "your_email")

# Keys of a generic form body that describe the submission rather than being answers.
META_KEYS = {
    "form_id": ("form_id", "formId"),
    "form_name": ("form_name", "formName", "form"),
    "submission_id": ("submission_id", "submissionId", "event_id", "id"),
    "submitted_at": ("submitted_at", "submittedAt", "timestamp"),
}


def field_key(name: str) -> str:
    """Normalise a form field label/ref to snake_case: ``"E-mail Address" -> "e_mail_address"``."""
    return _NON_WORD.sub("_", str(name).strip().lower()).strip("_") or "field"


def normalise_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Snake-case the keys (first occurrence wins on collisions); values untouched."""
    out: dict[str, Any] = {}
    for name, value in fields.items():
        out.setdefault(field_key(name), value)
    return out


def looks_like_email(value: Any) -> bool:
    return isinstance(value, str) and bool(_EMAIL.match(value.strip()))


def find_email(fields: Mapping[str, Any]) -> str | None:
    """The submitter's email: a conventionally named field first, then any email-looking value."""
    for key in _EMAIL_KEYS:
        if looks_like_email(fields.get(key)):
            return fields[key].strip().lower()
    for value in fields.values():
        if looks_like_email(value):
            return value.strip().lower()
    return None


def form_record(
    fields: Mapping[str, Any],
    *,
    form_id: Any = None,
    form_name: Any = None,
    submission_id: Any = None,
    submitted_at: datetime | None = None,
    hidden: Mapping[str, Any] | None = None,
    email: str | None = None,
) -> dict[str, Any]:
    """Build the canonical form record (see module docstring)."""
    normalised = normalise_fields(fields)
    return {
        "form_id": as_id(form_id),
        "form_name": form_name if isinstance(form_name, str) else None,
        "submission_id": as_id(submission_id),
        "submitted_at": isoformat(submitted_at),
        "email": email.strip().lower() if email and looks_like_email(email) else find_email(normalised),
        "fields": normalised,
        "hidden": dict(hidden or {}),
    }


def form_event(
    connector: BaseConnector,
    source: SourceConfig,
    *,
    record: dict[str, Any],
    payload: dict[str, Any],
    dedup_id: str | None,
    submitted_at: datetime | None,
) -> InboundEvent:
    """Wrap a form record; without a provider id the dedup key is a hash of the payload."""
    dedup = dedup_id or f"sha256-{content_digest(payload)}"
    return connector.new_event(
        source,
        dedup_key=f"{connector.name}:{dedup}",
        event_type=FORM_EVENT_TYPE,
        object_type="contact",
        source_object_type=FORM_OBJECT_TYPE,
        object_id=record.get("submission_id"),
        occurred_at=submitted_at or utcnow(),
        payload=payload,
        record=record,
        attributes={"email": record["email"]} if record.get("email") else {},
    )


def _first(body: Mapping[str, Any], names: tuple[str, ...]) -> Any:
    return next((body[name] for name in names if body.get(name) not in (None, "")), None)


def parse_generic_form(connector: BaseConnector, verified: Verified) -> InboundEvent:
    """A flat JSON/form body: meta keys (``form_id``, ``submission_id``...) apart, the rest are answers.

    Answers may also be nested under ``fields``; ``hidden`` is kept apart.
    """
    source = verified.source
    body = parse_fields(verified.body, verified.content_type)
    meta = {name: _first(body, keys) for name, keys in META_KEYS.items()}
    consumed = {key for keys in META_KEYS.values() for key in keys} | {"fields", "hidden"}
    answers = body["fields"] if isinstance(body.get("fields"), dict) else {}
    answers = {**{k: v for k, v in body.items() if k not in consumed}, **answers}
    submitted_at = parse_datetime(meta["submitted_at"])
    record = form_record(
        answers,
        form_id=meta["form_id"],
        form_name=meta["form_name"],
        submission_id=meta["submission_id"],
        submitted_at=submitted_at,
        hidden=body["hidden"] if isinstance(body.get("hidden"), dict) else None,
    )
    return form_event(
        connector,
        source,
        record=record,
        payload=body,
        dedup_id=as_id(meta["submission_id"]),
        submitted_at=submitted_at,
    )
