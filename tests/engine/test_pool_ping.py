"""PostgreSQL pool liveness (issue 16 item 2): a pooled connection is pinged on checkout only after it sat idle
for ``ping_after_idle_s`` — a connection used moments ago costs no extra round trip — and a dead one found by
that ping is replaced transparently. A connection that dies while recently used fails its statement once; the
pool then hands out a fresh connection."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from memrelay.engine.stores.db.database import Database, PoolOptions


def _backend_pid(db: Database) -> int:
    with db.engine.connect() as c:
        return int(c.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())


def _terminate(url: str, pid: int) -> None:
    killer = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with killer.connect() as c:
        assert c.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
        for _ in range(100):  # the backend exits asynchronously
            if not c.execute(
                sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
            ).scalar_one():
                break
            time.sleep(0.05)
    killer.dispose()


def test_a_connection_idle_past_the_threshold_is_pinged_and_replaced_when_dead(pg_url: str):
    db = Database(pg_url, pool=PoolOptions(pool_size=1, max_overflow=0, ping_after_idle_s=0.2))
    try:
        first = _backend_pid(db)
        _terminate(pg_url, first)
        time.sleep(0.3)  # idle past the threshold: the next checkout pings, finds it dead, reconnects
        assert _backend_pid(db) != first
    finally:
        db.dispose()


def test_a_recently_used_connection_is_not_pinged_and_a_disconnect_is_handled_on_error(pg_url: str):
    db = Database(pg_url, pool=PoolOptions(pool_size=1, max_overflow=0, ping_after_idle_s=600))
    try:
        first = _backend_pid(db)
        _terminate(pg_url, first)
        with pytest.raises(sa.exc.DBAPIError) as failed:  # no ping: the statement itself meets the dead peer
            _backend_pid(db)
        assert failed.value.connection_invalidated
        assert _backend_pid(db) != first  # the invalidated connection was replaced
    finally:
        db.dispose()
