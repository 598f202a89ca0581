"""The inbound event log: idempotent recording, claiming, retries with backoff, dead letters, replay.

The log — not Redis — is the truth: an event is ``received`` when stored (a job is enqueued right after),
``processing`` while a worker holds its lease, then ``processed``; failures go back to ``failed`` with a
``next_attempt_at`` from the ``events`` retry policy (:mod:`memrelay.engine.core.backoff`) until
``MAX_ATTEMPTS``, then ``dead``. The sweeper re-enqueues ``received`` events whose job is not in Redis,
due ``failed`` ones and expired leases.

Leases are fenced by the attempt number :meth:`EventLog.claim` hands out: :meth:`~EventLog.complete`,
:meth:`~EventLog.fail` and :meth:`~EventLog.give_back` apply only while the event is still ``processing``
under that attempt, so a worker whose lease expired and was re-claimed cannot overwrite the newer attempt.
:meth:`~EventLog.complete` runs in the transaction that applied the event and writes its ``event.processed``
notification there (``event.failed`` likewise with the dead letter): effect, completion and notification
commit together or not at all.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from memrelay.engine.core.backoff import EVENTS
from memrelay.engine.core.delivery_headers import capture_headers
from memrelay.engine.core.errors import BadRequest, Conflict, NotFound
from memrelay.engine.core.util import iso, new_id, utcnow
from memrelay.engine.stores.db.database import Database, rowcount
from memrelay.engine.stores.db.models import InboundEvent
from memrelay.engine.stores.outbox import emit

log = logging.getLogger(__name__)
MAX_ATTEMPTS = EVENTS.max_attempts
LEASE_S = 300
STATUSES = ("received", "processing", "processed", "failed", "dead")


class _Pending:
    __slots__ = ("rows", "done", "stored", "error", "after")

    def __init__(self, rows: list[dict[str, Any]],
                 after: Callable[[list[str]], object] | None = None) -> None:
        self.rows = rows
        self.done = False
        self.stored: set[str] = set()
        self.error: BaseException | None = None
        self.after = after


class GroupCommit:
    """Group commit for the webhook accept path: concurrent ``record`` calls of one process share one write
    transaction instead of queueing for the database's write lock one by one.

    No thread of its own: the caller that gets the process's write turn (the leader) takes every request
    waiting at that moment and writes them in one transaction; the others wait for that turn and find their
    rows already committed. A request returns only after the transaction holding its rows has committed, so
    "accepted" still means durable. If a shared batch fails, its requests are written one by one, so each
    caller sees its own outcome (e.g. a source deleted meanwhile fails only its own deliveries)."""

    def __init__(self, write: Callable[[list[dict[str, Any]]], set[str]]) -> None:
        self._write = write
        self._queue: list[_Pending] = []
        self._queue_lock = threading.Lock()
        self._turn = threading.Lock()
        self.batches = 0  # transactions written (observable in tests and benches)

    def submit(self, rows: list[dict[str, Any]],
               after: Callable[[list[str]], object] | None = None) -> set[str]:
        """Write ``rows`` (possibly with other callers' rows, in one transaction); the ids stored.

        ``after(new_ids)`` runs once the rows are committed — once per batch for the callers that pass the
        same callable (the gateway enqueues the batch's jobs in one Redis round trip)."""
        mine = _Pending(rows, after)
        with self._queue_lock:
            self._queue.append(mine)
        with self._turn:
            if not mine.done:
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                self._run(batch)
        if mine.error is not None:
            raise mine.error
        return mine.stored

    def _run(self, batch: list[_Pending]) -> None:
        try:
            stored = self._write([r for p in batch for r in p.rows])
            self.batches += 1
            for p in batch:
                p.stored = stored
            self._after(batch)
            return
        except Exception as exc:
            if len(batch) == 1:
                batch[0].error, batch[0].done = exc, True
                return
        for p in batch:  # a shared batch failed: each request on its own, with its own result or error
            try:
                p.stored = self._write(p.rows)
                self.batches += 1
            except Exception as exc:
                p.error = exc
        self._after([p for p in batch if p.error is None])
        for p in batch:
            p.done = True

    @staticmethod
    def _after(batch: list[_Pending]) -> None:
        """Run each distinct ``after`` once with the new ids of its callers, then mark them done. The rows
        are committed already: a failing hook is logged, never turned into a failed request."""
        groups: dict[int, tuple[Callable[[list[str]], object], list[str]]] = {}
        for p in batch:
            if p.after is not None:
                ids = [r["id"] for r in p.rows if r["id"] in p.stored]
                groups.setdefault(id(p.after), (p.after, []))[1].extend(ids)
        for hook, ids in groups.values():
            if ids:
                try:
                    hook(ids)
                except Exception:
                    log.exception("after-commit hook of %d event(s) failed; the sweeper re-drives them", len(ids))
        for p in batch:
            p.done = True


class LeaseLost(Conflict):
    """The event's lease was taken over by a newer attempt; the stale holder's writes must not commit."""

    code = "lease_lost"


def event_to_dict(e: InboundEvent, *, payload: bool = False) -> dict[str, Any]:
    out = {"id": e.id, "sourceId": e.source_id, "connector": e.connector, "dedupKey": e.dedup_key,
           "eventType": e.event_type, "objectType": e.object_type, "objectId": e.object_id,
           "occurredAt": iso(e.occurred_at), "status": e.status, "attempts": e.attempts,
           "lastError": e.last_error, "result": e.result, "receivedAt": iso(e.received_at),
           "processedAt": iso(e.processed_at), "nextAttemptAt": iso(e.next_attempt_at)}
    if payload:
        out["payload"] = e.payload
        out["headers"] = e.headers  # the delivery's request headers, secrets masked (None: not recorded)
        out["verification"] = e.verification
    return out


class EventLog:
    """Operations on the event log. Reads are org-scoped; worker operations go by event id."""

    def __init__(self, db: Database, *, lease_s: int = LEASE_S, max_attempts: int = MAX_ATTEMPTS):
        self.db = db
        self.lease_s = lease_s
        self.max_attempts = max_attempts
        self._group = GroupCommit(self._insert)

    def record(self, org_id: str, source_id: str, events: list[dict[str, Any]], *,
               after_commit: Callable[[list[str]], object] | None = None,
               headers: Iterable[tuple[str, str]] | None = None,
               verification: dict[str, Any] | None = None) -> tuple[list[str], int]:
        """Store new events, ignoring ones already logged (same source + dedup key).

        ``events`` are dicts with connector, dedup_key, event_type, object_type, object_id, occurred_at,
        payload. ``headers`` (the delivery's request headers, as received) are stored with each event through
        :func:`~memrelay.engine.core.delivery_headers.capture_headers` — hop-by-hop ones dropped, bounded,
        secrets masked here, before anything is written; ``verification`` says which check passed
        (connector, scheme, ``verifiedHeaders``). Returns (ids of newly stored events, number of duplicates),
        once they are committed; ``after_commit(new_ids)`` has run by then (see :class:`GroupCommit`)."""
        now = utcnow()
        stored_headers = None if headers is None else capture_headers(
            headers, verified=(verification or {}).get("verifiedHeaders") or ())
        rows, seen = [], set()
        for ev in events:
            if ev["dedup_key"] in seen:
                continue
            seen.add(ev["dedup_key"])
            rows.append({"id": new_id("evt"), "org_id": org_id, "source_id": source_id, "connector": ev["connector"],
                         "dedup_key": ev["dedup_key"], "event_type": ev["event_type"],
                         "object_type": ev.get("object_type"), "object_id": ev.get("object_id"),
                         "occurred_at": ev.get("occurred_at"), "payload": ev["payload"], "status": "received",
                         "attempts": 0, "result": {}, "received_at": now, "headers": stored_headers,
                         "verification": verification})
        if not rows:
            return [], len(events)
        stored = self._group.submit(rows, after_commit)
        new_ids = [r["id"] for r in rows if r["id"] in stored]
        return new_ids, len(events) - len(new_ids)

    def _insert(self, rows: list[dict[str, Any]]) -> set[str]:
        """Insert rows in one transaction (ON CONFLICT DO NOTHING); the ids that were stored. Committed on return."""
        with self.db.session() as s:
            dialect = s.get_bind().dialect.name
            table = cast(Table, InboundEvent.__table__)  # Core insert: no ORM bulk-insert bookkeeping per delivery
            ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
            stmt = ins.on_conflict_do_nothing(index_elements=["source_id", "dedup_key"]).returning(table.c.id)
            stored = {row[0] for row in s.execute(stmt, rows)} if len(rows) == 1 else set()
            if len(rows) > 1:  # executemany cannot return rows everywhere: insert, then ask what is ours
                s.execute(ins.on_conflict_do_nothing(index_elements=["source_id", "dedup_key"]), rows)
                stored = set(s.scalars(select(InboundEvent.id).where(InboundEvent.id.in_([r["id"] for r in rows]))))
        return stored

    def claim(self, event_id: str) -> InboundEvent | None:
        """Take the processing lease; None if the event is done, dead, or leased by a live worker.

        One statement (``UPDATE … RETURNING``): the row comes back as claimed, with its new attempt number. On
        PostgreSQL it runs in autocommit — a single statement is its own transaction, so no BEGIN/COMMIT round
        trips; SQLite keeps the store's serialised write transaction."""
        now = utcnow()
        stmt = update(InboundEvent).where(
            InboundEvent.id == event_id,
            or_(InboundEvent.status.in_(("received", "failed")),
                and_(InboundEvent.status == "processing", InboundEvent.next_attempt_at <= now)),
        ).values(status="processing", attempts=InboundEvent.attempts + 1,
                 next_attempt_at=now + timedelta(seconds=self.lease_s)
                 ).returning(InboundEvent).execution_options(synchronize_session=False)
        if self.db.is_sqlite:
            with self.db.session() as s:
                return s.scalars(stmt).one_or_none()
        with self.db.engine.connect() as conn, Session(bind=conn.execution_options(isolation_level="AUTOCOMMIT"),
                                                       expire_on_commit=False) as s:
            return s.scalars(stmt).one_or_none()

    def complete(self, s: Session, ev: InboundEvent, result: dict[str, Any]) -> bool:
        """Mark the claimed event ``processed`` and emit ``event.processed``, in ``s`` — the transaction that
        applied it. False (nothing written) when the caller no longer holds the lease of attempt
        ``ev.attempts``: it must roll its effect back."""
        res = s.execute(update(InboundEvent).where(
            InboundEvent.id == ev.id, InboundEvent.status == "processing", InboundEvent.attempts == ev.attempts,
        ).values(status="processed", result=result, processed_at=utcnow(), last_error=None, next_attempt_at=None))
        if rowcount(res) != 1:
            return False
        emit(s, ev.org_id, "event.processed", {"eventId": ev.id, "eventType": ev.event_type, "result": result})
        return True

    def fail(self, event_id: str, error: str, *, attempt: int | None = None) -> str:
        """Record a failed attempt: back to ``failed`` with backoff, or ``dead`` (emitting ``event.failed`` in
        the same transaction) when attempts are exhausted. With ``attempt`` (a worker's lease) nothing is
        written unless that attempt still holds the lease: returns ``"stale"``."""
        with self.db.session() as s:
            ev = s.get(InboundEvent, event_id, with_for_update=True)
            if ev is None:
                return "missing"
            if attempt is not None and (ev.status != "processing" or ev.attempts != attempt):
                return "stale"
            ev.last_error = error[:4000]
            delay = EVENTS.but(max_attempts=self.max_attempts).next_delay(ev.attempts)
            if delay is None:
                ev.status, ev.next_attempt_at = "dead", None
                emit(s, ev.org_id, "event.failed", {"eventId": event_id, "error": error[:500]})
            else:
                ev.status, ev.next_attempt_at = "failed", utcnow() + timedelta(seconds=delay)
            return ev.status

    def give_back(self, event_id: str, attempt: int) -> bool:
        """The lease holder of ``attempt`` gives its lease back (it was stopped): the event is due now."""
        with self.db.session() as s:
            res = s.execute(update(InboundEvent).where(
                InboundEvent.id == event_id, InboundEvent.status == "processing", InboundEvent.attempts == attempt,
            ).values(next_attempt_at=utcnow()))
            return rowcount(res) == 1

    def due(self, *, stale_after_s: int = 30, limit: int = 500) -> list[str]:
        """Events a sweeper should (re-)enqueue: never picked up, failed and due, or lease expired."""
        now = utcnow()
        stale = now - timedelta(seconds=stale_after_s)
        with self.db.read() as s:
            return list(s.scalars(select(InboundEvent.id).where(or_(
                and_(InboundEvent.status == "received", InboundEvent.received_at <= stale),
                and_(InboundEvent.status.in_(("failed", "processing")), InboundEvent.next_attempt_at <= now),
            )).order_by(InboundEvent.received_at).limit(limit)))

    def leased(self, *, limit: int = 500) -> list[str]:
        """Events being processed under a lease that has not expired yet."""
        with self.db.read() as s:
            return list(s.scalars(select(InboundEvent.id).where(
                InboundEvent.status == "processing", InboundEvent.next_attempt_at > utcnow(),
            ).order_by(InboundEvent.received_at).limit(limit)))

    def release(self, event_ids: list[str]) -> int:
        """Give back the leases of events whose worker is gone, so they are due now; returns how many."""
        if not event_ids:
            return 0
        with self.db.session() as s:
            res = s.execute(update(InboundEvent).where(
                InboundEvent.id.in_(event_ids), InboundEvent.status == "processing",
            ).values(next_attempt_at=utcnow()))
            return rowcount(res)

    def replay(self, org_id: str | None, event_id: str) -> dict[str, Any]:
        """Put an event back to ``received`` (attempts reset) so it is processed again."""
        with self.db.session() as s:
            ev = s.get(InboundEvent, event_id)
            if ev is None or (org_id is not None and ev.org_id != org_id):
                raise NotFound(f"event {event_id} not found")
            if ev.status == "processing":
                raise BadRequest("event is being processed right now")
            ev.status, ev.attempts, ev.next_attempt_at, ev.last_error = "received", 0, None, None
            return event_to_dict(ev)

    def get(self, org_id: str | None, event_id: str) -> InboundEvent:
        with self.db.read() as s:
            ev = s.get(InboundEvent, event_id)
        if ev is None or (org_id is not None and ev.org_id != org_id):
            raise NotFound(f"event {event_id} not found")
        return ev

    def list(self, org_id: str | None, *, status: str | None = None, source_id: str | None = None,
             limit: int = 50, before: datetime | None = None) -> list[dict[str, Any]]:
        if status is not None and status not in STATUSES:
            raise BadRequest(f"status must be one of {list(STATUSES)}")
        with self.db.read() as s:
            q = select(InboundEvent)
            if org_id is not None:
                q = q.where(InboundEvent.org_id == org_id)
            if status:
                q = q.where(InboundEvent.status == status)
            if source_id:
                q = q.where(InboundEvent.source_id == source_id)
            if before:
                q = q.where(InboundEvent.received_at < before)
            return [event_to_dict(e) for e in s.scalars(q.order_by(InboundEvent.received_at.desc()).limit(limit))]

    def counts(self, org_id: str) -> dict[str, int]:
        with self.db.read() as s:
            return dict(s.execute(select(InboundEvent.status, func.count()).where(InboundEvent.org_id == org_id)
                                  .group_by(InboundEvent.status)).all())
