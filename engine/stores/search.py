"""Structured search over records: grouped conditions on typed properties, keys, cross-type, paging."""

from __future__ import annotations

import base64
import json
import operator
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator
from sqlalchemy import (
    CompoundSelect,
    Select,
    String,
    Text,
    Uuid,
    and_,
    bindparam,
    case,
    cast,
    false,
    func,
    literal,
    or_,
    select,
    true,
    union,
)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session, aliased
from sqlalchemy.orm import join as orm_join
from sqlalchemy.orm.attributes import instance_state
from sqlalchemy.sql.elements import ColumnClause, ColumnElement

from memrelay.engine.core.access import AccessScope, current_access
from memrelay.engine.core.errors import BadRequest, MemrelayError, ValidationFailed
from memrelay.engine.core.properties_types import PropertySpec, PropertyType
from memrelay.engine.domain.coercion import ARRAY_SEP
from memrelay.engine.stores.access_filter import needs_orm
from memrelay.engine.stores.collections import Collections, normalise_entity_type, schema_stamp
from memrelay.engine.stores.db.models import Collection, EntityType, PropertyValue, Record, RecordKey
from memrelay.engine.stores.identity import CUSTOM, Identifiers, normalise_email, normalise_url

MAX_PAGE_SIZE = 500
MAX_EXCLUDED = 2000
MAX_OFFSET = 1_000_000  # deepest row a page or nextToken may start at (bounded pages; 400 beyond)
MAX_CONDITIONS = 100  # conditions over all groups of one search (SQL compound-select limits)
MAX_IN_VALUES = 500  # values of one IN condition (SQL expression-depth limits)
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
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise BadRequest(f"pageSize must be between 1 and {MAX_PAGE_SIZE}", details={"max": MAX_PAGE_SIZE})
    if page < 1 or (page - 1) * page_size > MAX_OFFSET:
        raise BadRequest(f"page must be >= 1 and start within the first {MAX_OFFSET} results",
                         details={"maxOffset": MAX_OFFSET})


def check_query(q: SearchQuery) -> None:
    """Refuse (422) searches beyond the documented bounds: condition count and IN list size."""
    conditions = [c for g in q.groups for c in g.conditions]
    if len(conditions) > MAX_CONDITIONS:
        raise ValidationFailed(f"a search may hold at most {MAX_CONDITIONS} conditions over all groups",
                               details={"conditions": len(conditions), "max": MAX_CONDITIONS})
    for c in conditions:
        if c.operator == "IN" and isinstance(c.value, list) and len(c.value) > MAX_IN_VALUES:
            raise ValidationFailed(f"IN takes at most {MAX_IN_VALUES} values ({c.property!r} has {len(c.value)})",
                                   details={"property": c.property, "max": MAX_IN_VALUES})
    if not 0 <= q.offset <= MAX_OFFSET:
        raise BadRequest(f"results can be paged up to offset {MAX_OFFSET}", details={"maxOffset": MAX_OFFSET})


def encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


def decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        offset = max(0, int(data["o"]))
    except (ValueError, KeyError, TypeError, OverflowError, RecursionError):
        raise BadRequest("nextToken is invalid") from None
    if offset > MAX_OFFSET:
        raise BadRequest("nextToken is invalid (beyond the deepest page)", details={"maxOffset": MAX_OFFSET})
    return offset


def org_schema(s: Session, collections: Collections, org_id: str, entity_type: str | None) -> dict[str, PropertySpec]:
    if entity_type:
        return collections.schema_for(s, org_id, entity_type)
    out: dict[str, PropertySpec] = {}
    for et in s.scalars(select(Collection.entity_type).where(Collection.org_id == org_id).distinct()):
        for k, v in collections.schema_for(s, org_id, et).items():
            out.setdefault(k, v)
    return out


COUNT_CAP = 10_000
"""Default bound of a search's count: past it the answer says ``totalIsExact: false`` (``includeTotal``
asks for the exact count, which reads every match)."""


@dataclass(frozen=True)
class SearchPage:
    """One page of matches, the number of matches (exact, or a lower bound at the count cap) and whether
    more follow the page."""

    rows: list[Record]
    total: int
    total_is_exact: bool
    has_more: bool


DRIVE_EQ, DRIVE_LEAF, DRIVE_LAST = 0, 1, 2  # how good a set is at driving an AND (lower first)


