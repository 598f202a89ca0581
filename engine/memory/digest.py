"""Smart memory digest: one record compiled into markdown — properties with freshness, recent
memories and linked records — fitted to a token budget counted with a real tokenizer (cl100k_base)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from memrelay.engine.core.tokens import count_tokens
from memrelay.engine.core.util import as_aware, iso, utcnow
from memrelay.engine.memory.direct_recall import property_text
from memrelay.engine.memory.memories import find_target, lift_identifiers, self_identifiers
from memrelay.engine.memory.memory_controls import unexpired
from memrelay.engine.stores.db.database import Database
from memrelay.engine.stores.db.models import Memory, PropertyValue, Record, RecordKey
from memrelay.engine.stores.identity import Identifiers, normalise_url, record_keys
from memrelay.engine.stores.properties import INFERENCE_SOURCE

MAX_LINKED = 10
RELATED_COMPANIES = 1
RELATED_MEMORIES = 10
NAME_PROPERTIES = ("name", "deal_name", "subject")


class DigestRequest(BaseModel):
    """POST /api/v1/smart-memory-digest (Personize's smartDigest, snake or camel case)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    identifiers: Identifiers = Field(default_factory=Identifiers)
    token_budget: int = Field(1000, ge=20, le=32_000, alias="tokenBudget")
    include_properties: bool = Field(True, alias="includeProperties")
    include_memories: bool = Field(True, alias="includeMemories")
    include_linked: bool = Field(True, alias="includeLinked")
    include_related: bool = Field(False, alias="includeRelated",
                                  description="Cross-entity context: add the sections of the record's company "
                                              "(and, for deals and tickets, its contact).")
    max_memories: int = Field(20, ge=0, le=500, alias="maxMemories")
    about: Literal["lead", "self"] = "lead"

    @model_validator(mode="before")
    @classmethod
    def _lift(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            for alias in ("include_company", "includeCompany", "include_cross_entity", "includeCrossEntity"):
                if alias in data and "include_related" not in data and "includeRelated" not in data:
                    data["include_related"] = data.pop(alias)
            if data.get("about") is None:
                data.pop("about", None)
        return lift_identifiers(data)

    def for_key(self, key_id: str | None) -> DigestRequest:
        """``about: "self"`` resolved to the API key's own record (unchanged otherwise)."""
        if self.about != "self":
            return self
        return self.model_copy(update={"identifiers": self_identifiers(key_id)})


def age(ts: datetime | None, now: datetime) -> str:
    """'just now', '5h', '3d', '2mo', '1y' — how old a value's source timestamp is."""
    ts = as_aware(ts)
    if ts is None:
        return "unknown age"
    seconds = max((now - ts).total_seconds(), 0.0)
    for unit, size in (("y", 365 * 86400), ("mo", 30 * 86400), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} old"
    return "just now"


def display_name(props: dict[str, Any], keys: dict[str, Any], fallback: str) -> str:
    full = " ".join(str(props[k]) for k in ("first_name", "last_name") if props.get(k))
    for candidate in (full, *(props.get(k) for k in NAME_PROPERTIES), keys.get("email"), keys.get("website_url")):
        if candidate:
            return str(candidate)
    return fallback


class Digests:
    """Builds record digests."""

    def __init__(self, db: Database):
        self.db = db

    def digest(self, org_id: str, req: DigestRequest) -> dict[str, Any]:
        """Markdown for one record, never over ``token_budget`` cl100k tokens."""
        now = utcnow()
        with self.db.read() as s:
            rec = find_target(s, org_id, req.identifiers)
            keys = record_keys(s, [rec.id])[rec.id]
            pvs = list(s.scalars(select(PropertyValue).where(PropertyValue.record_id == rec.id)
                                 .order_by(PropertyValue.name)))
            props = {pv.name: pv.value for pv in pvs}
            sections: list[tuple[str, list[str]]] = []
            if req.include_properties:
                sections.append(("## Properties", [_property_line(pv, now) for pv in pvs if pv.value not in (None, "", [])]))
            memories: list[Memory] = []
            if req.include_memories and req.max_memories:
                memories = recent_memories(s, org_id, rec.id, req.max_memories)
                sections.append(("## Recent memories", [_memory_line(m) for m in memories]))
            linked = linked_records(s, org_id, rec, keys) if req.include_linked else []
            if linked:
                sections.append(("## Linked records", _linked_lines(s, linked)))
            related = related_records(s, org_id, rec, keys) if req.include_related else []
            for other in related:
                sections.append(_related_section(s, org_id, other, now, req))
            inferred = inferred_values(s, ([rec] if req.include_properties else []) + linked)
        title = f"# {rec.entity_type.capitalize()}: {display_name(props, keys, rec.primary_key)}"
        key_line = ", ".join(f"{k}: {v}" for k, v in keys.items() if not isinstance(v, dict))
        markdown, used, truncated = fit([title] + ([f"_{key_line}_"] if key_line else []), sections,
                                        req.token_budget)
        return {"recordId": rec.id, "record_id": rec.id, "type": rec.entity_type, "compiledContext": markdown,
                "properties": {pv.name: property_text(pv.value) for pv in pvs if pv.value not in (None, "", [])}
                if req.include_properties else {},
                "memories": [{"text": m.text, "createdAt": iso(m.ts)} for m in memories],
                "markdown": markdown, "tokenEstimate": used, "tokenBudget": req.token_budget, "truncated": truncated,
                "counts": {"properties": len(pvs), "memories": len(memories), "linkedRecords": len(linked),
                           "relatedRecords": len(related)},
                "relatedRecords": [{"recordId": r.id, "type": r.entity_type} for r in related],
                "inferred": inferred}


def inferred_values(s: Session, records: list[Record]) -> list[dict[str, Any]]:
    """The set inferred values of ``records`` (in that order, then by property name) as
    ``{recordId, type, property, value, confidence}``."""
    if not records:
        return []
    types = {r.id: r.entity_type for r in records}
    rows = s.scalars(select(PropertyValue).where(PropertyValue.record_id.in_(list(types)),
                                                 PropertyValue.source == INFERENCE_SOURCE))
    order = {rid: i for i, rid in enumerate(types)}
    found = sorted((pv for pv in rows if pv.value not in (None, "", [])),
                   key=lambda pv: (order[pv.record_id], pv.name))
    return [{"recordId": pv.record_id, "type": types[pv.record_id], "property": pv.name, "value": pv.value,
             "confidence": pv.confidence} for pv in found]


def recent_memories(s: Session, org_id: str, record_id: str, limit: int) -> list[Memory]:
    """A record's live (not superseded, not deleted, not expired) memories, newest content first."""
    return list(s.scalars(select(Memory).where(
        Memory.org_id == org_id, Memory.record_id == record_id, Memory.superseded_by.is_(None),
        Memory.deleted_at.is_(None), unexpired()).order_by(Memory.ts.desc(), Memory.id).limit(limit)))


def related_records(s: Session, org_id: str, rec: Record, keys: dict[str, Any]) -> list[Record]:
    """Cross-entity context of a record: its company (by its website key or email domain) and, for a deal
    or ticket, the contact whose email it carries."""
    if rec.entity_type == "company":
        return []
    out = linked_records(s, org_id, rec, keys)[:RELATED_COMPANIES]
    email = keys.get("email")
    if rec.entity_type != "contact" and email:
        out = _records(s, select(Record).join(RecordKey, RecordKey.record_id == Record.id).where(
            RecordKey.org_id == org_id, RecordKey.key_name == "email", RecordKey.key_value == email,
            Record.entity_type == "contact", Record.id != rec.id))[:1] + out
    return out


def _related_section(s: Session, org_id: str, other: Record, now: datetime,
                     req: DigestRequest) -> tuple[str, list[str]]:
    keys = record_keys(s, [other.id])[other.id]
    pvs = list(s.scalars(select(PropertyValue).where(PropertyValue.record_id == other.id)
                         .order_by(PropertyValue.name)))
    props = {pv.name: pv.value for pv in pvs}
    header = f"## {other.entity_type.capitalize()}: {display_name(props, keys, other.primary_key)}"
    lines = [_property_line(pv, now) for pv in pvs if pv.value not in (None, "", [])] if req.include_properties else []
    if req.include_memories and req.max_memories:
        lines += [_memory_line(m) for m in recent_memories(s, org_id, other.id, min(req.max_memories,
                                                                                    RELATED_MEMORIES))]
    return header, lines or ["- (nothing known yet)"]


def fit(head: list[str], sections: list[tuple[str, list[str]]], budget: int) -> tuple[str, int, bool]:
    """Append lines in order while the text stays within ``budget`` tokens (counted per line, then the
    whole text is counted exactly and trimmed if BPE merges across lines ever made it longer)."""
    lines: list[str] = []
    used = 0
    truncated = False

    def add(new: list[str]) -> bool:
        nonlocal used
        cost = sum(count_tokens(line + "\n") for line in new)
        if used + cost > budget:
            return False
        lines.extend(new)
        used += cost
        return True

    for line in head:
        truncated |= not add([line])
    for header, body in sections:
        started = False
        for line in body:
            ok = add([line]) if started else add(([""] if lines else []) + [header, line])
            started |= ok
            truncated |= not ok
    text = "\n".join(lines)
    while lines and count_tokens(text) > budget:
        lines.pop()
        truncated = True
        text = "\n".join(lines)
    return text, count_tokens(text), truncated


def _property_line(pv: PropertyValue, now: datetime) -> str:
    value = ", ".join(map(str, pv.value)) if isinstance(pv.value, list) else pv.value
    meta = [f"inferred by {pv.actor or 'rule'}" if pv.source == INFERENCE_SOURCE else pv.source or "unknown source",
            age(pv.source_ts or pv.updated_at, now)]
    if pv.confidence is not None:
        meta.append(f"confidence {pv.confidence:.2f}")
    return f"- **{pv.name}**: {value} _({'; '.join(meta)})_"


def _memory_line(m: Memory) -> str:
    ts = as_aware(m.ts)
    seen = f" (seen {m.seen_count}×)" if (m.seen_count or 1) > 1 else ""
    return f"- {ts.date().isoformat() if ts else '?'}: {m.text}{seen}"


def linked_records(s: Session, org_id: str, rec: Record, keys: dict[str, Any]) -> list[Record]:
    """A contact's company (by website key or email domain); a company's contacts (same keys)."""
    sites: set[str] = set()
    if keys.get("website_url"):
        sites.add(keys["website_url"])
    email = keys.get("email")
    if rec.entity_type != "company" and email and "@" in email:
        sites.add(normalise_url(email.split("@", 1)[1]))
    if rec.entity_type == "company":
        found = _by_keys(s, org_id, "website_url", sites, exclude=rec.id)
        for site in sites:
            domain = site.split("/", 1)[0]
            found += _records(s, select(Record).join(RecordKey, RecordKey.record_id == Record.id).where(
                RecordKey.org_id == org_id, RecordKey.key_name == "email",
                RecordKey.key_value.like(f"%@{domain}")))
        return _unique(r for r in found if r.id != rec.id and r.entity_type != "company")
    found = _by_keys(s, org_id, "website_url", sites, exclude=rec.id)
    return _unique(r for r in found if r.entity_type == "company")


def _by_keys(s: Session, org_id: str, name: str, values: set[str], *, exclude: str) -> list[Record]:
    if not values:
        return []
    return _records(s, select(Record).join(RecordKey, RecordKey.record_id == Record.id).where(
        RecordKey.org_id == org_id, RecordKey.key_name == name, RecordKey.key_value.in_(sorted(values)),
        Record.id != exclude))


def _records(s: Session, q: Any) -> list[Record]:
    return list(s.scalars(q.where(Record.deleted_at.is_(None)).limit(MAX_LINKED * 2)))


def _unique(records: Iterable[Record]) -> list[Record]:
    return list({r.id: r for r in records}.values())[:MAX_LINKED]


def _linked_lines(s: Session, linked: list[Record]) -> list[str]:
    ids = [r.id for r in linked]
    keys = record_keys(s, ids)
    props: dict[str, dict[str, Any]] = {rid: {} for rid in ids}
    inferred: dict[tuple[str, str], float | None] = {}
    for rid, name, value, source, confidence in s.execute(
            select(PropertyValue.record_id, PropertyValue.name, PropertyValue.value, PropertyValue.source,
                   PropertyValue.confidence).where(PropertyValue.record_id.in_(ids))):
        props[rid][name] = value
        if source == INFERENCE_SOURCE:
            inferred[(rid, name)] = confidence
    lines = []
    for r in linked:
        p = props[r.id]
        detail = ", ".join(f"{k}: {v}{_inferred_mark(inferred, r.id, k)}" for k, v in sorted(p.items())
                           if k not in ("first_name", "last_name", "name") and v not in (None, "", []))[:300]
        lines.append(f"- {r.entity_type} **{display_name(p, keys[r.id], r.primary_key)}** ({r.id})"
                     + (f" — {detail}" if detail else ""))
    return lines


def _inferred_mark(inferred: dict[tuple[str, str], float | None], record_id: str, name: str) -> str:
    """`` (inferred, confidence 0.90)`` after an inferred value of a linked record; empty for others."""
    if (record_id, name) not in inferred:
        return ""
    confidence = inferred[(record_id, name)]
    return " (inferred" + (f", confidence {confidence:.2f})" if confidence is not None else ")")
