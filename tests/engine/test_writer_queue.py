"""SQLite writers queue on one lock across processes (engine/stores/db/database.WriterQueue)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from memrelay.engine.stores.db.database import Database, WriterQueue


def _held_elsewhere(lock_path: str) -> bool:
    """Whether another open file description holds the flock (tried from a fresh descriptor)."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def test_a_write_session_holds_the_cross_process_lock_until_it_ends(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    lock = f"{tmp_path / 'm.db'}.writelock"
    with db.session():
        assert _held_elsewhere(lock)
        with db.session():  # re-entrant in one thread (a nested session joins, it does not deadlock)
            assert _held_elsewhere(lock)
        assert _held_elsewhere(lock)  # the inner exit does not release the outer hold
    assert not _held_elsewhere(lock)
    with db.read():  # readers never queue
        assert not _held_elsewhere(lock)


def test_a_forked_child_queues_behind_its_parent(tmp_path: Path) -> None:
    queue = WriterQueue(str(tmp_path / "f.db"))
    with queue:
        pass  # the parent has opened its descriptor
    r, w = os.pipe()
    with queue:
        pid = os.fork()
        if pid == 0:  # child: its own descriptor, so the parent's hold excludes it
            os.close(r)
            fd = queue._descriptor()  # a new pid: a descriptor of its own, not the parent's inherited one
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.write(w, b"got")
            except BlockingIOError:
                os.write(w, b"blocked")
            os._exit(0)
        os.close(w)
        answer = os.read(r, 16)
        os.waitpid(pid, 0)
    assert answer == b"blocked"


def test_an_in_memory_database_needs_no_lock_file(tmp_path: Path) -> None:
    queue = WriterQueue(":memory:")
    with queue, queue:
        pass
    assert not list(tmp_path.iterdir())