@dataclass(frozen=True)
class IdSet:
    """Record ids matching part of a search, in two SQL shapes the planner combines limit-first.

    ``query`` selects the ids (first column); ``member(col)`` is true when the outer id ``col`` is in the
    set — a correlated probe of an index for leaf conditions, so an AND walks one condition's index in id
    order and probes the others per row instead of building every set. ``drive`` ranks sets as the
    driver of an AND (an equality's index yields ids already sorted); ``branches`` are an OR's parts."""

    query: Any
    member: Callable[[Any], ColumnElement[bool]]
    drive: int = DRIVE_LAST
    branches: tuple[IdSet, ...] = ()

    def top(self, k: int) -> Select[Any]:
        """The ``k`` smallest ids, limit-first: a UNION merges each branch's ``k`` smallest."""
        if not self.branches:  # no subquery: its column proxies cost more Python than the rest of the build
            return self.query.order_by(self.query.selected_columns[0]).limit(k)
        sub = union(*[select(b.top(k).subquery().c[0]) for b in self.branches]).subquery()
        return select(sub.c[0]).order_by(sub.c[0]).limit(k)

    def some(self, k: int) -> Select[Any]:
        """Any ``k`` ids of the set (all when fewer), in no order — what a bounded count reads. An OR takes at
        most ``k`` from each branch: their union holds at least ``k`` ids whenever the whole union does, so a
        count capped at ``k`` never reads more than ``k`` per branch (instead of every match of every branch)."""
        if not self.branches:
            return self.query.limit(k)
        sub = union(*[select(b.some(k).subquery().c[0]) for b in self.branches]).subquery()
        return select(sub.c[0]).limit(k)


def _leaf(build: Callable[[Any], Select[Any]], entity: Any, drive: int) -> IdSet:
    """A condition on one table: ``build(alias)`` selects ids from ``alias`` of ``entity``."""

    def member(col: Any) -> ColumnElement[bool]:
        alias = aliased(entity)
        probe = build(alias)
        if drive == DRIVE_EQ:  # one covering-index range, read once (the planner's probe would hit the table)
            return col.in_(probe)
        return probe.where(probe.selected_columns[0] == col).exists()

    return IdSet(build(entity), member, drive)


@dataclass(frozen=True)
class _OrgFacts:
    """What a typed search needs to know about its org: the resolved entity type and its schema, every type of
    the org with its declared keys, which of the conditions' custom keys (``customs``) some record holds, and
    whether any record of the type is soft-deleted. ``stamp`` is the live reading of :func:`_stamp_columns` the
    facts were read with: equal stamps mean equal facts, so cached facts are used only when the page
    statement's own reading of the stamp matches."""

    et: str
    schema: dict[str, PropertySpec]
    types: list[str]
    declared: list[tuple[str | None, list[Any]]]
    customs: tuple[str, ...]
    held: frozenset[str]
    any_deleted: bool
    stamp: tuple[Any, ...]
    stamp_columns: tuple[Any, ...] = field(default=(), compare=False, repr=False)  # built once, reused
    pages: dict[Shape, _PageStatement] = field(default_factory=dict, compare=False, repr=False)
    """Page statements built on these facts, by query shape (see :func:`_shape`); values are bound apart."""

    def key_name(self, field: str) -> str | None:
        """:func:`key_name_of` answered from the facts (same rules, no query)."""
        if field in KEY_FIELDS:
            return KEY_FIELDS[field]
        name = CUSTOM + field
        if name in self.held or any(field == p or field in s for p, s in self.declared):
            return name
        return None


FactsKey = tuple[str, str, tuple[str, ...], AccessScope]
Shape = tuple[Any, ...]
MAX_SHAPES = 64  # page statements kept per facts (a process sees few query shapes per org and type)


@dataclass(frozen=True)
class _PageStatement:
    """A built page statement (records, count, stamp) in two forms — ``page`` loads ``Record`` entities through
    the ORM, ``columns`` selects the same rows as plain columns (:data:`_RECORD_COLUMNS` first) — and the
    count-and-stamp-only ``summary`` (for an empty page under an access scope). Every value of the search's
    conditions and identifiers is a named bind parameter (:func:`_params`), so one statement serves every search
    of its shape: built once, its SQLAlchemy cache key generated once.

    ``driver``: on PostgreSQL/psycopg, once the statement is kept for reuse, ``columns`` compiled to its SQL text
    and the values bound at build time (:func:`_driver_form`), run with ``exec_driver_sql`` — same SQL, same
    connection and events, without the per-execution work of SQLAlchemy's compiled-statement path."""

    page: Any
    columns: Any
    summary: Any
    driver: tuple[str, dict[str, Any]] | None = None


class _FactsCache:
    """Per-process facts of recent typed searches, keyed by org, type, the conditions' custom keys and the
    caller's access scope (bounded, least recently used first out). An entry is only a guess: the search
    that uses it reads the stamp live in its page statement and starts over with fresh facts on a mismatch."""

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._items: OrderedDict[FactsKey, _OrgFacts] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: FactsKey) -> _OrgFacts | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
            return hit

    def put(self, key: FactsKey, facts: _OrgFacts) -> None:
        with self._lock:
            self._items[key] = facts
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


