"""Engine/session management for SQLite (embedded) and PostgreSQL (scale)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, CursorResult, Engine, Result
from sqlalchemy.orm import Session, sessionmaker

from memrelay.engine.core.errors import ServiceUnavailable


class Database:
    """Owns the SQLAlchemy engine. ``session()`` is a unit of work committed on success."""

    def __init__(self, url: str, *, echo: bool = False):
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(
                url, echo=echo, connect_args={"check_same_thread": False, "timeout": 30},
                pool_size=20, max_overflow=20,
            )
            event.listen(self.engine, "connect", _sqlite_on_connect)
            event.listen(self.engine, "begin", _sqlite_on_begin_immediate)
            # Readers use deferred transactions so they never wait for the write lock (WAL).
            self.read_engine: Engine = create_engine(
                url, echo=echo, connect_args={"check_same_thread": False, "timeout": 30},
                pool_size=20, max_overflow=20,
            )
            event.listen(self.read_engine, "connect", _sqlite_on_connect)
            event.listen(self.read_engine, "begin", _sqlite_on_begin_deferred)
        else:
            self.engine = create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=20)
            self.read_engine = self.engine
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock: AbstractContextManager[Any] = threading.RLock() if self.is_sqlite else nullcontext()
        self._read_sessions = sessionmaker(self.read_engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: commits when the block exits normally, rolls back on error.

        On SQLite, writers of one process queue on a lock instead of in SQLite's busy handler, whose
        sleeps (up to 100 ms each) would otherwise dominate tail latency under concurrent writes."""
        with self._write_lock, self._sessions() as s:
            try:
                yield s
                s.commit()
            except BaseException:
                s.rollback()
                raise

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only unit of work (never takes SQLite's write lock)."""
        with self._read_sessions() as s:  # closing ends the transaction without expiring loaded rows
            yield s

    def ping(self) -> None:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # any driver error means "not ready"
            raise ServiceUnavailable(f"SQL database unreachable: {exc.__class__.__name__}") from exc

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def dispose(self) -> None:
        self.engine.dispose()
        self.read_engine.dispose()


def rowcount(result: Result[Any]) -> int:
    """Rows a DML statement matched (``Session.execute`` types its result as a plain ``Result``)."""
    assert isinstance(result, CursorResult)
    return result.rowcount


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy emit BEGIN itself (see _sqlite_on_begin) so writers take the lock up front.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_on_begin_immediate(conn: Connection) -> None:
    # IMMEDIATE: a transaction that will write takes the write lock at BEGIN, so two read-modify-write
    # transactions serialize instead of failing with "database is locked" on upgrade.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_on_begin_deferred(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN")
