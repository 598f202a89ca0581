"""Engine/session management for SQLite (embedded) and PostgreSQL (scale)."""

from __future__ import annotations

import fcntl
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, CursorResult, Engine, Result
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from memrelay.engine.core.errors import MemrelayError, ServiceUnavailable

if TYPE_CHECKING:
    from memrelay.engine.core.settings import Settings


@dataclass(frozen=True)
class PoolOptions:
    """How a process pools and guards its SQL connections (``MEMRELAY_DB_*`` settings).

    Sizes apply to PostgreSQL (SQLite keeps its own small fixed pools); the statement and
    idle-in-transaction timeouts and TCP keepalive make a stuck query or a dead peer fail instead of hang.
    A pooled PostgreSQL connection is pinged on checkout only when it sat idle for ``ping_after_idle_s`` or
    longer (0: always), not on every checkout: a connection used moments ago costs no extra round trip."""

    pool_size: int = 10
    max_overflow: int = 20
    pool_timeout_s: float = 30.0
    pool_recycle_s: int = 1800
    statement_timeout_ms: int = 30_000
    idle_in_transaction_timeout_ms: int = 60_000
    keepalive_idle_s: int = 30
    ping_after_idle_s: float = 10.0
    prepare_threshold: int = 5  # psycopg prepares a statement after this many runs on a connection; 0: never

    @classmethod
    def from_settings(cls, settings: Settings) -> PoolOptions:
        return cls(pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow,
                   pool_timeout_s=settings.db_pool_timeout_s, pool_recycle_s=settings.db_pool_recycle_s,
                   statement_timeout_ms=settings.db_statement_timeout_ms,
                   idle_in_transaction_timeout_ms=settings.db_idle_in_transaction_timeout_ms,
                   keepalive_idle_s=settings.db_keepalive_idle_s, ping_after_idle_s=settings.db_ping_after_idle_s,
                   prepare_threshold=settings.db_prepare_threshold)

    def postgres_connect_args(self) -> dict[str, Any]:
        """psycopg's prepare threshold (None: never prepare) and libpq keepalive parameters (a silently dropped
        connection is noticed in under a minute)."""
        args: dict[str, Any] = {"prepare_threshold": self.prepare_threshold or None}
        if self.keepalive_idle_s:
            args.update({"keepalives": 1, "keepalives_idle": self.keepalive_idle_s, "keepalives_interval": 10,
                         "keepalives_count": 3})
        return args

    def postgres_session_sql(self) -> list[str]:
        """Statements run on every new PostgreSQL connection (timeouts; 0 = the server's default)."""
        out = []
        if self.statement_timeout_ms:
            out.append(f"SET statement_timeout = {int(self.statement_timeout_ms)}")
        if self.idle_in_transaction_timeout_ms:
            out.append(f"SET idle_in_transaction_session_timeout = {int(self.idle_in_transaction_timeout_ms)}")
        return out


class WriterQueue:
    """SQLite's writers queue here, not in SQLite's busy handler: a thread lock inside the process and an
    ``flock`` on ``<database>.writelock`` across processes (web workers, RQ workers). A blocked ``flock`` wakes as
    soon as the holder releases it; the busy handler sleeps 1, 2, 5 … 100 ms between retries, which set the
    webhook accept path's tail. Re-entrant in one thread; the lock file is opened once per process (a descriptor
    inherited across ``fork`` would share the parent's lock). An in-memory database needs only the thread lock."""

    def __init__(self, database_path: str) -> None:
        self._thread_lock = threading.RLock()
        self._path = None if database_path in ("", ":memory:") else f"{database_path}.writelock"
        self._fd: int | None = None
        self._pid = 0
        self._depth = 0

    def __enter__(self) -> WriterQueue:
        self._thread_lock.acquire()
        try:
            if self._depth == 0 and self._path is not None:
                fcntl.flock(self._descriptor(), fcntl.LOCK_EX)
        except BaseException:
            self._thread_lock.release()
            raise
        self._depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        try:
            if self._depth == 0 and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()

    def _descriptor(self) -> int:
        if self._pid != os.getpid():
            assert self._path is not None
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._pid = os.getpid()
        assert self._fd is not None
        return self._fd


class ReadSessionMisuse(MemrelayError):
    """A statement that writes (or, on PostgreSQL, a streamed query outside
    :func:`streaming_connection`) ran in a :meth:`Database.read` session: a bug in the caller. A write there used
    to be rolled back silently; PostgreSQL reads run in autocommit, where it would commit, so it is refused
    before it reaches the database (on SQLite too, so tests catch it on either database)."""

    code = "read_session_misuse"
    http_status = 500