_FACTS = _FactsCache()


def _facts_key(org_id: str, q: SearchQuery) -> FactsKey | None:
    """The cache key of a typed search's facts (None for an untyped search)."""
    if not q.identifiers.type:
        return None
    customs = tuple(sorted({CUSTOM + c.property for g in q.groups for c in g.conditions
                            if c.property not in KEY_FIELDS}))
    return org_id, normalise_entity_type(q.identifiers.type), customs, current_access()


def _stamp_columns(org_id: str, et: str, customs: tuple[str, ...], *, ordered: bool) -> list[Any]:
    """Uncorrelated scalar subqueries (each evaluated once per statement) whose values change whenever a typed
    search's facts would: every type of the org with its keys (as text), whether a record of ``et`` is
    soft-deleted, the schema stamp of ``et`` and, per custom key, whether some record holds it.

    ``ordered`` (PostgreSQL): the types are aggregated in name order. Unordered, ``string_agg`` follows the plan's
    scan order, which differed between the facts statement and a page statement run as a generic prepared plan —
    a stamp mismatch that re-read the facts on an unchanged org. SQLite before 3.44 has no ORDER BY in an
    aggregate; its one plan for this subquery scans the same index in both statements."""
    keys = func.coalesce(cast(EntityType.secondary_keys, Text), "")
    row = EntityType.name + "|" + func.coalesce(EntityType.primary_key_field, "") + "|" + keys
    agg = func.aggregate_strings(row, ";")
    types = select(agg.aggregate_order_by(EntityType.name) if ordered else agg).where(
        EntityType.org_id == org_id).scalar_subquery()
    deleted = select(Record.id).where(Record.org_id == org_id, Record.entity_type == et,
                                      Record.deleted_at.is_not(None)).exists()
    held = [select(RecordKey.id).where(RecordKey.org_id == org_id, RecordKey.key_name == n).exists() for n in customs]
    return [types, deleted, *schema_stamp(org_id, et), *held]


def _org_facts(s: Session, collections: Collections, org_id: str, key: FactsKey) -> _OrgFacts | None:
    """The facts of a typed search in one statement (one row per entity type of the org, the stamp's scalar
    subqueries evaluated once), kept in the per-process cache; None when the caller's type is not a type's own
    name (an alias, or unknown): those take the general path."""
    _, wanted, customs, _ = key
    columns = tuple(_stamp_columns(org_id, wanted, customs, ordered=s.get_bind().dialect.name == "postgresql"))
    rows = s.execute(select(EntityType.name, EntityType.primary_key_field, EntityType.secondary_keys,
                            *columns).where(EntityType.org_id == org_id)).all()
    if not rows or wanted not in {r[0] for r in rows}:
        return None
    stamp = tuple(rows[0][3:])
    schema = collections.schema_from_stamp(s, org_id, wanted, stamp[2:5])
    facts = _OrgFacts(wanted, schema, sorted(r[0] for r in rows), [(r[1], r[2] or []) for r in rows], customs,
                      frozenset(n for n, h in zip(customs, stamp[5:], strict=True) if h), bool(stamp[1]), stamp,
                      columns)
    _FACTS.put(key, facts)
    return facts


def search_page(s: Session, collections: Collections, org_id: str, q: SearchQuery,
                count_limit: int | None = COUNT_CAP) -> SearchPage:
    """Matching live records of one org in stable (creation) order, limit-first.

    Conditions are read from covering indexes of property_values/record_keys; an AND is driven by one
    condition's index (equality first) and probes the others per row, an OR merges each branch's first
    rows; only the page of ids is joined back to ``records``. The count reads at most ``count_limit``
    matches (``None``: exact). Record ids are time-sortable, so id order is creation order.

    A typed search whose org facts (type, schema, keys, soft deletes) this process has seen runs ONE statement:
    the page's records with the count and a live reading of the facts' stamp; when the stamp no longer matches
    (a schema, type, key or soft-delete change by any process), the page is discarded and the search runs
    again on fresh facts. That statement is built once per query shape (:func:`_shape`) and reused with each
    search's values bound by name (:func:`_params`). Otherwise a typed search reads the facts first (two
    statements). A type with soft-deleted records also reads their ids first; untyped and aliased-type searches
    resolve the type and schema with their own queries."""
    check_query(q)
    key = _facts_key(org_id, q)
    cached = _FACTS.get(key) if key is not None else None
    if cached is not None:
        try:
            page, stamp = _run(s, collections, org_id, q, count_limit, cached, verify=True)
        except MemrelayError:  # perhaps only under stale facts (an unknown key since held): decide on fresh ones
            pass
        else:
            if stamp == cached.stamp:
                return page
    facts = _org_facts(s, collections, org_id, key) if key is not None else None
    return _run(s, collections, org_id, q, count_limit, facts, verify=False)[0]


