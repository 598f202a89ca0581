"""One prebuilt SELECT run on a pooled driver connection, outside any session: a hot read's only statement.

Every API request looks its key up (stores/tenancy.py) and a warm scoped recall runs one indexed lookup (the
record by its key, with its stamps: stores/identity.py). Through a session such a lookup took ~40 µs of SQL on
SQLite and ~200 µs more of SQLAlchemy's session, connection, transaction and execution context.
:class:`DriverSelect` compiles its statement once per dialect and runs it on a connection checked out of the same
pool (the pool's checkout hooks still run: PostgreSQL's idle ping), with SQLAlchemy's own result processing per
column, so its rows equal the Core path's. Errors are raised as SQLAlchemy's ``DBAPIError`` subclasses (the
gateway's one handler renders them) and a connection that lost its server is invalidated, as SQLAlchemy does.

The statement runs in a snapshot of its own: SQLite in autocommit (a lone SELECT is its own read transaction),
PostgreSQL in autocommit as every read session's statement does. Callers use it only where neither ORM events
(a department key's access criteria) nor a transaction already open in the caller's session must see the read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Select

Processor = Callable[[Any], Any] | None


class _Compiled:
    def __init__(self, stmt: Select[Any], dialect: Dialect) -> None:
        compiled = stmt.compile(dialect=dialect)
        if any(b.expanding for b in compiled.binds.values()) or compiled.escaped_bind_names:
            raise ValueError("DriverSelect: expanding or escaped parameter names are not supported")
        self.sql = str(compiled)
        self.defaults = {name: b.effective_value for name, b in compiled.binds.items() if not b.required}
        self.positional = list(compiled.positiontup) if compiled.positional and compiled.positiontup else None
        self.processors: list[Processor] = [
            c.type.dialect_impl(dialect).result_processor(dialect, None) for c in stmt.selected_columns]

    def parameters(self, params: Mapping[str, Any]) -> Any:
        values = {**self.defaults, **params}
        return [values[name] for name in self.positional] if self.positional is not None else values


class DriverSelect:
    """``stmt`` (a SELECT whose parameters are plain values: strings, numbers) run on a driver connection.

    Rows are tuples of the statement's selected columns, processed as SQLAlchemy would. Thread-safe; one compiled
    form per dialect name is kept."""

    def __init__(self, stmt: Select[Any]) -> None:
        self.stmt = stmt
        self._compiled: dict[str, _Compiled] = {}

    def compiled(self, dialect: Dialect) -> tuple[str, Callable[[Mapping[str, Any]], Any]]:
        """The SQL text this statement runs on ``dialect`` and the function that binds its parameters."""
        c = self._form(dialect)
        return c.sql, c.parameters

    def _form(self, dialect: Dialect) -> _Compiled:
        c = self._compiled.get(dialect.name)
        if c is None:
            c = self._compiled[dialect.name] = _Compiled(self.stmt, dialect)
        return c

    def rows(self, engine: Engine, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Run on a connection of ``engine``'s pool (returned to it before this returns)."""
        dialect = engine.dialect
        c = self._form(dialect)
        bound = c.parameters(params)
        fairy = engine.raw_connection()
        driver: Any = fairy.driver_connection
        autocommit = dialect.name == "postgresql" and not driver.autocommit  # psycopg: no BEGIN/ROLLBACK round trip
        cursor = None
        try:
            if autocommit:
                driver.autocommit = True
            cursor = fairy.cursor()
            cursor.execute(c.sql, bound)
            raw = cursor.fetchall()
        except dialect.loaded_dbapi.Error as exc:
            if dialect.is_disconnect(exc, fairy.dbapi_connection, cursor):
                fairy.invalidate(exc)
            raise DBAPIError.instance(c.sql, bound, exc, dialect.loaded_dbapi.Error,
                                      connection_invalidated=not fairy.is_valid, dialect=dialect) from exc
        finally:
            try:
                if fairy.is_valid:
                    if cursor is not None:
                        cursor.close()
                    if autocommit:
                        driver.autocommit = False
            finally:
                fairy.close()
        processors = c.processors
        if not any(processors):
            return [tuple(r) for r in raw]
        return [tuple(v if p is None else p(v) for p, v in zip(processors, r, strict=True)) for r in raw]
