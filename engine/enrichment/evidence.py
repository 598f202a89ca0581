"""The evidence one inference reads: a record's memories (optionally by tag), listed properties and linked
company, each with the id the result can cite, rendered within a token budget."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, false, or_, select
from sqlalchemy.orm import Session

from memrelay.engine.core.properties_types import PropertySpec
from memrelay.engine.core.tokens import count_tokens
from memrelay.engine.memory.digest import linked_records
from memrelay.engine.memory.direct_recall import property_text
from memrelay.engine.stores.db.models import Memory, PropertyValue, Record, RecordKey
from memrelay.engine.stores.identity import normalise_url, record_keys

MAX_MEMORIES = 40
COMPANY_MEMORIES = 10
MAX_LINE_CHARS = 400
LINK_BATCH = 50


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


def linked_to_companies(s: Session, org_id: str, company_ids: list[str],
                        entity_types: list[str]) -> dict[str, list[tuple[str, str]]]:
    """Per company, the live records of ``entity_types`` whose linked company it is (the reverse of
    :func:`~memrelay.engine.memory.digest.linked_records`: same website key, or an email at its domain),
    as ``(record id, entity type)``. One query per ``LINK_BATCH`` companies."""
    if not company_ids or not entity_types:
        return {}
    company_of_site: dict[str, str] = {site: cid for cid, site in s.execute(
        select(RecordKey.record_id, RecordKey.key_value).where(
            RecordKey.record_id.in_(company_ids), RecordKey.key_name == "website_url"))}
    sites = sorted(company_of_site)
    found: dict[str, dict[str, str]] = {}
    for start in range(0, len(sites), LINK_BATCH):
        batch = sites[start:start + LINK_BATCH]
        emails = [RecordKey.key_value.like(f"%@{site}") for site in batch if "/" not in site]
        match = or_(and_(RecordKey.key_name == "website_url", RecordKey.key_value.in_(batch)),
                    and_(RecordKey.key_name == "email", or_(*emails)) if emails else false())
        rows = s.execute(select(Record.id, Record.entity_type, RecordKey.key_name, RecordKey.key_value)
                         .join(RecordKey, RecordKey.record_id == Record.id)
                         .where(RecordKey.org_id == org_id, match, Record.entity_type.in_(entity_types),
                                Record.deleted_at.is_(None)))
        for rid, et, key, value in rows:
            site = value if key == "website_url" else normalise_url(value.rsplit("@", 1)[1])
            cid = company_of_site.get(site)
            if cid is not None and cid != rid:
                found.setdefault(cid, {})[rid] = et
    return {cid: sorted(records.items()) for cid, records in found.items()}


def lost_evidence(s: Session, cited: dict[str, Any]) -> dict[str, list[Any]]:
    """What of an inferred value's cited evidence (:func:`cite`) no longer holds: memories deleted or
    superseded since, and properties changed (another version), emptied or gone."""
    memory_ids = list(cited.get("memoryIds") or [])
    live = set(s.scalars(select(Memory.id).where(Memory.id.in_(memory_ids), Memory.deleted_at.is_(None),
                                                 Memory.superseded_by.is_(None)))) if memory_ids else set()
    props = list(cited.get("properties") or [])
    current: dict[tuple[str, str], tuple[Any, int]] = {}
    if props:
        rows = s.execute(select(PropertyValue.record_id, PropertyValue.name, PropertyValue.value,
                                PropertyValue.version)
                         .join(Record, Record.id == PropertyValue.record_id)
                         .where(PropertyValue.record_id.in_({p["recordId"] for p in props}),
                                PropertyValue.name.in_({p["name"] for p in props}), Record.deleted_at.is_(None)))
        current = {(rid, name): (value, version) for rid, name, value, version in rows}
    changed = [p for p in props if current.get((p["recordId"], p["name"]), (None, None))[0] in (None, "", [])
               or current[(p["recordId"], p["name"])][1] != p.get("version")]
    return {"memoryIds": [m for m in memory_ids if m not in live], "properties": changed}
