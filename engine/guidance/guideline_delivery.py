"""Progressive delivery of guideline content within a session, and compiling the context text.

Within one ``sessionId`` a section already delivered is not sent again; the tokens it would have cost are
reported as saved. Delivered section hashes live in SQL (``guideline_deliveries``), so every gateway
process and worker sees the same session state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from memrelay.engine.core.tokens import count_tokens
from memrelay.engine.core.util import utcnow
from memrelay.engine.guidance.guideline_routing import Match, Section
from memrelay.engine.stores.db.database import Database
from memrelay.engine.stores.db.models_llm import GuidelineDelivery

SESSION_TTL = timedelta(days=1)


class DeliveryLog:
    """Which sections each (org, session) has already received."""

    def __init__(self, db: Database):
        self.db = db

    def delivered(self, org_id: str, session_id: str) -> set[str]:
        with self.db.read() as s:
            return set(s.scalars(select(GuidelineDelivery.section_hash).where(
                GuidelineDelivery.org_id == org_id, GuidelineDelivery.session_id == session_id,
                GuidelineDelivery.delivered_at >= utcnow() - SESSION_TTL)))

    def mark(self, org_id: str, session_id: str, sections: list[tuple[str, Section]]) -> None:
        """Record ``(guideline_id, section)`` pairs as delivered (idempotent, safe under concurrency)."""
        if not sections:
            return
        now = utcnow()
        rows = [{"org_id": org_id, "session_id": session_id, "section_hash": sec.hash, "guideline_id": gid,
                 "tokens": sec.tokens, "delivered_at": now} for gid, sec in sections]
        dialect = postgresql if self.db.dialect == "postgresql" else sqlite
        stmt = dialect.insert(GuidelineDelivery).values(rows)
        stmt = stmt.on_conflict_do_update(index_elements=["org_id", "session_id", "section_hash"],
                                          set_={"delivered_at": now})
        with self.db.session() as s:
            s.execute(stmt)


@dataclass
class Compiled:
    """The compiled context and what went into it."""

    text: str = ""
    tokens: int = 0
    tokens_saved: int = 0
    items: list[dict[str, Any]] = field(default_factory=list)
    delivered: list[tuple[str, Section]] = field(default_factory=list)


def compile_context(matches: list[Match], *, already: set[str], max_tokens: int | None) -> Compiled:
    """Critical guidelines first, then supplementary; skip sections already delivered (counted as saved)
    and sections that would exceed ``max_tokens``."""
    out = Compiled()
    blocks: list[str] = []
    ordered = sorted(matches, key=lambda m: (m.priority != "critical", -m.score))
    for m in ordered:
        g = m.guideline
        fresh = [s for s in m.sections if s.hash not in already]
        saved = sum(s.tokens for s in m.sections if s.hash in already)
        header = f"## {g.name} ({m.priority})"
        body: list[Section] = []
        used = count_tokens(header + "\n") if fresh else 0
        for sec in fresh:
            cost = sec.tokens + 1
            if max_tokens is not None and out.tokens + used + cost > max_tokens:
                continue
            body.append(sec)
            used += cost
        omitted = [s.heading or "(intro)" for s in fresh if s not in body]
        if body:
            blocks.append("\n".join([header, *(s.text for s in body)]))
            out.tokens += used
            out.delivered += [(g.id, s) for s in body]
        out.tokens_saved += saved
        delivery = ("already_delivered" if not fresh else "omitted_budget" if not body
                    else "whole" if m.whole and len(body) == len(m.sections) else "sections")
        item = {"id": g.id, "name": g.name, "priority": m.priority, "score": m.score, "delivery": delivery,
                "sections": [s.heading or "(intro)" for s in body], "tokens": used if body else 0,
                "tokensSaved": saved, "reasons": m.reasons, "stale": g.stale, "version": g.version}
        if omitted:
            item["omittedForBudget"] = omitted
        out.items.append(item)
    out.text = "\n\n".join(blocks)
    if out.text:
        out.tokens = count_tokens(out.text)
    return out
