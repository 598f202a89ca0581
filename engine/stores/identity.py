"""Record identity: primary key, secondary keys (email, website_url, record_id, custom keys), resolution."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from memrelay.engine.core.errors import BadRequest, NotFound
from memrelay.engine.stores.db.models import Record, RecordKey

ACCEPTED_IDENTIFIERS = ["email", "website_url", "record_id", "customKeyName + customKeyValue", "customKeys"]


def normalise_email(email: str) -> str:
    return email.strip().lower()


def normalise_url(url: str) -> str:
    """``https://WWW.Acme.com/`` → ``acme.com``; paths are kept (``acme.com/eu``), scheme dropped."""
    raw = url.strip()
    if "://" not in raw:
        raw = "http://" + raw
    parts = urlsplit(raw)
    host = (parts.hostname or "").lower()
    if host.startswith("www."):
        host = host[4:]
    if parts.port and parts.port not in (80, 443):
        host = f"{host}:{parts.port}"
    path = parts.path.rstrip("/")
    return host + path


class Identifiers(BaseModel):
    """Ways a caller names a record (Personize-compatible field names, snake or camel case)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    type: str | None = Field(None, description="Entity type, e.g. contact, company, deal.")
    email: str | None = None
    website_url: str | None = Field(None, alias="websiteUrl")
    record_id: str | None = Field(None, alias="recordId")
    customKeyName: str | None = None
    customKeyValue: str | None = None
    customKeys: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            for alias, name in (("website", "website_url"), ("entityType", "type"), ("entity_type", "type"),
                                ("recordID", "record_id")):
                if alias in data and name not in data:
                    data[name] = data.pop(alias)
        return data

    def keys(self) -> list[tuple[str, str]]:
        """Normalised (key_name, key_value) pairs, most specific first."""
        out: list[tuple[str, str]] = []
        if self.record_id:
            out.append(("record_id", str(self.record_id).strip()))
        if self.email:
            out.append(("email", normalise_email(self.email)))
        if self.customKeyName and self.customKeyValue:
            out.append((f"custom:{self.customKeyName}", str(self.customKeyValue).strip()))
        for k, v in self.customKeys.items():
            if v not in (None, ""):
                out.append((f"custom:{k}", str(v).strip()))
        if self.website_url:
            out.append(("website_url", normalise_url(self.website_url)))
        return out

    def inferred_type(self) -> str | None:
        """Without an explicit type: an email names a contact, a bare website a company."""
        if self.email:
            return "contact"
        if self.website_url and not (self.record_id or self.customKeyName or self.customKeys):
            return "company"
        return None

    def require_any(self) -> None:
        if not self.keys():
            raise BadRequest("an identifier is required", details={"accepted": ACCEPTED_IDENTIFIERS})


def primary_key_for(entity_type: str, keys: list[tuple[str, str]]) -> str:
    """The primary key a new record gets: company → website, otherwise the most specific key."""
    by_name = dict(reversed(keys))
    if entity_type == "company" and "website_url" in by_name:
        return f"website_url:{by_name['website_url']}"
    name, value = keys[0]
    return f"{name}:{value}"


def find_records(s: Session, org_id: str, ids: Identifiers, *, entity_type: str | None = None,
                 include_deleted: bool = False) -> list[Record]:
    """Every live record any of the identifiers points at (cross-type unless a type is given)."""
    keys = ids.keys()
    if not keys:
        return []
    found: dict[str, Record] = {}
    for name, value in keys:
        if name == "record_id" and value.startswith("rec_"):
            rec = s.get(Record, value)
            rows = [rec] if rec is not None and rec.org_id == org_id else []
        else:
            rows = list(s.scalars(select(Record).join(RecordKey, RecordKey.record_id == Record.id).where(
                RecordKey.org_id == org_id, RecordKey.key_name == name, RecordKey.key_value == value,
                Record.org_id == org_id)))
        for r in rows:
            if entity_type and r.entity_type != entity_type:
                continue
            if r.deleted_at is not None and not include_deleted:
                continue
            found.setdefault(r.id, r)
    return sorted(found.values(), key=lambda r: (r.created_at, r.id))


def resolve_record(s: Session, org_id: str, ids: Identifiers, entity_type: str, *,
                   include_deleted: bool = False) -> Record | None:
    """The one record of ``entity_type`` the identifiers name, trying keys from most to least specific.

    A website URL only identifies a company (many contacts share their company's site)."""
    for name, value in ids.keys():
        if name == "website_url" and entity_type != "company":
            continue
        single = Identifiers(record_id=value) if name == "record_id" else None
        probe = single or _probe(name, value)
        matches = find_records(s, org_id, probe, entity_type=entity_type, include_deleted=include_deleted)
        if matches:
            return matches[0]
    return None


def _probe(name: str, value: str) -> Identifiers:
    if name == "email":
        return Identifiers(email=value)
    if name == "website_url":
        return Identifiers(website_url=value)
    return Identifiers(customKeys={name.removeprefix("custom:"): value})


def locate_record(s: Session, org_id: str, ids: Identifiers, entity_type: str | None = None) -> tuple[str, str]:
    """``(record id, entity type)`` of the live record the identifiers name — the same rules as
    :func:`require_record`, read with one light query per key (the recall hot path). 404 otherwise."""
    ids.require_any()
    et = entity_type or ids.type or ids.inferred_type()
    for name, value in ids.keys():
        if name == "website_url" and et is not None and et != "company":
            continue
        if name == "record_id" and value.startswith("rec_"):
            q = select(Record.id, Record.entity_type).where(Record.id == value)
        else:
            q = select(Record.id, Record.entity_type).join(RecordKey, RecordKey.record_id == Record.id).where(
                RecordKey.org_id == org_id, RecordKey.key_name == name, RecordKey.key_value == value)
        q = q.where(Record.org_id == org_id, Record.deleted_at.is_(None))
        if et is not None:
            q = q.where(Record.entity_type == et)
        row = s.execute(q.order_by(Record.created_at, Record.id).limit(1)).first()
        if row is not None:
            return row[0], row[1]
    raise NotFound("no record matches those identifiers")


def require_record(s: Session, org_id: str, ids: Identifiers, entity_type: str | None = None) -> Record:
    """Resolve an existing live record or raise 404 (never another org's)."""
    ids.require_any()
    et = entity_type or ids.type
    rec = resolve_record(s, org_id, ids, et) if et else next(iter(find_records(s, org_id, ids)), None)
    if rec is None:
        raise NotFound("no record matches those identifiers")
    return rec


def attach_keys(s: Session, record: Record, keys: list[tuple[str, str]]) -> None:
    """Add the secondary keys a write carried (idempotent)."""
    existing = {(n, v) for n, v in s.execute(select(RecordKey.key_name, RecordKey.key_value).where(
        RecordKey.record_id == record.id))}
    for name, value in keys:
        if (name, value) not in existing and not (name == "record_id" and value == record.id):
            s.add(RecordKey(org_id=record.org_id, record_id=record.id, key_name=name, key_value=value[:512]))
            existing.add((name, value))


def record_keys(s: Session, record_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Keys of many records, rendered as identifiers."""
    out: dict[str, dict[str, Any]] = {rid: {} for rid in record_ids}
    if not record_ids:
        return out
    for rid, name, value in s.execute(select(RecordKey.record_id, RecordKey.key_name, RecordKey.key_value)
                                      .where(RecordKey.record_id.in_(record_ids))):
        if name.startswith("custom:"):
            out[rid].setdefault("customKeys", {})[name[7:]] = value
        else:
            out[rid].setdefault(name, value)
    return out
