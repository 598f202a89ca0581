"""Refreshing stored memory readings (``memories.readings``, see :mod:`memrelay.engine.domain.readings`).

A memory is written with the readings of its text, but memories written before readings existed have none, and a
change to the reading code (``READINGS_VERSION``) makes every stored reading stale: recall then reads those texts
again. :func:`refresh_readings` walks the memories by id, a batch at a time, and stores current readings for those
that lack them. It changes nothing else — not ``updated_at``, which the org-wide index and the entity cache key
on — and never overwrites the readings of a memory whose text changed after it was read.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update

from memrelay.engine.domain.readings import is_current, text_readings
from memrelay.engine.stores.db.database import Database, rowcount
from memrelay.engine.stores.db.models import Memory

MEMORIES = cast(Table, Memory.__table__)

# One row per memory whose readings are refreshed: written only while its text is still the one read. A single
# statement per row, so the comparison and the write see the same row version (PostgreSQL re-checks the condition
# on the newest version of a row updated concurrently; SQLite writers are serialised): an edit committed in between
# keeps its own readings. Memory texts are stored in clear (no random nonce), so comparing them is exact.
_REFRESH = (update(MEMORIES)
            .where(MEMORIES.c.id == bindparam("b_id"), MEMORIES.c.text == bindparam("b_text"))
            .values(readings=bindparam("b_readings", type_=MEMORIES.c.readings.type)))


def refresh_readings(db: Database, *, after_id: str, limit: int) -> tuple[str | None, int]:
    """Store current readings for the next ``limit`` memories by id after ``after_id`` ("" from the start) whose
    stored readings are missing or not current (:func:`~memrelay.engine.domain.readings.is_current`).

    Soft-deleted memories are included: they can be restored. Returns (the last id scanned, or None once the end of
    the table was reached; how many memories were updated)."""
    with db.read() as s:
        rows = s.execute(select(Memory.id, Memory.text, Memory.readings).where(Memory.id > after_id)
                         .order_by(Memory.id).limit(limit)).all()
    stale: list[dict[str, Any]] = [{"b_id": r.id, "b_text": r.text, "b_readings": text_readings(r.text)}
                                   for r in rows if not is_current(r.text, r.readings)]
    updated = 0
    if stale:
        with db.session() as s:
            updated = rowcount(s.execute(_REFRESH, stale))
    return (rows[-1].id if len(rows) == limit else None), updated
