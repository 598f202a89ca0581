"""Org-wide recall from a shared, memory-mapped snapshot (issue 16 item 3): built once from SQL, mapped by
every process (a second process answers from the file without rebuilding it), equal to exact brute force,
and current after writes (new memories via the delta; the workers' round rebuilds a due snapshot and
publishes the new version atomically, off the request path)."""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import insert, select, update

from memrelay.composition import Services
from memrelay.engine.adapters.vector_index import from_blobs, to_blob
from memrelay.engine.core.settings import Settings
from memrelay.engine.core.util import as_aware, new_id
from memrelay.engine.memory import org_vectors
from memrelay.engine.memory.memories import MemorizeRequest
from memrelay.engine.memory.org_vectors import INLINE_REBUILD_FACTOR, ExactOrgIndex, SnapshotStore
from memrelay.engine.memory.recall import RecallRequest
from memrelay.engine.stores.db.models import Memory
from memrelay.worker.sweeper import rebuild_org_snapshots

TOPICS = ["They run PostgreSQL on AWS", "Lunch was pizza with the team", "The SOC 2 audit is due in May",
          "They are hiring two engineers", "They upgraded Kubernetes last week", "The pricing page confuses buyers",
          "Churn went up in Q3", "The Berlin office opened in June", "They migrate to Salesforce",
          "Legal handles GDPR requests"]


def _seed(engine: Services, org: str, n: int, start: int = 0) -> list[str]:
    ids: list[str] = []
    for i in range(start, start + n):
        kind = "company" if i % 3 == 0 else "contact"
        ids += engine.memories.memorize(org, MemorizeRequest(
            content=f"{TOPICS[i % len(TOPICS)]} (account {i}).",
            email=None if kind == "company" else f"p{i}@snap.io",
            website_url=f"https://c{i}.snap.io" if kind == "company" else None, type=kind))["memoryIds"]
    return ids


def _brute_force(engine: Services, org: str, q: np.ndarray, k: int, types: list[str] | None = None, *,
                 current: bool = False) -> list[str]:
    """The exact top ``k`` of the org's memories (``current``: those not superseded)."""
    emb = engine.embedder
    with engine.db.read() as s:
        rows = s.execute(select(Memory.id, Memory.embedding, Memory.entity_type, Memory.superseded_by).where(
            Memory.org_id == org, Memory.deleted_at.is_(None))).all()
    rows = [r for r in rows if (types is None or r.entity_type in types) and not (current and r.superseded_by)]
    sims = from_blobs([r.embedding for r in rows], emb.dim) @ q
    return [rows[i].id for i in np.argsort(-sims, kind="stable")[:k]]