class Database:
    """Owns the SQLAlchemy engine. ``session()`` is a unit of work committed on success; ``read()`` reads."""

    def __init__(self, url: str, *, echo: bool = False, pool: PoolOptions | None = None):
        self.url = url
        self.pool = pool = pool or PoolOptions()
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(
                url, echo=echo, connect_args={"check_same_thread": False, "timeout": 30},
                pool_size=20, max_overflow=20, pool_timeout=pool.pool_timeout_s,
            )
            event.listen(self.engine, "connect", _sqlite_on_connect)
            event.listen(self.engine, "begin", _sqlite_on_begin_immediate)
            # Readers use deferred transactions so they never wait for the write lock (WAL).
            self.read_engine: Engine = create_engine(
                url, echo=echo, connect_args={"check_same_thread": False, "timeout": 30},
                pool_size=20, max_overflow=20, pool_timeout=pool.pool_timeout_s,
            )
            event.listen(self.read_engine, "connect", _sqlite_on_connect)
            event.listen(self.read_engine, "begin", _sqlite_on_begin_deferred)
        else:
            self.engine = create_engine(
                url, echo=echo, pool_size=pool.pool_size, max_overflow=pool.max_overflow,
                pool_timeout=pool.pool_timeout_s, pool_recycle=pool.pool_recycle_s or -1,
                connect_args=pool.postgres_connect_args(),
            )
            ping_idle_connections(self.engine, pool.ping_after_idle_s)
            session_sql = pool.postgres_session_sql()
            if session_sql:
                event.listen(self.engine, "connect", lambda conn, _rec: _run_session_sql(conn, session_sql))
            self.read_engine = self.engine
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock: AbstractContextManager[Any] = (
            WriterQueue(url.partition("///")[2].partition("?")[0]) if self.is_sqlite else nullcontext())
        # PostgreSQL reads run in autocommit on the same pool (psycopg's autocommit flag is set on checkout and
        # reset on return, client-side: no round trip): no BEGIN/ROLLBACK around a read, and no ROLLBACK that
        # makes psycopg forget the statements it counted or prepared on that connection (it clears them all
        # on every rollback), so a repeated read becomes a server-side prepared statement.
        read_bind = self.read_engine if self.is_sqlite else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        event.listen(read_bind, "before_cursor_execute", _refuse_writes_in_reads(autocommit=not self.is_sqlite))
        self._read_sessions = sessionmaker(read_bind, expire_on_commit=False,
                                           info={_STREAM_DATABASE: None if self.is_sqlite else self})

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        """The database of ``settings`` with its pool options."""
        return cls(settings.sql_url, pool=PoolOptions.from_settings(settings))

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: commits when the block exits normally, rolls back on error.

        On SQLite, writers of one process queue on a lock instead of in SQLite's busy handler, whose
        sleeps (up to 100 ms each) would otherwise dominate tail latency under concurrent writes.

        Inside :meth:`unit_of_work` (same thread or task) it joins that transaction as a savepoint instead."""
        unit = _unit_of_work.get()
        if unit is not None and unit.db is self:
            with unit.session.begin_nested():
                yield unit.session
            return
        with self._write_lock, self._sessions() as s:
            try:
                yield s
                s.commit()
            except BaseException:
                s.rollback()
                raise

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """One transaction around everything in the block: every :meth:`session` opened inside it (by any
        store or service) joins it as a savepoint, so all their writes commit or roll back together.
        Callbacks registered with :meth:`after_commit` run once it has committed."""
        if _unit_of_work.get() is not None:
            raise RuntimeError("unit_of_work() does not nest")
        unit = _Unit(self)
        with self.session() as s:
            unit.session = s
            token = _unit_of_work.set(unit)
            try:
                yield s
            finally:
                _unit_of_work.reset(token)
        for fn in unit.callbacks:
            fn()

    def after_commit(self, fn: Callable[[], None]) -> bool:
        """Run ``fn`` once the surrounding :meth:`unit_of_work` commits (True), or now if there is none
        (False). Side effects outside SQL (the vector index) must never see uncommitted rows."""
        unit = _unit_of_work.get()
        if unit is not None and unit.db is self:
            unit.callbacks.append(fn)
            return True
        fn()
        return False

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session (never takes SQLite's write lock). A statement that writes in it raises
        :class:`ReadSessionMisuse`.

        SQLite: one deferred transaction, so every statement of the block reads one snapshot. PostgreSQL: no
        transaction (autocommit), each statement reads the rows committed when it starts — what READ COMMITTED,
        the server's default, gave each statement of a read transaction anyway, minus two round trips. A row
        lock (``FOR UPDATE``) taken here ends with its statement: a read-modify-write belongs in :meth:`session`.
        A streamed (server-side cursor) query needs a transaction: run it on :func:`streaming_connection`."""
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


