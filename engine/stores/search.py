"""Structured search over records: grouped conditions on typed properties, keys, cross-type, paging."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator
from sqlalchemy import CompoundSelect, Select, and_, except_, false, func, intersect, or_, select, union
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from memrelay.engine.core.errors import BadRequest, ValidationFailed
from memrelay.engine.core.properties_types import PropertySpec, PropertyType
from memrelay.engine.domain.coercion import ARRAY_SEP
from memrelay.engine.stores.collections import Collections
from memrelay.engine.stores.db.models import Collection, EntityType, PropertyValue, Record, RecordKey
from memrelay.engine.stores.identity import CUSTOM, Identifiers, normalise_email, normalise_url

MAX_PAGE_SIZE = 500
MAX_EXCLUDED = 2000
Operator = Literal["EQ", "NEQ", "GT", "GTE", "LT", "LTE", "CONTAINS", "IN", "IS_SET", "IS_NOT_SET"]
FILTER_OPERATORS: dict[str, str] = {"equals": "EQ", "notEquals": "NEQ", "contains": "CONTAINS", "gt": "GT",
                                    "lt": "LT", "gte": "GTE", "lte": "LTE", "exists": "IS_SET",
                                    "isEmpty": "IS_NOT_SET", "in": "IN"}


class Condition(BaseModel):
    """One condition; ``field`` (Personize's multi-entity guide) and ``propertyName`` are aliases of ``property``.

    ``property`` may name a record key too (``email``, ``website_url``, a custom key such as ``dealId``):
    keys are searchable like properties, so ``email IS_SET`` matches every record that has an email."""

    property: str = Field(min_length=1)
    operator: Operator
    value: Any = None

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            for alias in ("field", "propertyName"):
                if alias in data and "property" not in data:
                    data["property"] = data.pop(alias)
            op = data.get("operator")
            if isinstance(op, str):
                data["operator"] = FILTER_OPERATORS.get(op, op.strip().upper())
        return data


class Group(BaseModel):
    id: str | None = Field(None, description="Caller's label for the group (echoed nowhere; accepted).")
    logic: Literal["AND", "OR"] = "AND"
    conditions: list[Condition] = Field(default_factory=list)


class SearchQuery(BaseModel):
    """Groups are combined with ``logic`` (AND by default); conditions inside a group with the group's."""

    identifiers: Identifiers = Field(default_factory=Identifiers)
    groups: list[Group] = Field(default_factory=list)
    logic: Literal["AND", "OR"] = "AND"
    offset: int = 0
    limit: int = 50


def check_page(page: int, page_size: int) -> None:
    if page < 1:
        raise BadRequest("page must be >= 1")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise BadRequest(f"pageSize must be between 1 and {MAX_PAGE_SIZE}", details={"max": MAX_PAGE_SIZE})


def encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


def decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return max(0, int(data["o"]))
    except (ValueError, KeyError, TypeError):
        raise BadRequest("nextToken is invalid") from None


def org_schema(s: Session, collections: Collections, org_id: str, entity_type: str | None) -> dict[str, PropertySpec]:
    if entity_type:
        return collections.schema_for(s, org_id, entity_type)
    out: dict[str, PropertySpec] = {}
    for et in s.scalars(select(Collection.entity_type).where(Collection.org_id == org_id).distinct()):
        for k, v in collections.schema_for(s, org_id, et).items():
            out.setdefault(k, v)
    return out


def run_search(s: Session, collections: Collections, org_id: str, q: SearchQuery) -> tuple[list[Record], int]:
    """Matching live records of one org in stable (creation) order, with the total count.

    Each condition is a set of record ids read from a covering index of property_values; groups
    intersect/union those sets, and only the page of ids is joined back to ``records``. Record ids are
    time-sortable, so ordering by id is creation order and needs no join."""
    et = collections.type_name(s, org_id, q.identifiers.type) if q.identifiers.type else None
    schema = org_schema(s, collections, org_id, et)
    sets: list[Select[Any]] = [_key_set(org_id, name, value) for name, value in q.identifiers.keys()]
    group_sets = []
    for g in q.groups:
        members = [_condition_set(s, org_id, c, schema, et) for c in g.conditions]
        if members:
            group_sets.append(_combine(members, g.logic))
    if group_sets:
        sets.append(_combine(group_sets, q.logic))
    if sets:
        matched = _combine(sets, "AND")
        if et and not group_sets:  # key lookups only: keep to the requested type
            matched = intersect(_flat(matched), _universe(org_id, et))
    else:
        matched = _universe(org_id, et)
    ids = matched.subquery()
    rid = ids.c[0]
    live = select(rid)
    if sets:  # soft-deleted records are few: read them first (partial index), then leave them out
        deleted = select(Record.id).where(Record.org_id == org_id, Record.deleted_at.is_not(None))
        gone = list(s.scalars((deleted.where(Record.entity_type == et) if et else deleted).limit(MAX_EXCLUDED + 1)))
        if len(gone) > MAX_EXCLUDED:
            live = select(rid).where(rid.not_in(deleted))
        elif gone:
            live = select(rid).where(rid.not_in(gone))
    live_ids = live.subquery()
    total = s.scalar(select(func.count()).select_from(live_ids)) or 0
    page = list(s.scalars(select(live_ids.c[0]).order_by(live_ids.c[0]).offset(q.offset).limit(q.limit)))
    if not page:
        return [], total
    rows = {r.id: r for r in s.scalars(select(Record).where(Record.id.in_(page)))}
    return [rows[i] for i in page if i in rows], total


def _universe(org_id: str, et: str | None) -> Select[Any]:
    q = select(Record.id).where(Record.org_id == org_id, Record.deleted_at.is_(None))
    return q.where(Record.entity_type == et) if et else q


def _flat(part: Any) -> Any:
    """SQLite cannot nest parenthesised compound selects: wrap a compound as a plain subquery select."""
    if isinstance(part, CompoundSelect):
        sub = part.subquery()
        return select(sub.c[0])
    return part


def _combine(parts: list[Any], logic: str) -> Any:
    if len(parts) == 1:
        return parts[0]
    flat = [_flat(p) for p in parts]
    return intersect(*flat) if logic == "AND" else union(*flat)


def _key_set(org_id: str, name: str, value: str) -> Select[Any]:
    if name == "record_id" and value.startswith("rec_"):
        return select(Record.id).where(Record.org_id == org_id, Record.id == value)
    return select(RecordKey.record_id).where(RecordKey.org_id == org_id, RecordKey.key_name == name,
                                             RecordKey.key_value == value)


def _condition_set(s: Session, org_id: str, c: Condition, schema: dict[str, PropertySpec], et: str | None) -> Any:
    """Record ids matching one condition: on the property, on the record key of that name, or on both."""
    spec = schema.get(c.property)
    key = key_name_of(s, org_id, c.property)
    if spec is None and key is None:
        raise ValidationFailed(f"unknown property {c.property!r}" + (f" for {et}" if et else ""),
                               details={"unknown": [c.property], "known": sorted(schema)})
    if c.operator not in ("IS_SET", "IS_NOT_SET") and c.value is None:
        raise ValidationFailed(f"operator {c.operator} on {c.property!r} needs a value")

    def positive(op: str) -> Any:
        parts: list[Any] = []
        if spec is not None:
            parts.append(_property_set(org_id, c.property, spec, op, c.value, et))
        if key is not None:
            parts.append(_key_condition(org_id, key, op, c.value, et))
        return _combine(parts, "OR")

    if c.operator == "IS_NOT_SET":
        return except_(_universe(org_id, et), _flat(positive("IS_SET")))  # compound: flattened by _combine
    if c.operator == "NEQ":  # not equal, or not set at all
        return except_(_universe(org_id, et), _flat(positive("EQ")))
    return positive(c.operator)


def _property_set(org_id: str, name: str, spec: PropertySpec, op: str, value: Any, et: str | None) -> Select[Any]:
    pv = PropertyValue
    pred = _is_set(pv) if op == "IS_SET" else _predicate(pv, spec, op, value)
    q = select(pv.record_id).where(pv.org_id == org_id, pv.name == name, pred)
    return q.where(pv.entity_type == et) if et else q


KEY_FIELDS = {"email": "email", "website_url": "website_url", "websiteUrl": "website_url"}


def key_name_of(s: Session, org_id: str, field: str) -> str | None:
    """The stored key name when ``field`` names a record key in this org (``email``, ``website_url``, or a
    custom key that is declared by an entity type or held by some record), else None."""
    if field in KEY_FIELDS:
        return KEY_FIELDS[field]
    name = CUSTOM + field
    if s.scalar(select(RecordKey.id).where(RecordKey.org_id == org_id, RecordKey.key_name == name).limit(1)):
        return name
    for primary, secondary in s.execute(select(EntityType.primary_key_field, EntityType.secondary_keys)
                                        .where(EntityType.org_id == org_id)):
        if field == primary or field in (secondary or []):
            return name
    return None


def _key_value(key: str, value: Any) -> str:
    text = str(value).strip()
    if key == "email":
        return normalise_email(text)
    if key == "website_url":
        return normalise_url(text)
    return text


def _key_condition(org_id: str, key: str, op: str, value: Any, et: str | None) -> Select[Any]:
    """Record ids whose key ``key`` satisfies ``op`` (values compared as stored: emails lower-cased, URLs
    normalised like identifiers)."""
    rk = RecordKey
    q = select(rk.record_id).where(rk.org_id == org_id, rk.key_name == key)
    if et:
        q = q.join(Record, Record.id == rk.record_id).where(Record.entity_type == et)
    if op == "IS_SET":
        return q
    if op == "IN":
        values = value if isinstance(value, list) else [value]
        return q.where(rk.key_value.in_([_key_value(key, v) for v in values]) if values else false())
    if op == "CONTAINS":
        text = str(value).strip()
        text = text.lower() if key in ("email", "website_url") else text
        return q.where(rk.key_value.like(f"%{_escape(text)}%", escape="\\"))
    v = _key_value(key, value)
    return q.where({"EQ": rk.key_value == v, "GT": rk.key_value > v, "GTE": rk.key_value >= v,
                    "LT": rk.key_value < v, "LTE": rk.key_value <= v}[op])


def _is_set(pv: Any) -> ColumnElement[bool]:
    return or_(pv.value_num.is_not(None), and_(pv.value_text.is_not(None), pv.value_text != "",
                                                pv.value_text != ARRAY_SEP + ARRAY_SEP, pv.value_text != ARRAY_SEP))


def _predicate(pv: Any, spec: PropertySpec, op: str, value: Any) -> ColumnElement[bool]:
    t = spec.type
    if op == "IN":
        values = value if isinstance(value, list) else [value]
        if not values:
            return false()
        return or_(*[_predicate(pv, spec, "EQ", v) for v in values])
    if t in (PropertyType.NUMBER, PropertyType.DATE):
        num = _as_number(spec, value)
        col = pv.value_num
        if op == "CONTAINS":
            return pv.value_text.like(f"%{_escape(str(value).casefold())}%", escape="\\")
        return {"EQ": col == num, "GT": col > num, "GTE": col >= num, "LT": col < num, "LTE": col <= num}[op]
    if t == PropertyType.BOOLEAN:
        b = value if isinstance(value, bool) else str(value).strip().lower() in {"true", "yes", "1"}
        if op not in ("EQ",):
            raise ValidationFailed(f"operator {op} does not apply to boolean property {spec.propertyName!r}")
        return pv.value_text == ("true" if b else "false")
    if t == PropertyType.ARRAY:
        item = _escape(str(value).casefold())
        if op == "EQ":
            return pv.value_text.like(f"%{ARRAY_SEP}{item}{ARRAY_SEP}%", escape="\\")
        if op == "CONTAINS":
            return pv.value_text.like(f"%{item}%", escape="\\")
        raise ValidationFailed(f"operator {op} does not apply to array property {spec.propertyName!r}")
    text = str(value).casefold()
    if op == "EQ":
        return pv.value_text == text
    if op == "CONTAINS":
        return pv.value_text.like(f"%{_escape(text)}%", escape="\\")
    return {"GT": pv.value_text > text, "GTE": pv.value_text >= text, "LT": pv.value_text < text,
            "LTE": pv.value_text <= text}[op]


def _as_number(spec: PropertySpec, value: Any) -> float:
    if spec.type == PropertyType.DATE:
        from memrelay.engine.domain.coercion import parse_date_value

        iso = parse_date_value(spec, value)
        dt = datetime.fromisoformat(iso) if "T" in iso else datetime.fromisoformat(iso + "T00:00:00+00:00")
        return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValidationFailed(f"property {spec.propertyName!r} is a number; {value!r} is not",
                               details={"property": spec.propertyName}) from None


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
