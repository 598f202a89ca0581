"""The ``MEMRELAY_DB_*`` and ``MEMRELAY_REDIS_*`` settings reach real connections: pool size and timeout,
PostgreSQL statement and idle-in-transaction timeouts, TCP keepalive, Redis socket timeouts."""

from __future__ import annotations

import threading

import pytest
import redis
import sqlalchemy as sa

from memrelay.engine.core.settings import Settings, load_settings
from memrelay.engine.stores.db.database import Database
from memrelay.queue.connection import connect


def test_settings_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMRELAY_DB_POOL_SIZE", "3")
    monkeypatch.setenv("MEMRELAY_DB_STATEMENT_TIMEOUT_MS", "0")
    monkeypatch.setenv("MEMRELAY_REDIS_SOCKET_TIMEOUT_S", "1.5")
    s = load_settings()
    assert (s.db_pool_size, s.db_statement_timeout_ms, s.redis_socket_timeout_s) == (3, 0, 1.5)
    fields = Settings.model_fields  # guarded by default
    assert fields["db_statement_timeout_ms"].default > 0 and fields["db_keepalive_idle_s"].default > 0


def test_postgres_connections_carry_the_timeouts_and_pool_limits(settings: Settings, backend: str) -> None:
    if backend != "postgres":
        pytest.skip("PostgreSQL session settings")
    s = settings.model_copy(update={"db_pool_size": 1, "db_max_overflow": 0, "db_pool_timeout_s": 0.5,
                                    "db_statement_timeout_ms": 300, "db_idle_in_transaction_timeout_ms": 4000,
                                    "db_keepalive_idle_s": 17})
    db = Database.from_settings(s)
    try:
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW statement_timeout").scalar() == "300ms"
            assert conn.exec_driver_sql("SHOW idle_in_transaction_session_timeout").scalar() == "4s"
            assert conn.connection.dbapi_connection.info.get_parameters()["keepalives_idle"] == "17"
            assert conn.connection.dbapi_connection.prepare_threshold == 5  # the default
            # a query longer than the statement timeout is cancelled instead of hanging the caller
            with pytest.raises(sa.exc.OperationalError, match="statement timeout"):
                conn.exec_driver_sql("SELECT pg_sleep(3)")
            conn.rollback()
            # the pool holds one connection: a second checkout times out after db_pool_timeout_s
            result: list[BaseException] = []

            def second() -> None:
                try:
                    with db.engine.connect():
                        pass
                except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
                    result.append(exc)

            t = threading.Thread(target=second)
            t.start()
            t.join(10)
            assert result and isinstance(result[0], sa.exc.TimeoutError)
    finally:
        db.dispose()


def test_redis_client_uses_the_socket_timeouts(settings: Settings) -> None:
    conn = connect(settings.model_copy(update={"redis_socket_timeout_s": 0.3, "redis_connect_timeout_s": 0.7}))
    kwargs = conn.connection_pool.connection_kwargs
    assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (0.3, 0.7)
    # a reply slower than the socket timeout fails the call instead of blocking the caller
    with pytest.raises(redis.TimeoutError):
        conn.execute_command("BLPOP", "memrelay:test:never", 2)


def test_prepared_statements_can_be_turned_off_for_poolers(settings: Settings, backend: str) -> None:
    if backend != "postgres":
        pytest.skip("PostgreSQL prepared statements")
    db = Database.from_settings(settings.model_copy(update={"db_prepare_threshold": 0}))
    try:
        with db.read() as s:
            for _ in range(8):  # past psycopg's default threshold of 5
                s.execute(sa.text("SELECT 1 + :x"), {"x": 1}).scalar()
            conn = s.connection().connection.dbapi_connection
            assert conn.prepare_threshold is None
            assert s.execute(sa.text("SELECT count(*) FROM pg_prepared_statements")).scalar() == 0
    finally:
        db.dispose()