def test_snapshot_search_equals_brute_force_and_follows_writes(backend: str, engine: Services,
                                                              tmp_path: Path) -> None:
    org = engine.tenancy.create_org("snap-org").id
    _seed(engine, org, 40)
    emb = engine.embedder
    idx = ExactOrgIndex(snapshot_dir=tmp_path, refresh_s=0.0, rebuild_after=5)
    for query in ("which database do they run", "audit and compliance", "office location"):
        q = emb.embed([query])[0]
        with engine.db.read() as s:
            assert idx.search(s, org, q, limit=10, embedder=emb.name, dim=emb.dim) == _brute_force(engine, org, q, 10)
            assert idx.search(s, org, q, limit=10, embedder=emb.name, dim=emb.dim, entity_types=["company"]) == \
                _brute_force(engine, org, q, 10, ["company"])
    store = SnapshotStore(tmp_path, org, emb.name, emb.dim)
    assert store.current_version() == 1 and len(store.load().ids) == 40  # type: ignore[union-attr]
    state = idx._orgs[(org, emb.name, emb.dim)]
    # the 40 rows were stamped within the overlap window before the build, but the snapshot holds them as they
    # are (same stamps): no vector of theirs is read again into the delta
    assert state.delta == {} and len(state.delta_stamps) == 40

    # a new memory is found at once (the delta), before any rebuild
    new = _seed(engine, org, 1, start=100)
    q = emb.embed(["They run PostgreSQL on AWS (account 100)."])[0]
    with engine.db.read() as s:
        got = idx.search(s, org, q, limit=5, embedder=emb.name, dim=emb.dim)
    assert got[0] == new[0] and got == _brute_force(engine, org, q, 5)
    assert list(state.delta) == new
    # a snapshot row changed since the build (deleted) is read again: it leaves the results
    gone = got[1]
    engine.memories.delete(org, [gone])
    with engine.db.read() as s:
        got = idx.search(s, org, q, limit=5, embedder=emb.name, dim=emb.dim)
    assert gone not in got and got == _brute_force(engine, org, q, 5) and gone in state.delta
    assert store.current_version() == 1

    # past rebuild_after new rows the snapshot is due, but queries do not rebuild it: they answer exactly from
    # version 1 and the delta until the workers' round (rebuild_due) publishes version 2, which they then map
    _seed(engine, org, 6, start=200)
    with engine.db.read() as s:
        assert idx.search(s, org, q, limit=10, embedder=emb.name, dim=emb.dim) == _brute_force(engine, org, q, 10)
    assert store.current_version() == 1
    with engine.db.read() as s:
        assert idx.rebuild_due(s) == [org]
        assert idx.rebuild_due(s) == []  # nothing new since: not due again
    assert store.current_version() == 2 and len(store.load().ids) == 46  # type: ignore[union-attr]
    with engine.db.read() as s:
        assert idx.search(s, org, q, limit=10, embedder=emb.name, dim=emb.dim) == _brute_force(engine, org, q, 10)
    assert idx._orgs[(org, emb.name, emb.dim)].snapshot.version == 2  # type: ignore[union-attr]
    other = ExactOrgIndex(snapshot_dir=tmp_path, refresh_s=0.0)
    with engine.db.read() as s:
        assert other.search(s, org, q, limit=10, embedder=emb.name, dim=emb.dim) == _brute_force(engine, org, q, 10)
    assert store.current_version() == 2

    # with no worker rebuilding, a delta INLINE_REBUILD_FACTOR times past due is rebuilt by the query itself
    _seed(engine, org, 5 * INLINE_REBUILD_FACTOR + 1, start=300)
    with engine.db.read() as s:
        assert idx.search(s, org, q, limit=10, embedder=emb.name, dim=emb.dim) == _brute_force(engine, org, q, 10)
    assert store.current_version() == 3 and len(store.load().ids) == 46 + 5 * INLINE_REBUILD_FACTOR + 1  # type: ignore[union-attr]


def test_the_workers_round_rebuilds_due_snapshots_and_skips_one_being_built(engine: Services) -> None:
    org, quiet = engine.tenancy.create_org("snap-round").id, engine.tenancy.create_org("snap-quiet").id
    for o in (org, quiet):
        _seed(engine, o, 8)
        engine.recall.smart_recall(o, RecallRequest(query="which database do they run", limit=3))  # builds v1
    emb, exact = engine.embedder, engine.recall.exact
    stores = {o: SnapshotStore(exact.snapshot_dir, o, emb.name, emb.dim) for o in (org, quiet)}  # type: ignore[arg-type]
    assert {o: st.current_version() for o, st in stores.items()} == {org: 1, quiet: 1}
    _seed(engine, org, 1, start=50)
    exact.max_age_s = 0.0  # any change makes a snapshot due (the default waits for max(2000, n / 20) rows)

    with open(stores[org].dir / "lock", "a+") as lock:  # another process is building org's snapshot
        fcntl.flock(lock, fcntl.LOCK_EX)
        assert rebuild_org_snapshots(engine) == []
        fcntl.flock(lock, fcntl.LOCK_UN)
    assert rebuild_org_snapshots(engine) == [org]  # the quiet org has nothing new: left as it is
    assert {o: st.current_version() for o, st in stores.items()} == {org: 2, quiet: 1}
    assert len(stores[org].load().ids) == 9  # type: ignore[union-attr]


