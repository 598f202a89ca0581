"""Read-only queries behind the operator console: filtered, offset-paged event lists with a total, and LLM
usage per day and model. Writes stay in the owning stores (``EventLog.replay``, ``WebhooksOut.redeliver``...)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, func, select

from memrelay.engine.core.errors import BadRequest
from memrelay.engine.stores.db.database import Database
from memrelay.engine.stores.db.models import InboundEvent
from memrelay.engine.stores.db.models_llm import LLMUsageRow
from memrelay.engine.stores.event_log import STATUSES, event_to_dict

MAX_EVENTS_PAGE = 200


@dataclass(frozen=True)
class EventFilter:
    """What the events page filters on; every field is optional. ``event_type`` ending in ``*`` is a prefix."""

    status: str | None = None
    source_id: str | None = None
    event_type: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class EventPage:
    events: list[dict[str, Any]]
    total: int
    offset: int
    limit: int


def events_page(db: Database, org_id: str, f: EventFilter, *, offset: int = 0, limit: int = 50) -> EventPage:
    """One page of the org's inbound events, newest first, with the total matching the filter."""
    if f.status is not None and f.status not in STATUSES:
        raise BadRequest(f"status must be one of {list(STATUSES)}")
    if not 1 <= limit <= MAX_EVENTS_PAGE or offset < 0:
        raise BadRequest(f"limit must be between 1 and {MAX_EVENTS_PAGE} and offset >= 0")
    q = select(InboundEvent).where(InboundEvent.org_id == org_id)
    if f.status:
        q = q.where(InboundEvent.status == f.status)
    if f.source_id:
        q = q.where(InboundEvent.source_id == f.source_id)
    if f.event_type:
        if f.event_type.endswith("*"):
            q = q.where(InboundEvent.event_type.startswith(f.event_type[:-1], autoescape=True))
        else:
            q = q.where(InboundEvent.event_type == f.event_type)
    if f.since:
        q = q.where(InboundEvent.received_at >= f.since)
    if f.until:
        q = q.where(InboundEvent.received_at < f.until)
    with db.read() as s:
        total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
        rows = s.scalars(q.order_by(InboundEvent.received_at.desc(), InboundEvent.id.desc())
                         .offset(offset).limit(limit))
        return EventPage([event_to_dict(e) for e in rows], int(total), offset, limit)


def event_types(db: Database, org_id: str, *, limit: int = 200) -> list[str]:
    """The distinct event types the org has received (the type filter's choices)."""
    with db.read() as s:
        return list(s.scalars(select(InboundEvent.event_type).where(InboundEvent.org_id == org_id)
                              .group_by(InboundEvent.event_type).order_by(InboundEvent.event_type).limit(limit)))


def usage_by_day_and_model(db: Database, org_id: str, since: datetime) -> list[dict[str, Any]]:
    """LLM calls, tokens and cost per UTC day and model since ``since``, oldest day first."""
    if db.dialect == "postgresql":  # the UTC day whatever the session's TimeZone
        day: Any = func.to_char(func.timezone("UTC", LLMUsageRow.created_at), "YYYY-MM-DD")
    else:  # SQLite keeps UTC timestamps as ISO text
        day = func.substr(func.cast(LLMUsageRow.created_at, String()), 1, 10)
    with db.read() as s:
        rows = s.execute(select(day, LLMUsageRow.model, func.sum(LLMUsageRow.calls),
                                func.sum(LLMUsageRow.prompt_tokens), func.sum(LLMUsageRow.completion_tokens),
                                func.sum(LLMUsageRow.total_tokens), func.sum(LLMUsageRow.cost_usd))
                         .where(LLMUsageRow.org_id == org_id, LLMUsageRow.created_at >= since)
                         .group_by(day, LLMUsageRow.model).order_by(day, LLMUsageRow.model)).all()
    return [{"day": d, "model": m, "calls": int(c or 0), "promptTokens": int(p or 0),
             "completionTokens": int(o or 0), "totalTokens": int(t or 0), "costUsd": round(float(u or 0), 8)}
            for d, m, c, p, o, t, u in rows]

