"""The evidence one inference reads: a record's memories (optionally by tag), listed properties and linked
company, each with the id the result can cite, rendered within a token budget."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from memrelay.engine.core.properties_types import PropertySpec
from memrelay.engine.core.tokens import count_tokens
from memrelay.engine.memory.digest import linked_records
from memrelay.engine.memory.direct_recall import property_text
from memrelay.engine.stores.db.models import Memory, PropertyValue, Record
from memrelay.engine.stores.identity import record_keys

MAX_MEMORIES = 40
COMPANY_MEMORIES = 10
MAX_LINE_CHARS = 400


@dataclass(frozen=True)
class Item:
    """One cited piece of evidence: ``ref`` is what a producer names (``m3``, ``p1``), ``kind`` memory or
    property, ``id`` the memory id or ``<record id>:<property>``."""

    ref: str
    kind: str
    id: str
    text: str
    record_id: str
    ts: datetime | None = None
    version: int | None = None
    tags: tuple[str, ...] = ()


@dataclass
class Evidence:
    """Everything one record's inference may read."""

    record_id: str
    entity_type: str
    items: list[Item] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.items

    def by_ref(self) -> dict[str, Item]:
        return {i.ref: i for i in self.items}

    def render(self, token_budget: int) -> str:
        """The items as ``[ref] text`` lines, newest memories first, cut at ``token_budget`` tokens."""
        lines: list[str] = []
        used = 0
        for item in self.items:
            line = f"[{item.ref}] {item.text}"
            cost = count_tokens(line) + 1
            if used + cost > token_budget:
                break
            lines.append(line)
            used += cost
        return "\n".join(lines) if lines else "(no evidence)"


def cite(items: list[Item]) -> dict[str, Any]:
    """The evidence ids stored with a value: memory ids and property references (record, name, version)."""
    return {"memoryIds": [i.id for i in items if i.kind == "memory"],
            "properties": [{"recordId": i.record_id, "name": i.id.split(":", 1)[1], "version": i.version}
                           for i in items if i.kind == "property"]}


def gather(s: Session, org_id: str, records: list[Record], spec: PropertySpec) -> dict[str, Evidence]:
    """Evidence for ``spec`` on each record (one query per kind for the whole list)."""
    decl = spec.inferred
    assert decl is not None
    ids = [r.id for r in records]
    out = {r.id: Evidence(r.id, r.entity_type) for r in records}
    if decl.evidence.properties:
        _add_properties(s, ids, decl.evidence.properties, out)
    _add_memories(s, org_id, ids, decl.evidence.memoryTags, MAX_MEMORIES, out)
    if decl.evidence.linkedCompany:
        _add_company(s, org_id, records, out)
    return out


def _add_properties(s: Session, ids: list[str], names: list[str], out: dict[str, Evidence]) -> None:
    rows = s.execute(select(PropertyValue.record_id, PropertyValue.name, PropertyValue.value, PropertyValue.version,
                            PropertyValue.source_ts)
                     .where(PropertyValue.record_id.in_(ids), PropertyValue.name.in_(names))
                     .order_by(PropertyValue.record_id, PropertyValue.name))
    for rid, name, value, version, ts in rows:
        if value in (None, "", []):
            continue
        ev = out[rid]
        ev.items.append(Item(f"p{len(ev.items) + 1}", "property", f"{rid}:{name}",
                             f"{name}: {property_text(value)}"[:MAX_LINE_CHARS], rid, ts, version))


def _add_memories(s: Session, org_id: str, ids: list[str], tags: list[str], limit: int,
                  out: dict[str, Evidence], *, into: dict[str, str] | None = None, label: str = "") -> None:
    """Live memories of ``ids`` (newest first, at most ``limit`` each); ``into`` maps a memory's record to
    the evidence it is added to (a linked company's memories go to its contacts)."""
    rows = s.execute(select(Memory.id, Memory.record_id, Memory.text, Memory.tags, Memory.ts)
                     .where(Memory.org_id == org_id, Memory.record_id.in_(ids), Memory.superseded_by.is_(None),
                            Memory.deleted_at.is_(None))
                     .order_by(Memory.record_id, Memory.ts.desc(), Memory.id))
    taken: dict[str, int] = {}
    for mid, rid, text, mtags, ts in rows:
        if tags and not set(tags) & set(mtags or []):
            continue
        if taken.get(rid, 0) >= limit:
            continue
        taken[rid] = taken.get(rid, 0) + 1
        targets = [k for k, v in (into or {}).items() if v == rid] if into is not None else [rid]
        for target in targets:
            ev = out[target]
            ev.items.append(Item(f"m{len(ev.items) + 1}", "memory", mid, f"{label}{text}"[:MAX_LINE_CHARS], rid,
                                 ts, None, tuple(mtags or ())))


def _add_company(s: Session, org_id: str, records: list[Record], out: dict[str, Evidence]) -> None:
    keys = record_keys(s, [r.id for r in records])
    company_of: dict[str, str] = {}
    for r in records:
        if r.entity_type == "company":
            continue
        found = linked_records(s, org_id, r, keys.get(r.id, {}))
        if found:
            company_of[r.id] = found[0].id
    if not company_of:
        return
    companies = sorted(set(company_of.values()))
    rows = s.execute(select(PropertyValue.record_id, PropertyValue.name, PropertyValue.value, PropertyValue.version)
                     .where(PropertyValue.record_id.in_(companies)).order_by(PropertyValue.name))
    for cid, name, value, version in rows:
        if value in (None, "", []):
            continue
        for rid in (k for k, v in company_of.items() if v == cid):
            ev = out[rid]
            ev.items.append(Item(f"p{len(ev.items) + 1}", "property", f"{cid}:{name}",
                                 f"company {name}: {property_text(value)}"[:MAX_LINE_CHARS], cid, None, version))
    _add_memories(s, org_id, companies, [], COMPANY_MEMORIES, out, into=company_of, label="(company) ")