def _run(s: Session, collections: Collections, org_id: str, q: SearchQuery, count_limit: int | None,
         facts: _OrgFacts | None, *, verify: bool) -> tuple[SearchPage, tuple[Any, ...] | None]:
    """The page of ``q`` built on ``facts`` (None: resolved here with their own queries) and, with ``verify``,
    the facts' stamp as the page statement read it. Under verified facts with no soft-deleted record, the page
    statement of the query's shape is built once and reused with the query's values bound."""
    if facts is not None and verify and not facts.any_deleted:
        shape = _shape(q, count_limit)
        built = facts.pages.get(shape)
        if built is None:  # building refuses what the shape gets wrong (unknown property, missing value)
            built = _driver_form(s, _statement(s, collections, org_id, q, count_limit, facts, verify=True)[0])
            if len(facts.pages) >= MAX_SHAPES:
                facts.pages.clear()
            facts.pages[shape] = built
        return _read_page(s, built, _params(q, facts), q, _count_bound(q, count_limit), stamped=True)
    built, cap = _statement(s, collections, org_id, q, count_limit, facts, verify=verify)
    return _read_page(s, built, {}, q, cap, stamped=verify and facts is not None)


def _driver_form(s: Session, built: _PageStatement) -> _PageStatement:
    """``built`` with its ``driver`` form on PostgreSQL/psycopg: the SQL text of ``columns`` (its one-time literal
    parameters rendered) and the values bound at build time, which a search's :func:`_params` override by name.
    psycopg returns these columns' values as SQLAlchemy would (no result processing on this dialect), so rows read
    either way are equal. Not on SQLite (its dates are processed from text) nor for a statement with an expanding
    parameter (an IN over keys: its names are made per execution)."""
    dialect = s.get_bind().dialect
    if dialect.name != "postgresql" or dialect.driver != "psycopg":
        return built
    compiled = built.columns.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    if any(b.expanding for b in built.columns.compile(dialect=dialect).binds.values()):
        return built
    return replace(built, driver=(str(compiled), dict(compiled.params)))


def _statement(s: Session, collections: Collections, org_id: str, q: SearchQuery, count_limit: int | None,
               facts: _OrgFacts | None, *, verify: bool) -> tuple[_PageStatement, int | None]:
    """The page statement of ``q`` (values bound by name, see :func:`_params`) and the bound of its count."""
    if facts is not None:
        et: str | None = facts.et
        schema = facts.schema
    else:
        et = collections.type_name(s, org_id, q.identifiers.type) if q.identifiers.type else None
        schema = org_schema(s, collections, org_id, et)
    sets: list[IdSet] = [_key_set(org_id, name, value, f"i{n}") for n, (name, value) in enumerate(q.identifiers.keys())]
    keyed = s.get_bind().dialect.name == "postgresql"  # property_values.prop_key (migration 0018)
    group_sets = []
    for gi, g in enumerate(q.groups):
        members = [_condition_set(s, org_id, c, schema, et, facts, f"g{gi}c{ci}", keyed=keyed)
                   for ci, c in enumerate(g.conditions)]
        if members:
            group_sets.append(_combine(members, g.logic))
    if group_sets:
        sets.append(_combine(group_sets, q.logic))
    gone: list[str] = []
    if sets:
        if et and not group_sets:  # key lookups only: keep to the requested type
            sets.append(_universe(org_id, et))
        # soft-deleted records are few: read them first (partial index) and drop them from the page
        if facts is None or facts.any_deleted:
            deleted = select(Record.id).where(Record.org_id == org_id, Record.deleted_at.is_not(None))
            gone = list(s.scalars((deleted.where(Record.entity_type == et) if et else deleted)
                                  .limit(MAX_EXCLUDED + 1)))
        if len(gone) > MAX_EXCLUDED:
            sets.append(_universe(org_id, et))
            gone = []
        matched = _combine(sets, "AND")
    else:
        matched = _universe(org_id, et)
    want = q.offset + q.limit + 1  # one past the page tells whether more follow
    stamp = list(facts.stamp_columns) if verify and facts is not None else []
    cap = _count_bound(q, count_limit)
    return _page_statement(matched, q, want, cap, gone, stamp), cap