class _Unit:
    """The open :meth:`Database.unit_of_work` of the current thread or task."""

    def __init__(self, db: Database):
        self.db = db
        self.session: Session
        self.callbacks: list[Callable[[], None]] = []


_unit_of_work: ContextVar[_Unit | None] = ContextVar("memrelay_unit_of_work", default=None)


@contextmanager
def streaming_connection(s: Session) -> Iterator[Connection]:
    """A connection to run a streamed query (``stream_results``: a server-side cursor) of session ``s`` on.
    A server-side cursor lives in a transaction: a write session's or a SQLite read's own connection has one;
    a PostgreSQL :meth:`Database.read` session runs in autocommit, so the stream gets a read transaction of its
    own (READ COMMITTED, the rows the session's next statement would see), rolled back when the block exits."""
    db = s.info.get(_STREAM_DATABASE)
    if db is None:
        yield s.connection()
        return
    with db.engine.connect() as conn:
        yield conn


_STREAM_DATABASE = "memrelay_stream_database"
# statements that write whatever their compiled flags say (text(), exec_driver_sql)
_WRITE_SQL = re.compile(r"\s*(?:INSERT|UPDATE|DELETE|MERGE|REPLACE|UPSERT|CREATE|DROP|ALTER|TRUNCATE|COPY|GRANT|"
                        r"REVOKE|LOCK|VACUUM|REINDEX|CLUSTER|COMMENT|REFRESH|SAVEPOINT)\b", re.IGNORECASE)


def _refuse_writes_in_reads(*, autocommit: bool) -> Callable[..., None]:
    """A ``before_cursor_execute`` hook for read sessions: DML and DDL raise :class:`ReadSessionMisuse`; in
    ``autocommit``, so does a server-side cursor. Client-side and cheap (flags, one anchored match): a write
    hidden in a function call or a data-modifying CTE of a ``text()`` statement is not recognised."""

    def refuse(_conn: Connection, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool) -> None:
        compiled_write = context is not None and (context.isinsert or context.isupdate or context.isdelete
                                                  or context.isddl)
        if compiled_write or _WRITE_SQL.match(statement):
            raise ReadSessionMisuse("a read session ran a statement that writes: use Database.session()",
                                    details={"statement": statement[:200]})
        if autocommit and context is not None and context.execution_options.get("stream_results"):
            raise ReadSessionMisuse("a streamed query needs a transaction: run it on streaming_connection(s)",
                                    details={"statement": statement[:200]})

    return refuse


def rowcount(result: Result[Any]) -> int:
    """Rows a DML statement matched (``Session.execute`` types its result as a plain ``Result``)."""
    assert isinstance(result, CursorResult)
    return result.rowcount


_LAST_USED = "memrelay_last_used"


def ping_idle_connections(engine: Engine, idle_s: float) -> None:
    """Ping a pooled connection on checkout only when it was idle for ``idle_s`` seconds or more (a server
    restart, an idle timeout or a dropped peer happen while a connection sits in the pool). A dead one is
    discarded and the pool hands out another (``DisconnectionError`` in a checkout hook: SQLAlchemy retries
    with a fresh connection). A connection that fails while in use is still invalidated by SQLAlchemy's own
    disconnect handling, together with every pooled connection older than it."""

    def checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info[_LAST_USED] = time.monotonic()

    def checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        last = record.info.get(_LAST_USED)
        if last is None or time.monotonic() - last < idle_s:  # new (just connected) or recently used
            return
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError(f"pooled connection is dead: {exc.__class__.__name__}") from exc
        if not alive:
            raise DisconnectionError("pooled connection is dead")

    event.listen(engine, "checkin", checkin)
    event.listen(engine, "checkout", checkout)


def _run_session_sql(dbapi_conn: Any, statements: list[str]) -> None:
    with dbapi_conn.cursor() as cur:
        for sql in statements:
            cur.execute(sql)
    dbapi_conn.commit()


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
    # On the driver's connection: a read session's BEGIN needs none of SQLAlchemy's statement machinery (compiled
    # cache, events, result), which cost more than the BEGIN itself on every scoped recall.
    driver = conn.connection.driver_connection
    assert driver is not None
    driver.execute("BEGIN")
