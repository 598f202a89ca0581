"""Department access enforced on SQL: what a restricted :class:`AccessScope` may read and write.

Reads: every ORM statement a session executes while a record-restricting scope is bound gets loader criteria
(``with_loader_criteria``, SQLAlchemy's documented row-level filter) on the tables that hold an org's records:
``records``, ``record_keys``, ``property_values``, ``property_history``, ``memories`` and ``entity_types``. A
record of another department is then absent for every reader — identity resolution, recall (entity and
org-wide re-check), digests and their linked records, search and filters, similar/segment, property history,
exports — which answer "not found" exactly as for a record that does not exist. With a collections restriction,
property values and history are limited to the properties those collections define.

Writes: every INSERT into those tables (and ``collections``) is checked before it reaches the database, whether
it comes from the unit of work or a bulk Core statement: a row of an out-of-scope entity type, or a property no
allowed collection defines, is refused with 403 and the transaction rolls back.

Collections themselves are filtered where they are read (:mod:`memrelay.engine.stores.collections`), not here:
the per-process schema cache is validated by aggregate stamps that must see every collection.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, event, false, literal, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import ORMExecuteState, Session, aliased, with_loader_criteria
from sqlalchemy.sql import Insert, Update

from memrelay.engine.core.access import AccessScope, current_access, unrestricted
from memrelay.engine.core.errors import Forbidden
from memrelay.engine.stores.db.models import (
    Collection,
    EntityType,
    Memory,
    PropertyHistory,
    PropertyValue,
    Record,
    RecordKey,
)

_TYPED_TABLES = {"records", "memories", "property_values", "entity_types", "collections"}
_NAMED_TABLES = {"property_values", "property_history"}
_installed = False
_REC = aliased(Record, name="access_record")  # one named alias: statements stay in SQLAlchemy's compiled cache


def install() -> None:
    """Register the session and engine hooks once per process (idempotent; called by ``Tenancy``)."""
    global _installed
    if _installed:
        return
    event.listen(Session, "do_orm_execute", _filter_reads)
    event.listen(Engine, "before_execute", _check_writes)
    _installed = True


def needs_orm(s: Session) -> bool:
    """Whether a read on ``s`` must go through the ORM: under a record-restricting scope (its criteria are applied
    on the session's ``do_orm_execute``) or with changes pending in the session (its autoflush). Otherwise a hot read
    may run its (ORM-enabled) statement as Core on ``s.connection()`` — same SQL, same transaction, a fraction of
    the ORM's per-statement Python."""
    return current_access().restricts_records or bool(s.new or s.dirty or s.deleted)


def execute_read(s: Session, stmt: Any, params: dict[str, Any]) -> Any:
    """Run a read statement (ORM-enabled, so a scope's criteria can apply) through the ORM when :func:`needs_orm`,
    else as Core on the session's connection: same SQL, same transaction, rows as plain tuples."""
    return s.execute(stmt, params) if needs_orm(s) else s.connection().execute(stmt, params)


# --- what a scope covers --------------------------------------------------------------------------------
def _resolve(scope: AccessScope, session: Session | None, conn: Connection | None) -> tuple[frozenset[str], frozenset[str] | None]:
    """(readable entity types, readable property names or None for all) of ``scope`` in its org."""
    types = scope.entity_types
    if scope.collections is None:
        return types or frozenset(), None
    hit = scope._memo.get("resolved")
    if hit is None:
        q = select(Collection.id, Collection.name, Collection.entity_type, Collection.properties).where(
            Collection.org_id == scope.org_id, Collection.archived_at.is_(None))
        with unrestricted():
            if session is not None:
                rows = list(session.execute(q).all())
            else:
                assert conn is not None
                rows = list(conn.execute(q).all())
        chosen = [r for r in rows if r.id.lower() in scope.collections or r.name.lower() in scope.collections]
        col_types = frozenset(r.entity_type for r in chosen)
        names = frozenset(p["propertyName"] for r in chosen for p in (r.properties or []))
        hit = (col_types, names)
        scope._memo["resolved"] = hit
    col_types, names = hit
    return (types if types is not None else col_types), names


def _in(column: Any, values: frozenset[str]) -> Any:
    return column.in_(sorted(values)) if values else false()


def _owned_by_visible_record(model: Any, types: frozenset[str]) -> Any:
    """``EXISTS`` a visible record owning the row (an alias of ``records``, so it never auto-correlates with
    a ``records`` of the outer statement)."""
    if not types:
        return false()
    return (select(literal(1)).where(_REC.id == model.record_id, _REC.entity_type.in_(sorted(types)))
            .correlate_except(_REC).exists())


def _filter_reads(state: ORMExecuteState) -> None:
    scope = current_access()
    if not scope.restricts_records or state.is_column_load or state.is_relationship_load:
        return
    if not (state.is_select or state.is_update or state.is_delete):
        return
    options = scope._memo.get("options")
    if options is None:
        options = scope._memo["options"] = _criteria(scope, state.session)
    state.statement = state.statement.options(*options)


def _criteria(scope: AccessScope, session: Session) -> tuple[Any, ...]:
    """The loader criteria of ``scope`` (built once per bound scope, i.e. per request)."""
    types, names = _resolve(scope, session, None)
    owned, key_owned = _owned_by_visible_record(PropertyHistory, types), _owned_by_visible_record(RecordKey, types)
    pv = _in(PropertyValue.entity_type, types)
    ph = owned
    if names is not None:
        pv = and_(pv, _in(PropertyValue.name, names))
        ph = and_(ph, _in(PropertyHistory.name, names))
    return (
        with_loader_criteria(Record, _in(Record.entity_type, types), include_aliases=True),
        with_loader_criteria(Memory, _in(Memory.entity_type, types), include_aliases=True),
        with_loader_criteria(PropertyValue, pv, include_aliases=True),
        with_loader_criteria(PropertyHistory, ph, include_aliases=True),
        with_loader_criteria(RecordKey, key_owned, include_aliases=True),
        with_loader_criteria(EntityType, _in(EntityType.name, types), include_aliases=True),
    )


# --- writes -----------------------------------------------------------------------------------------------
def _rows(clause: Any, multiparams: Any, params: Any, conn: Connection) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for p in (multiparams if isinstance(multiparams, list | tuple) else [multiparams]) if multiparams else []:
        if isinstance(p, dict):
            rows.append(p)
        elif isinstance(p, list | tuple):
            rows.extend(x for x in p if isinstance(x, dict))
    if params:
        rows.append(dict(params))
    if not rows:  # values given inline (insert(...).values(...))
        rows.append(dict(clause.compile(dialect=conn.dialect).params))
    return rows


def _check_writes(conn: Connection, clause: Any, multiparams: Any, params: Any, execution_options: Any) -> None:
    scope = current_access()
    if not scope.restricts_records or not isinstance(clause, Insert | Update):
        return
    table = getattr(clause.table, "name", None)
    if table not in _TYPED_TABLES and table not in _NAMED_TABLES:
        return
    types, names = _resolve(scope, None, conn)
    rows = _rows(clause, multiparams, params, conn)
    if table == "property_values" and names is not None and isinstance(clause, Update):
        # bulk updates address rows by id (``_id``): check the names of the rows they change
        ids = [r["_id"] for r in rows if r.get("_id") is not None]
        with unrestricted():
            changed = set(conn.execute(select(PropertyValue.name).where(PropertyValue.id.in_(ids))).scalars()) \
                if ids else set()
        if hidden := sorted(changed - names):
            raise Forbidden(f"this key may not write property {hidden[0]!r}",
                            details={"property": hidden[0], "access": scope.to_json()})
    for row in rows:
        et = row.get("entity_type") if table != "entity_types" else row.get("name")
        if et is not None and table in _TYPED_TABLES and str(et).lower() not in types:
            raise Forbidden(f"this key may not write records of type {et!r}",
                            details={"entityType": et, "access": scope.to_json()})
        if table == "collections" and scope.collections is not None and isinstance(clause, Insert):
            raise Forbidden("a collection-restricted key cannot create collections",
                            details={"access": scope.to_json()})
        name = row.get("name")
        if table in _NAMED_TABLES and names is not None and name is not None and name not in names:
            raise Forbidden(f"this key may not write property {name!r}",
                            details={"property": name, "access": scope.to_json()})


def readable(scope: AccessScope, entity_type: str) -> bool:
    """Whether records of ``entity_type`` are visible to ``scope`` (entity types only; for callers with no
    session at hand, e.g. vector-index hit lists)."""
    if not scope.restricts_records:
        return True
    if scope.entity_types is not None:
        return entity_type.lower() in scope.entity_types
    hit = scope._memo.get("resolved")
    return hit is not None and entity_type in hit[0]