def _count_bound(q: SearchQuery, count_limit: int | None) -> int | None:
    """How far the count reads: ``count_limit``, but at least one past the page (None: exact)."""
    return None if count_limit is None else max(count_limit, q.offset + q.limit + 1)


def _shape(q: SearchQuery, count_limit: int | None) -> Shape:
    """What a page statement built on given facts depends on besides bound values: the identifiers' key names,
    the logic, each condition's property, operator and value form (absent; a list and its length; other), the
    page and the count bound. Two searches of one shape differ only in :func:`_params`."""
    def form(v: Any) -> Any:
        return ("list", len(v)) if isinstance(v, list) else v is None

    keys = tuple((name, name == "record_id" and value.startswith("rec_")) for name, value in q.identifiers.keys())
    groups = tuple((g.logic, tuple((c.property, c.operator, form(c.value)) for c in g.conditions)) for g in q.groups)
    return keys, q.logic, groups, q.offset, q.limit, count_limit


def _params(q: SearchQuery, facts: _OrgFacts) -> dict[str, Any]:
    """The bound values of ``q``'s page statement, named as the builders name them (``i<n>`` an identifier,
    ``g<group>c<condition>p`` a property value, ``...k`` a key value, ``..._<j>`` one of an IN's values); raises
    what the builders raise on a value (a number or date that does not parse)."""
    out: dict[str, Any] = {f"i{n}": value for n, (_, value) in enumerate(q.identifiers.keys())}
    for gi, g in enumerate(q.groups):
        for ci, c in enumerate(g.conditions):
            op = {"IS_NOT_SET": "IS_SET", "NEQ": "EQ"}.get(c.operator, c.operator)
            if op == "IS_SET":
                continue
            tag = f"g{gi}c{ci}"
            spec = facts.schema.get(c.property)
            if spec is not None:
                value = _property_value(spec, op, c.value)
                if op == "IN":
                    out.update({f"{tag}p_{j}": v for j, v in enumerate(value)})
                else:
                    out[tag + "p"] = value
            key = facts.key_name(c.property)
            if key is not None:
                out[tag + "k"] = _key_bound_value(key, op, c.value)
    return out


def _count_of(matched: IdSet, cap: int | None, gone: list[str]) -> Any:
    """The number of matches not in ``gone`` (at most ``cap``; ``None``: exact) as an uncorrelated scalar
    subquery. A bounded count of an OR first counts each branch alone (up to the bound, from its index): when
    one branch reaches it, so does the union, and the union is never built."""
    reach = None if cap is None else cap + len(gone)
    sub = (matched.query if reach is None else matched.some(reach)).subquery()
    counted = select(func.count()).select_from(sub)
    counted_live = (counted.where(sub.c[0].not_in(gone)) if gone else counted).scalar_subquery()
    if reach is None or not matched.branches:
        return counted_live
    alone = [select(func.count()).select_from(b.some(reach).subquery()).scalar_subquery() for b in matched.branches]
    return case((or_(*[n >= reach for n in alone]), literal(reach)), else_=counted_live)


_ONE_ROW = select(literal(1).label("one")).subquery("one_row")


def _page_statement(matched: IdSet, q: SearchQuery, want: int, cap: int | None, gone: list[str],
                    stamp: list[Any]) -> _PageStatement:
    """One statement: the page's ids (limit-first, one past the page; the soft-deleted ``gone`` dropped
    from the first ``want + len(gone)``), joined to their records (put in id order by :func:`_read_page`: no sort
    in SQL), and the count with the ``stamp`` columns (uncorrelated scalar subqueries, evaluated once). The page
    is outer-joined to a one-row select, so an empty page still answers its count and stamp (its record is None;
    under a restricted access scope the scope's criteria on ``records`` drop that row: then the summary
    statement reads them)."""
    if gone:
        top = matched.top(want + len(gone)).subquery()
        ids = (select(top.c[0]).where(top.c[0].not_in(gone)).order_by(top.c[0])
               .limit(q.limit + 1).offset(q.offset).subquery())
    else:
        ids = matched.top(want).limit(q.limit + 1).offset(q.offset).subquery()
    page = _ONE_ROW.outerjoin(orm_join(Record, ids, Record.id == ids.c[0]), true())
    count = _count_of(matched, cap, gone)
    return _PageStatement(select(Record, count, *stamp).select_from(page),
                          select(*_RECORD_COLUMNS, count, *stamp).select_from(page), select(count, *stamp))


_RECORD_COLUMNS = tuple(Record.__table__.columns)
_RECORD_NAMES = tuple(c.key for c in _RECORD_COLUMNS)
_RECORD_MANAGER = sa_inspect(Record).class_manager
_RECORD_IDENTITY = sa_inspect(Record)._identity_class