def test_deleted_memories_leave_org_wide_recall(engine: Services) -> None:
    org = engine.tenancy.create_org("snap-del").id
    ids = _seed(engine, org, 12)
    req = RecallRequest(query="Lunch was pizza with the team (account 1).", limit=3)
    first = engine.recall.smart_recall(org, req)["results"][0]["memoryId"]
    assert first in ids
    engine.memories.delete(org, [first])
    after = [r["memoryId"] for r in engine.recall.smart_recall(org, req)["results"]]
    assert first not in after and len(after) == 3


def test_the_look_back_window_is_read_once_and_every_change_in_it_is_seen(
        backend: str, engine: Services, tmp_path: Path) -> None:
    """Each look at the window checks its stamp sums (count, seconds, microseconds) in SQL and reads only the rows
    stamped after its newest: a new row is read alone; a late commit stamped inside the window, a late edit of a row
    inside it (same count: only a sum tells) and a row stamped anew each make the window be read afresh, and every
    one is seen. A window whose lower bound would lag the needed one by more than WINDOW_STRETCH_S is read afresh."""
    org = engine.tenancy.create_org("snap-window").id
    seeded = _seed(engine, org, 20)
    emb = engine.embedder
    idx = ExactOrgIndex(snapshot_dir=tmp_path, refresh_s=0.0, rebuild_after=10_000)
    search = _checked_search(engine, org, idx)

    search("which database do they run")  # builds the snapshot, reads its last 30 s back
    state = idx._orgs[(org, emb.name, emb.dim)]
    assert state.rows_read == 20 and state.window_rows == 20
    for text in ("audit and compliance", "office location"):
        search(text)
        assert state.rows_read == 0  # unchanged: summed, nothing read back

    new = _seed(engine, org, 1, start=100)  # a new row: read alone
    assert search("They run PostgreSQL on AWS (account 100).")[0] == new[0]
    assert state.rows_read == 1 and state.window_rows == 21
    assert state.seen_until is not None
    # a late commit: a row stamped inside the window, before the newest stamp already seen
    late = _late_row(engine, org, "The Lisbon office opened in March (account 900).",
                     as_aware(state.seen_until) - timedelta(seconds=5))
    assert search("The Lisbon office opened in March (account 900).")[0] == late
    assert state.rows_read == 22  # read afresh
    search("anything else")
    assert state.rows_read == 0
    # a late-committed edit: an older row's vector changed, stamped inside the window below the newest stamp (the
    # count stays the same: only the sums tell)
    edited = seeded[3]
    text = "The Porto warehouse ships spare parts overnight (account 901)."
    with engine.db.session() as s:
        s.execute(update(Memory).where(Memory.id == edited).values(
            text=text, embedding=to_blob(emb.embed([text])[0]),
            updated_at=as_aware(state.seen_until) - timedelta(seconds=2)))
    assert search(text)[0] == edited
    assert state.rows_read == 22
    # a row stamped anew (deleted): it leaves the window's range, which is read afresh, and the results
    gone = search("They run PostgreSQL on AWS (account 100).")[0]
    engine.memories.delete(org, [gone])
    assert gone not in search("They run PostgreSQL on AWS (account 100).")
    assert state.rows_read == 22
    # a row stamped past the stretch: the lower bound needed then is more than WINDOW_STRETCH_S after the window's
    lower = state.window.lower if state.window is not None else None
    assert lower is not None and state.seen_until is not None
    ahead = as_aware(state.seen_until) + timedelta(seconds=org_vectors.LOOKBACK_S + org_vectors.WINDOW_STRETCH_S + 5)
    far = _late_row(engine, org, "The Oslo team runs Kafka on premises (account 902).", ahead)
    assert search("The Oslo team runs Kafka on premises (account 902).")[0] == far
    assert state.rows_read == 1  # read as a new row; the window kept its bound
    search("anything at all")  # now the bound moves up: the window is read afresh from there (only that row)
    assert state.window is not None and state.window.lower > lower and state.rows_read == state.window_rows == 1


