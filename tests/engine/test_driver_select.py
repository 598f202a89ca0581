"""A warm scoped recall's one statement runs on a driver connection outside the session (issue 16, scoped recall
p50): same rows as the Core path, on both databases; the session path where the ORM or a transaction must see
the read; SQLAlchemy's errors and invalidation when the server drops the connection."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import create_engine, event, func, select
from sqlalchemy.exc import DBAPIError

from memrelay.composition import Services
from memrelay.engine.core.access import AccessScope, access_scope
from memrelay.engine.core.errors import Unauthorized
from memrelay.engine.memory.entity_vectors import STAMP_COLUMNS
from memrelay.engine.memory.memories import MemorizeRequest
from memrelay.engine.memory.recall import RecallRequest
from memrelay.engine.stores.db.database import Database
from memrelay.engine.stores.db.driver_select import DriverSelect
from memrelay.engine.stores.db.models import Record, RecordKey
from memrelay.engine.stores.identity import Identifiers, _holders_statement, holders


def _memorize(engine: Services, org: str, text: str, **ids: Any) -> str:
    return str(engine.memories.memorize(org, MemorizeRequest.model_validate({"content": text, **ids}))["recordId"])


@pytest.fixture()
def org(engine: Services) -> str:
    org = engine.tenancy.get_or_create_org(f"driver-{id(engine)}").id
    _memorize(engine, org, "Nadia runs the data team at Kestrel.", email="nadia@kestrel.example",
              website_url="kestrel.example", type="contact")
    _memorize(engine, org, "Kestrel builds drones in Lyon.", website_url="kestrel.example", type="company")
    return org


class _Statements:
    """Counts what SQLAlchemy executes and checks out on both engines of a database."""

    def __init__(self, db: Database) -> None:
        self.db, self.executed, self.checkouts = db, 0, 0

    def _execute(self, *_: Any) -> None:
        self.executed += 1

    def _checkout(self, *_: Any) -> None:
        self.checkouts += 1

    def __enter__(self) -> _Statements:
        for e in {self.db.engine, self.db.read_engine}:
            event.listen(e, "before_cursor_execute", self._execute)
            event.listen(e, "checkout", self._checkout)
        return self

    def __exit__(self, *_: Any) -> None:
        for e in {self.db.engine, self.db.read_engine}:
            event.remove(e, "before_cursor_execute", self._execute)
            event.remove(e, "checkout", self._checkout)


@pytest.mark.parametrize("ids", [Identifiers(website_url="kestrel.example"), Identifiers(email="nadia@kestrel.example"),
                                 Identifiers(email="nobody@kestrel.example")])
def test_a_first_read_runs_on_the_driver_and_equals_the_core_path(engine: Services, org: str, backend: str,
                                                                   ids: Identifiers) -> None:
    with _Statements(engine.db) as seen, engine.db.read() as s:
        fast = holders(s, org, ids, None, limit=10, columns=STAMP_COLUMNS)
        assert not s.in_transaction() and seen.executed == 0 and seen.checkouts == 1  # outside the session
        by_id = [holders(s, org, Identifiers(record_id=h.id), None, limit=10, columns=STAMP_COLUMNS) for h in fast]
    with engine.db.read() as s:
        s.connection()  # a transaction of the session: the Core path on its connection
        core = holders(s, org, ids, None, limit=10, columns=STAMP_COLUMNS)
        core_by_id = [holders(s, org, Identifiers(record_id=h.id), None, limit=10, columns=STAMP_COLUMNS)
                      for h in core]
    assert fast == core and by_id == core_by_id
    if ids.email == "nobody@kestrel.example":
        assert fast == []
    else:
        assert fast and all(len(h.extra) == len(STAMP_COLUMNS) for h in fast)
        # processed as SQLAlchemy processes them: the dates are datetimes on both databases
        assert all(type(h.extra[1]).__name__ == "datetime" and type(h.extra[4]).__name__ == "datetime"
                   for h in fast)


def test_the_session_path_where_the_orm_or_its_transaction_must_see_the_read(engine: Services, org: str,
                                                                           backend: str) -> None:
    ids = Identifiers(website_url="kestrel.example")
    scope = AccessScope.of(entity_types=["company"]).for_org(org)
    with access_scope(scope), _Statements(engine.db) as seen, engine.db.read() as s:
        scoped = holders(s, org, ids, None, limit=10)
        assert seen.executed == 1  # the ORM statement, with the department's criteria
    assert [h.entity_type for h in scoped] == ["company"]
    # a write session's own uncommitted key is seen: its transaction is open, so the read joins it
    with engine.db.session() as s:
        rec = s.scalar(select(Record).where(Record.org_id == org, Record.entity_type == "company"))
        assert rec is not None
        s.add(RecordKey(org_id=org, record_id=rec.id, key_name="custom:erp", key_value="K-7"))
        s.flush()
        found = holders(s, org, Identifiers(customKeyName="erp", customKeyValue="K-7"), None, limit=10)
        assert [h.id for h in found] == [rec.id]
        s.rollback()


def test_a_warm_scoped_recall_runs_one_driver_statement_and_no_session_statement(engine: Services, org: str,
                                                                                 backend: str) -> None:
    req = RecallRequest(query="Who runs the data team?", email="nadia@kestrel.example")
    first = engine.recall.smart_recall(org, req)
    with _Statements(engine.db) as seen:
        warm = engine.recall.smart_recall(org, req)
    assert seen.executed == 0 and seen.checkouts == 1
    assert [r["memoryId"] for r in warm["results"]] == [r["memoryId"] for r in first["results"]]
    assert warm["results"][0]["text"].startswith("Nadia runs the data team")
    # a new memory of the record: the driver statement's stamps see it and the cache reloads
    _memorize(engine, org, "Nadia moved the data team to Snowflake.", email="nadia@kestrel.example",
              type="contact")
    after = engine.recall.smart_recall(org, req.model_copy(update={"query": "What does the data team use?"}))
    assert any("Snowflake" in r["text"] for r in after["results"])


def test_a_dropped_connection_raises_sqlalchemys_error_and_the_next_read_reconnects(pg_url: str) -> None:
    db = Database(pg_url)
    try:
        pid = DriverSelect(select(func.pg_backend_pid().label("pid")))
        first = pid.rows(db.engine, {})[0][0]
        killer = create_engine(pg_url)
        with killer.connect() as other:
            other.exec_driver_sql(f"SELECT pg_terminate_backend({int(first)})")
        killer.dispose()
        with pytest.raises(DBAPIError) as raised:
            pid.rows(db.engine, {})
        assert raised.value.connection_invalidated
        assert pid.rows(db.engine, {})[0][0] != first  # a new connection, the dead one was discarded
    finally:
        db.dispose()


def test_the_typed_variant_has_no_driver_form() -> None:
    assert _holders_statement(False, True, STAMP_COLUMNS)[1] is None
    assert _holders_statement(False, False, STAMP_COLUMNS)[1] is not None


def test_an_api_key_lookup_runs_on_the_driver_with_its_json_columns_decoded(engine: Services, org: str,
                                                                           backend: str) -> None:
    key, row = engine.tenancy.create_key(org, scopes=["read"], rate_limit_per_minute=77,
                                         access=AccessScope.of(entity_types=["company"]))
    with _Statements(engine.db) as seen:
        info = engine.tenancy.authenticate(key)
    assert seen.executed == 0 and seen.checkouts == 1
    assert (info.key_id, info.org_id, info.scopes, info.rate_limit_per_minute) == (row.id, org, ("read",), 77)
    assert info.access.entity_types == frozenset({"company"}) and info.access.org_id == org
    engine.tenancy.revoke_key(row.id)
    with pytest.raises(Unauthorized):
        engine.tenancy.authenticate(key)  # revoked: the next lookup, in every process, misses it