def _loaded_record(values: Sequence[Any]) -> Record:
    """A ``Record`` holding one row's column ``values`` (in :data:`_RECORD_COLUMNS` order), detached as if
    loaded by a session since closed: every attribute loaded, no history, in no session's identity map.

    What ``make_transient_to_detached`` leaves, minus its work that is void here (a third of the time of the page's
    Python at 50 rows): a new instance's state has no history, pending mutation or expired attribute, and every
    column is loaded (``Record`` has no relationship), so only its identity key remains to set (id is the primary
    key; no identity token). tests/engine/test_search_records.py compares the two."""
    record = _RECORD_MANAGER.new_instance()
    record.__dict__.update(zip(_RECORD_NAMES, values, strict=True))
    instance_state(record).key = (_RECORD_IDENTITY, (values[0],), None)
    return record


def _read_page(s: Session, built: _PageStatement, params: dict[str, Any], q: SearchQuery, cap: int | None, *,
               stamped: bool) -> tuple[SearchPage, tuple[Any, ...] | None]:
    """Run ``built`` with ``params``: the page and, when ``stamped``, the stamp the statement read.

    The records are read as plain columns on the session's connection and turned into detached ``Record``
    objects (the ORM's per-statement and per-row loading cost more than the rest of a search's Python) unless
    the ORM has to see the statement: under a restricted access scope (its criteria are ORM loader criteria,
    applied on the session's ``do_orm_execute``) or with changes pending in the session (its autoflush)."""
    if needs_orm(s):
        rows = s.execute(built.page, params).all()
        # an access scope's criteria on records filter the outer join's empty row too: then ask apart
        summary = tuple(rows[0][1:]) if rows else tuple(s.execute(built.summary, params).one())
        records = [r[0] for r in rows if r[0] is not None]
    else:
        width = len(_RECORD_COLUMNS)
        if built.driver is not None:
            sql, bound = built.driver
            rows = s.connection().exec_driver_sql(sql, {**bound, **params}).all()  # never empty: one-row outer join
        else:
            rows = s.connection().execute(built.columns, params).all()  # never empty: the one-row outer join
        summary = tuple(rows[0][width:])
        records = [_loaded_record(r[:width]) for r in rows if r[0] is not None]
    got = sorted(records, key=lambda r: r.id)
    n = int(summary[0])
    total, exact = (n, True) if cap is None else (min(n, cap), n < cap)
    return SearchPage(got[:q.limit], total, exact, len(got) > q.limit), (summary[1:] if stamped else None)


def run_search(s: Session, collections: Collections, org_id: str, q: SearchQuery) -> tuple[list[Record], int]:
    """A page of matches and the exact total (see :func:`search_page` for a bounded count)."""
    found = search_page(s, collections, org_id, q, count_limit=None)
    return found.rows, found.total


def _universe(org_id: str, et: str | None) -> IdSet:
    def build(r: Any) -> Select[Any]:
        q = select(r.id).where(r.org_id == org_id, r.deleted_at.is_(None))
        return q.where(r.entity_type == et) if et else q

    return _leaf(build, Record, DRIVE_LAST)


def _flat(part: Any) -> Any:
    """SQLite cannot nest parenthesised compound selects: wrap a compound as a plain subquery select."""
    if isinstance(part, CompoundSelect):
        sub = part.subquery()
        return select(sub.c[0])
    return part


def _combine(parts: list[IdSet], logic: str) -> IdSet:
    if len(parts) == 1:
        return parts[0]
    if logic == "OR":
        return IdSet(union(*[_flat(p.query) for p in parts]), lambda col: or_(*[p.member(col) for p in parts]),
                     DRIVE_LAST, tuple(parts))
    driver = min(parts, key=lambda p: p.drive)
    others = [p for p in parts if p is not driver]
    base = _flat(driver.query)
    col = base.selected_columns[0]
    return IdSet(base.where(*[o.member(col) for o in others]), lambda c: and_(*[p.member(c) for p in parts]),
                 DRIVE_LAST)


def _key_set(org_id: str, name: str, value: str, tag: str) -> IdSet:
    """Records holding the identifier key ``name`` = ``value`` (bound as ``tag``)."""
    if name == "record_id" and value.startswith("rec_"):
        return _leaf(lambda r: select(r.id).where(r.org_id == org_id, r.id == bindparam(tag, value, type_=r.id.type)),
                     Record, DRIVE_EQ)
    return _leaf(lambda rk: select(rk.record_id).where(
        rk.org_id == org_id, rk.key_name == name, rk.key_value == bindparam(tag, value, type_=rk.key_value.type)),
        RecordKey, DRIVE_EQ)