def test_the_window_sums_taken_in_sql_equal_those_of_the_stamps_read(backend: str, engine: Services) -> None:
    """window_sums (SQL) and stamp_sums (of the stamps read back) agree exactly, also for stamps SQLite's millisecond
    clock rounds up to the next second (.9997 s), so an unchanged window is never read again."""
    org = engine.tenancy.create_org("snap-sums").id
    _seed(engine, org, 1)
    base = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
    for i, micro in enumerate((999_700, 999_499, 500_000, 400, 0, 123_456)):
        _late_row(engine, org, f"Stamp {i}.", base + timedelta(seconds=i, microseconds=micro))
    lower, upper = base - timedelta(seconds=1), base + timedelta(seconds=10)
    with engine.db.read() as s:
        stamps = list(s.scalars(select(Memory.updated_at).where(
            Memory.org_id == org, Memory.updated_at > lower, Memory.updated_at <= upper)))
        assert len(stamps) == 6
        assert org_vectors.window_sums(s, org, lower, upper) == org_vectors.stamp_sums(stamps, backend_dialect(s))
        # one stamp moved by a whole second (same microseconds, same count): the sums differ
        assert org_vectors.stamp_sums(stamps[:-1] + [stamps[-1] + timedelta(seconds=1)], backend_dialect(s)) != \
            org_vectors.stamp_sums(stamps, backend_dialect(s))


def backend_dialect(s: Any) -> str:
    return str(s.get_bind().dialect.name)


def test_rows_appended_to_the_views_equal_the_views_rebuilt(backend: str, engine: Services, tmp_path: Path) -> None:
    """New rows read one look at a time are appended to the query views (matrix, ids, types, flags, hidden rows,
    the count of rows new since the snapshot); the result equals deriving the views from the whole delta."""
    org = engine.tenancy.create_org("snap-append").id
    _seed(engine, org, 8)
    emb = engine.embedder
    idx = ExactOrgIndex(snapshot_dir=tmp_path, refresh_s=0.0, rebuild_after=10_000)
    search = _checked_search(engine, org, idx)
    search("which database do they run")
    state = idx._orgs[(org, emb.name, emb.dim)]
    for i in range(4):  # each look reads one new row and appends it
        new = _seed(engine, org, 1, start=200 + i)
        assert new[0] in search(f"{TOPICS[(200 + i) % len(TOPICS)]} (account {200 + i}).")
        assert state.rows_read == 1
    engine.memories.delete(org, [new[0]])  # a delta row changed: the views are rebuilt, and it is gone
    assert new[0] not in search(f"{TOPICS[203 % len(TOPICS)]} (account 203).")
    assert state.rows_read == state.window_rows == 12  # a row stamped anew: the window read afresh

    def views() -> tuple[Any, ...]:
        order = np.argsort(np.array(state.delta_ids))
        assert state.delta_matrix is not None and state.delta_superseded is not None and state.hidden is not None
        return (sorted(state.delta_ids), [state.delta_types[i] for i in order], state.delta_matrix[order].tolist(),
                state.delta_superseded[order].tolist(), state.hidden.tolist(), state.fresh)

    appended = views()
    assert len(appended[0]) == 3 and appended[5] == 4  # three live new rows; four stamped after the snapshot
    state.rebuild_views()
    assert views() == appended


