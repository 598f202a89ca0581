"""Search builds its page's ``Record`` objects from plain rows (search._loaded_record) without the ORM's loading:
they must be what ``make_transient_to_detached`` makes of the same values — detached, keyed by id, every column
loaded, no history — so callers can read them after the session closes and merge or refresh them as any record."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.orm import make_transient_to_detached

from memrelay.engine.stores.db.models import Record
from memrelay.engine.stores.search import _RECORD_MANAGER, _RECORD_NAMES, _loaded_record

ROW = ("rec_000000000001", "org_x", "contact", "email:a@b.c", 3, datetime(2026, 1, 1, tzinfo=UTC),
       datetime(2026, 1, 2, tzinfo=UTC), None, None)


def _reference(values: tuple[Any, ...]) -> Record:
    record = _RECORD_MANAGER.new_instance()
    record.__dict__.update(zip(_RECORD_NAMES, values, strict=True))
    make_transient_to_detached(record)
    return record


def test_a_loaded_record_is_what_make_transient_to_detached_makes():
    fast, ref = inspect(_loaded_record(ROW)), inspect(_reference(ROW))
    for attr in ("key", "identity_key", "identity", "detached", "transient", "pending", "persistent", "modified",
                 "expired", "has_identity", "committed_state", "expired_attributes", "unloaded", "session_id"):
        assert getattr(fast, attr) == getattr(ref, attr), attr
    assert fast.dict == ref.dict and fast.key == (Record, ("rec_000000000001",), None)
    assert all(not fast.attrs[name].history.has_changes() for name in _RECORD_NAMES)
    assert not fast.manager.dispatch.expire  # no expire listener that make_transient_to_detached would have called


def test_a_loaded_record_merges_into_a_session_without_sql(engine: Any):
    org = engine.tenancy.create_org("loaded-record").id
    with engine.db.session() as s:
        now = datetime.now(UTC).replace(tzinfo=None)
        s.add(Record(id="rec_000000000009", org_id=org, entity_type="contact", primary_key="p", version=1,
                     created_at=now, updated_at=now))
    with engine.db.read() as s:
        row = s.get(Record, "rec_000000000009")
        assert row is not None
        values = tuple(getattr(row, n) for n in _RECORD_NAMES)
    record = _loaded_record(values)
    with engine.db.read() as s:
        merged = s.merge(record, load=False)
        assert inspect(merged).persistent and merged.primary_key == "p" and not s.dirty