def _condition_set(s: Session, org_id: str, c: Condition, schema: dict[str, PropertySpec], et: str | None,
                   facts: _OrgFacts | None, tag: str, *, keyed: bool) -> IdSet:
    """Record ids matching one condition: on the property, on the record key of that name, or on both (its values
    bound as ``tag`` + ``p`` and ``tag`` + ``k``, see :func:`_params`); ``keyed``: see :func:`_property_set`."""
    spec = schema.get(c.property)
    key = facts.key_name(c.property) if facts is not None else key_name_of(s, org_id, c.property)
    if spec is None and key is None:
        raise ValidationFailed(f"unknown property {c.property!r}" + (f" for {et}" if et else ""),
                               details={"unknown": [c.property], "known": sorted(schema)})
    if c.operator not in ("IS_SET", "IS_NOT_SET") and c.value is None:
        raise ValidationFailed(f"operator {c.operator} on {c.property!r} needs a value")
    types = [et] if et else (facts.types if facts is not None else org_types(s, org_id))

    def positive(op: str) -> IdSet:
        parts: list[IdSet] = []
        if spec is not None:
            parts.append(_property_set(org_id, c.property, spec, op, c.value, et, types, tag + "p", keyed=keyed))
        if key is not None:
            parts.append(_key_condition(org_id, key, op, c.value, et, tag + "k"))
        return _combine(parts, "OR")

    if c.operator == "IS_NOT_SET":
        return _without(_universe(org_id, et), positive("IS_SET"))
    if c.operator == "NEQ":  # not equal, or not set at all
        return _without(_universe(org_id, et), positive("EQ"))
    return positive(c.operator)


def _without(universe: IdSet, excluded: IdSet) -> IdSet:
    """Records of ``universe`` not in ``excluded``: walked in id order, each probed (limit-first)."""
    base = universe.query
    return IdSet(base.where(~excluded.member(base.selected_columns[0])),
                 lambda col: and_(universe.member(col), ~excluded.member(col)), DRIVE_LAST)


def org_types(s: Session, org_id: str) -> list[str]:
    """Every entity type of the org (archived ones too: their records keep their values)."""
    return sorted(s.scalars(select(EntityType.name).where(EntityType.org_id == org_id)))


def _prop_key(pv: Any) -> ColumnClause[Any]:
    """The ``prop_key`` column of ``pv`` (``PropertyValue`` or an alias of it): PostgreSQL only (migration 0018),
    generated by the database and not mapped, so the ORM never reads or writes it."""
    return ColumnClause("prop_key", Uuid(as_uuid=False), _selectable=sa_inspect(pv).selectable)


def prop_key_of(org_id: str, entity_type: str, name: str) -> ColumnElement[Any]:
    """The ``prop_key`` of one property of one type of one org, computed by PostgreSQL with the expression of the
    generated column (migration 0018: the MD5 of the three joined by ``chr(31)``, as a uuid)."""
    sep = func.chr(31, type_=String)
    joined = literal(org_id, String) + sep + literal(entity_type, String) + sep + literal(name, String)
    return cast(func.md5(joined, type_=String), Uuid(as_uuid=False))


def _property_set(org_id: str, name: str, spec: PropertySpec, op: str, value: Any, et: str | None,
                  types: list[str], tag: str, *, keyed: bool) -> IdSet:
    """Records whose property ``name`` satisfies ``op``. The indexes on property_values are led by the property
    (org, entity type and name: on PostgreSQL as one compact ``prop_key``, ``keyed``), so an untyped search reads
    one index range per entity type of the org and merges them."""
    ordered = op == "EQ" and spec.type not in (PropertyType.ARRAY,)
    bound = None if op == "IS_SET" else _property_value(spec, op, value)

    def leaf(in_types: list[str]) -> IdSet:
        def build(pv: Any) -> Select[Any]:
            pred = _is_set(pv) if op == "IS_SET" else _predicate(pv, spec, op, bound, tag)
            if keyed:
                keys = [prop_key_of(org_id, t, name) for t in in_types]
                return select(pv.record_id).where(_prop_key(pv) == keys[0] if len(keys) == 1
                                                  else _prop_key(pv).in_(keys), pred)
            kind = pv.entity_type == in_types[0] if len(in_types) == 1 else pv.entity_type.in_(in_types)
            return select(pv.record_id).where(pv.org_id == org_id, kind, pv.name == name, pred)

        return _leaf(build, PropertyValue, DRIVE_EQ if ordered and len(in_types) == 1 else DRIVE_LEAF)

    if et:
        return leaf([et])
    if len(types) <= 1:
        return leaf(types) if types else IdSet(select(PropertyValue.record_id).where(false()), lambda col: false())
    every = leaf(types)  # one probe over every type's range
    return IdSet(union(*[leaf([t]).query for t in types]), every.member, DRIVE_LAST,
                 tuple(leaf([t]) for t in types))


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