def test_an_org_that_stopped_writing_is_not_read_back_its_last_writes_at_every_query(
        backend: str, engine: Services, tmp_path: Path, monkeypatch: Any) -> None:
    """Rows stamped within the look-back window are checked at every query (a transaction stamped earlier may still
    commit); once every stamp known is older than the window (nothing can still commit below it), the window starts
    at the newest stamp and its rows' stamps are no longer kept; a new memory is still found."""
    org = engine.tenancy.create_org("snap-settled").id
    _seed(engine, org, 12)
    emb = engine.embedder
    idx = ExactOrgIndex(snapshot_dir=tmp_path, refresh_s=0.0, rebuild_after=10_000)

    search = _checked_search(engine, org, idx)

    search("which database do they run")  # builds the snapshot; its last 30 s are read back
    state = idx._orgs[(org, emb.name, emb.dim)]
    assert state.rows_read == 12
    search("audit and compliance")
    assert state.rows_read == 0 and state.window_rows == 12 and state.settled is None
    assert len(state.delta_stamps) == 12 and not state.delta  # the snapshot holds them as they are
    real = org_vectors.utcnow
    monkeypatch.setattr(org_vectors, "utcnow", lambda: real() + timedelta(seconds=org_vectors.LOOKBACK_S + 1))
    search("office location")  # a minute later: now settled
    assert state.settled is not None
    assert state.delta_stamps == {}  # no window reads them again: their stamps are not kept
    search("hiring plans")
    assert state.rows_read == 0
    new = _seed(engine, org, 1, start=100)
    assert search("They run PostgreSQL on AWS (account 100).")[0] == new[0]
    assert state.rows_read == 1 and list(state.delta_stamps) == new[:1] == list(state.delta)


def test_a_search_for_current_facts_leaves_superseded_memories_out(backend: str, engine: Services,
                                                                   tmp_path: Path) -> None:
    """Memories superseded when the snapshot was built, and those superseded since (read into the delta), are not
    candidates of a search for current facts (recall's SQL re-check would drop them, after fetching several times
    as many); with ``include_superseded`` every memory is, as before. The flags are part of the snapshot's files:
    another process mapping them leaves out the same memories."""
    org = engine.tenancy.create_org("snap-superseded").id
    old_ts, new_ts = datetime(2025, 1, 10, tzinfo=UTC), datetime(2026, 1, 10, tzinfo=UTC)

    def note(i: int, text: str, ts: datetime) -> dict[str, Any]:
        return engine.memories.memorize(org, MemorizeRequest(content=text, email=f"lead{i}@ledger.io", type="contact",
                                                             timestamp=ts))

    for i in range(7):
        note(i, f"Ledger {i} runs its core ledger on Oracle.", old_ts)
        if i < 6:
            note(i, f"Ledger {i} migrated from Oracle to PostgreSQL last quarter.", new_ts)
    _seed(engine, org, 10)
    emb = engine.embedder
    q = emb.embed(["Which database does the ledger run on?"])[0]

    def search(idx: ExactOrgIndex, *, current: bool) -> list[str]:
        with engine.db.read() as s:
            got = idx.search(s, org, q, limit=8, embedder=emb.name, dim=emb.dim, include_superseded=not current)
        assert got == _brute_force(engine, org, q, 8, current=current)
        return list(got or [])

    with engine.db.read() as s:
        superseded = set(s.scalars(select(Memory.id).where(Memory.org_id == org, Memory.superseded_by.is_not(None))))
    assert len(superseded) == 6
    idx = ExactOrgIndex(snapshot_dir=tmp_path, refresh_s=0.0, rebuild_after=10_000)
    assert not superseded & set(search(idx, current=True))
    assert superseded & set(search(idx, current=False))
    other = ExactOrgIndex(snapshot_dir=tmp_path, refresh_s=0.0, rebuild_after=10_000)  # maps the same files
    assert not superseded & set(search(other, current=True))
    newer = note(6, "Ledger 6 migrated from Oracle to PostgreSQL last quarter.", new_ts)
    assert len(newer["superseded"]) == 1  # superseded after the snapshot: the delta carries the flag
    assert newer["superseded"][0] not in search(idx, current=True)
    assert newer["memoryIds"][0] in search(idx, current=True)

def _checked_search(engine: Services, org: str, idx: ExactOrgIndex) -> Any:
    """A top-5 org-wide search through ``idx``, checked against exact brute force."""
    emb = engine.embedder

    def search(text: str) -> list[str]:
        q = emb.embed([text])[0]
        with engine.db.read() as s:
            got = idx.search(s, org, q, limit=5, embedder=emb.name, dim=emb.dim)
        assert got == _brute_force(engine, org, q, 5)
        return list(got or [])

    return search


