"""Set-based inserts at the driver's speed: rows become tuples once, with each column's own bind processor,
and go to the database in one ``executemany`` (SQLite) or one ``COPY ... FROM STDIN`` (PostgreSQL/psycopg).

SQLAlchemy's Core ``execute(insert, list_of_dicts)`` spends most of a bulk load building parameters row by
row (``construct_params`` and the per-value processors, ~70 % of the client time in issue 16's profile);
here the values are converted by the same processors SQLAlchemy would use (JSON serialisation, SQLite
datetime strings, booleans), so what is stored is identical, and the statement runs inside the caller's
session transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import JSON, Table
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine

COPY_MIN_ROWS = 64  # below this, one executemany is as fast as a COPY round trip


def insert_rows(s: Session, table: Table, rows: Sequence[dict[str, Any]]) -> int:
    """Insert ``rows`` (dicts keyed by column name; rows may differ in keys) into ``table`` in the session's
    transaction. Returns the number of rows inserted."""
    if not rows:
        return 0
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row), []).append(row)
    for cols, group in groups.items():
        get = itemgetter(*cols)
        tuples = list(map(get, group)) if len(cols) > 1 else [(v,) for v in map(get, group)]
        insert_tuples(s, table, cols, tuples)
    return len(rows)


def insert_tuples(s: Session, table: Table, cols: Sequence[str], tuples: list[tuple[Any, ...]]) -> int:
    """Insert rows given as tuples in the order of ``cols`` (Python values, as the ORM would take them) into
    ``table`` in the session's transaction: each column that needs it goes through its type's bind processor
    (a whole column at a time), then one ``executemany`` or ``COPY``."""
    return insert_driver_tuples(s, table, cols, driver_tuples(s, table, cols, tuples))


def driver_tuples(s: Session, table: Table, cols: Sequence[str], tuples: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """``tuples`` (Python values in ``cols`` order) as the driver takes them: each column that needs it goes
    through its type's bind processor, a whole column at a time (JSON columns through :func:`json_text`)."""
    if not tuples:
        return tuples
    dialect = s.get_bind().dialect
    procs: list[tuple[int, Callable[[Any], Any]]] = []
    for i, c in enumerate(cols):
        col_type = table.c[c].type
        proc: Callable[[Any], Any] | None = (
            json_text if isinstance(col_type, JSON) else col_type._cached_bind_processor(dialect))
        if proc is not None:
            procs.append((i, proc))
    if not procs:
        return tuples
    columns: list[Any] = list(zip(*tuples, strict=True))
    for i, proc in procs:
        columns[i] = _json_column(columns[i]) if proc is json_text else _convert(proc, columns[i])
    return list(zip(*columns, strict=True))


def insert_driver_tuples(s: Session, table: Table, cols: Sequence[str], tuples: list[tuple[Any, ...]]) -> int:
    """Insert rows already in the driver's form (:func:`driver_tuples`, or built with a :class:`DriverForm`)
    with one ``executemany`` (or one ``COPY`` on PostgreSQL/psycopg), in the session's transaction."""
    if not tuples:
        return 0
    conn = s.connection()
    dialect = conn.dialect
    names = ", ".join(dialect.identifier_preparer.quote(c) for c in cols)
    target = dialect.identifier_preparer.format_table(table)
    if dialect.name == "postgresql" and dialect.driver == "psycopg" and len(tuples) >= COPY_MIN_ROWS:
        raw = conn.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cur, cur.copy(f"COPY {target} ({names}) FROM STDIN") as cp:
            write = cp.write_row
            for t in tuples:
                write(t)
        return len(tuples)
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    conn.exec_driver_sql(f"INSERT INTO {target} ({names}) VALUES ({', '.join([mark] * len(cols))})", tuples)
    return len(tuples)


@dataclass(frozen=True)
class DriverForm:
    """How one session's driver takes the timestamps and booleans a bulk write repeats: the conversions
    :func:`driver_tuples` applies, for code that builds driver-ready tuples itself (once per distinct value
    instead of once per row and column; JSON goes through :func:`json_text`)."""

    datetime: Callable[[Any], Any]
    boolean: Callable[[Any], Any]

    @classmethod
    def of(cls, s: Session, datetime_type: TypeEngine[Any], boolean_type: TypeEngine[Any]) -> DriverForm:
        """The conversions of the given column types (e.g. ``table.c.created_at.type``) on ``s``'s dialect."""
        dialect = s.get_bind().dialect
        return cls(datetime=datetime_type._cached_bind_processor(dialect) or _same,
                   boolean=boolean_type._cached_bind_processor(dialect) or _same)


def _same(value: Any) -> Any:
    return value


def _convert(proc: Callable[[Any], Any], values: Sequence[Any]) -> list[Any]:
    """``proc`` over a column, once per distinct object: a batch repeats the same timestamp object (and the
    same booleans) thousands of times. Keyed by identity, so equal values of different types or time zones
    are each converted on their own; every object is alive for the whole call."""
    done = {k: proc(v) for k, v in {id(v): v for v in values}.items()}
    return [done[id(v)] for v in values]


def _json_column(values: Sequence[Any]) -> list[str]:
    dumps = orjson.dumps
    try:
        return [dumps(v).decode() if v is not None else "null" for v in values]
    except TypeError:  # something orjson refuses: value by value, the slow way where needed
        return [json_text(v) for v in values]


def json_text(value: Any) -> str:
    """JSON text of a value as SQLAlchemy's JSON type stores it (None is the JSON ``null``), via orjson
    (~10x json.dumps); anything orjson refuses goes through json.dumps like SQLAlchemy would."""
    if value is None:
        return "null"
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value)