def _key_condition(org_id: str, key: str, op: str, value: Any, et: str | None, tag: str) -> IdSet:
    """Record ids whose key ``key`` satisfies ``op`` (values compared as stored: emails lower-cased, URLs
    normalised like identifiers), bound as ``tag``."""
    bound = _key_bound_value(key, op, value)

    def build(rk: Any) -> Select[Any]:
        q = select(rk.record_id).where(rk.org_id == org_id, rk.key_name == key)
        if et:
            rec = aliased(Record)  # never the outer query's records: a probe must not correlate to it
            q = q.join(rec, rec.id == rk.record_id).where(rec.entity_type == et)
        return q.where(_key_predicate(rk, op, bound, tag))

    return _leaf(build, RecordKey, DRIVE_EQ if op == "EQ" else DRIVE_LEAF)


def _key_bound_value(key: str, op: str, value: Any) -> Any:
    """The value a key condition compares with (a list for IN, a LIKE pattern for CONTAINS; None for IS_SET)."""
    if op == "IS_SET":
        return None
    if op == "IN":
        return [_key_value(key, v) for v in (value if isinstance(value, list) else [value])]
    if op == "CONTAINS":
        text = str(value).strip()
        return f"%{_escape(text.lower() if key in ('email', 'website_url') else text)}%"
    return _key_value(key, value)


def _key_predicate(rk: Any, op: str, bound: Any, tag: str) -> ColumnElement[bool]:
    if op == "IS_SET":
        return true()
    if op == "IN":
        return rk.key_value.in_(bindparam(tag, bound, expanding=True, type_=rk.key_value.type)) if bound else false()
    b = bindparam(tag, bound, type_=rk.key_value.type)
    if op == "CONTAINS":
        return rk.key_value.like(b, escape="\\")
    return _COMPARE[op](rk.key_value, b)


_COMPARE: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    "EQ": operator.eq, "GT": operator.gt, "GTE": operator.ge, "LT": operator.lt, "LTE": operator.le}


def _is_set(pv: Any) -> ColumnElement[bool]:
    return or_(pv.value_num.is_not(None), and_(pv.value_text.is_not(None), pv.value_text != "",
                                                pv.value_text != ARRAY_SEP + ARRAY_SEP, pv.value_text != ARRAY_SEP))


def _property_value(spec: PropertySpec, op: str, value: Any) -> Any:
    """The value a property condition compares with: a number (numbers, dates), a LIKE pattern (CONTAINS, an
    array's EQ), ``"true"``/``"false"`` (booleans), the case-folded text; for IN, the list of EQ values."""
    t = spec.type
    if op == "IN":
        return [_property_value(spec, "EQ", v) for v in (value if isinstance(value, list) else [value])]
    if t in (PropertyType.NUMBER, PropertyType.DATE):
        num = _as_number(spec, value)  # a value that is no number is refused for every operator
        return f"%{_escape(str(value).casefold())}%" if op == "CONTAINS" else num
    if t == PropertyType.BOOLEAN:
        if op not in ("EQ",):
            raise ValidationFailed(f"operator {op} does not apply to boolean property {spec.propertyName!r}")
        b = value if isinstance(value, bool) else str(value).strip().lower() in {"true", "yes", "1"}
        return "true" if b else "false"
    if t == PropertyType.ARRAY:
        item = _escape(str(value).casefold())
        if op == "EQ":
            return f"%{ARRAY_SEP}{item}{ARRAY_SEP}%"
        if op == "CONTAINS":
            return f"%{item}%"
        raise ValidationFailed(f"operator {op} does not apply to array property {spec.propertyName!r}")
    text = str(value).casefold()
    return f"%{_escape(text)}%" if op == "CONTAINS" else text


def _predicate(pv: Any, spec: PropertySpec, op: str, bound: Any, tag: str) -> ColumnElement[bool]:
    """``pv`` satisfies ``op`` against ``bound`` (:func:`_property_value`), bound as ``tag`` (IN: ``tag_<j>``)."""
    if op == "IN":
        if not bound:
            return false()
        return or_(*[_predicate(pv, spec, "EQ", v, f"{tag}_{j}") for j, v in enumerate(bound)])
    t = spec.type
    like = op == "CONTAINS" or (t == PropertyType.ARRAY and op == "EQ")
    col = pv.value_num if t in (PropertyType.NUMBER, PropertyType.DATE) and not like else pv.value_text
    b = bindparam(tag, bound, type_=col.type)
    return col.like(b, escape="\\") if like else _COMPARE[op](col, b)


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