def _late_row(engine: Services, org: str, text: str, stamp: datetime) -> str:
    """A memory of an existing record written with an older stamp, as a transaction that commits late does."""
    emb = engine.embedder
    with engine.db.session() as s:
        rec = s.scalar(select(Memory.record_id).where(Memory.org_id == org).limit(1))
        mid = new_id("mem")
        s.execute(insert(Memory), [{"id": mid, "org_id": org, "record_id": rec, "entity_type": "contact", "text": text,
                                    "tags": [], "source": "test", "ts": stamp, "created_at": stamp,
                                    "updated_at": stamp, "embedding": to_blob(emb.embed([text])[0]),
                                    "embedder": emb.name, "seen_count": 1, "provenance": [],
                                    "index_state": "pending"}])
    return mid


PROBE = textwrap.dedent("""
    import json, sys
    import numpy as np
    from memrelay.composition import Services
    from memrelay.engine.core.settings import Settings
    from memrelay.engine.memory.recall import RecallRequest

    settings = Settings.model_validate_json(sys.argv[1])
    services = Services(settings)
    out = services.recall.smart_recall(sys.argv[2], RecallRequest(query=sys.argv[3], limit=10))
    maps = open("/proc/self/maps").read()
    print(json.dumps({"ids": [r["memoryId"] for r in out["results"]], "scope": out["scope"],
                      "mapped": [line.split()[-1] for line in maps.splitlines() if line.endswith(".npy")]}))
""")


def test_a_second_process_answers_from_the_mapped_file(engine: Services, settings: Settings) -> None:
    org = engine.tenancy.create_org("snap-proc").id
    _seed(engine, org, 30)
    query = "which database do they run"
    here = [r["memoryId"] for r in engine.recall.smart_recall(org, RecallRequest(query=query, limit=10))["results"]]
    emb = engine.embedder
    store = SnapshotStore(settings.data_dir / "org_vectors", org, emb.name, emb.dim)
    assert store.current_version() == 1  # built by this process's first org-wide recall

    out = subprocess.run([sys.executable, "-c", PROBE, settings.model_dump_json(), org, query],
                         capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[2])
    assert out.returncode == 0, out.stderr
    got: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["scope"] == "org" and got["ids"] == here
    assert str(store.dir / "v1.vectors.npy") in got["mapped"]  # the matrix is the shared file, mapped
    assert store.current_version() == 1  # and the second process did not rebuild it


def test_a_recall_that_widens_its_fetch_brings_the_index_up_to_date_once(engine: Services, monkeypatch) -> None:
    org = engine.tenancy.create_org("widen-org").id
    _seed(engine, org, 60)
    exact = engine.recall.exact
    reads: list[bool] = []
    real_refresh = exact._refresh_delta

    def refresh(*a: Any, **k: Any) -> None:  # the real refresh, counted
        reads.append(True)
        real_refresh(*a, **k)

    monkeypatch.setattr(exact, "_refresh_delta", refresh)
    searches: list[bool] = []
    real_search = exact.search

    def search(*a: Any, **k: Any) -> Any:
        searches.append(k.get("refresh", True))
        return real_search(*a, **k)

    monkeypatch.setattr(exact, "search", search)
    # no candidate passes a minimum score this high: the recall widens its fetch (26, then 104 > 60 memories)
    out = engine.recall.smart_recall(org, RecallRequest(query="Which database do they run?", limit=2, minScore=0.99))
    assert out["results"] == [] and searches == [True, False]
    assert len(reads) == 1  # the state was brought up to date by the first search only


def test_the_exact_search_limit_setting_defaults_to_the_index_default(settings: Settings) -> None:
    assert Settings.model_fields["exact_search_max_rows"].default == org_vectors.DEFAULT_MAX_ROWS
    services = Services(settings.model_copy(update={"exact_search_max_rows": 7}))
    assert services.recall.exact.max_rows == 7 and services.similarity.exact is services.recall.exact
    services.close()
