"""A command on the data dir of a running `memrelay up` whose Milvus Lite is deferred asks that supervisor for it
(the wanted file) and uses its port, instead of starting a second server on the locked data dir."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

from memrelay.engine.core.settings import Settings
from memrelay.supervise.supervisor import ON_DEMAND_MARKER, ensure_embedded_services
from tests.support.processes import free_port


def _listen_when_wanted(data_dir: Path, port: int, stop: threading.Event) -> None:
    """Plays the supervisor: once the wanted file appears, something answers on the reserved port."""
    while not (data_dir / "milvus.wanted").exists():
        if stop.wait(0.05):
            return
    with socket.socket() as srv:
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", port))
        srv.listen()
        stop.wait(10)


def test_a_cli_command_asks_the_running_up_for_its_deferred_milvus(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    port = free_port()
    (data / "milvus.port").write_text(str(port))
    (data / ON_DEMAND_MARKER).write_text(f"{os.getpid()} {port}")  # a live supervisor deferring Milvus on it
    stop = threading.Event()
    thread = threading.Thread(target=_listen_when_wanted, args=(data, port, stop), daemon=True)
    thread.start()
    try:
        t0 = time.monotonic()
        services = ensure_embedded_services(Settings(data_dir=data, redis_url="redis://127.0.0.1:1"))
        assert services.env["MEMRELAY_MILVUS_URI"] == f"http://127.0.0.1:{port}"
        assert services.milvus is None  # no second Milvus Lite on the same data dir
        assert time.monotonic() - t0 < 30
    finally:
        stop.set()
        thread.join(5)


def test_a_stale_marker_is_ignored(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    port = free_port()
    (data / "milvus.port").write_text(str(port))
    (data / ON_DEMAND_MARKER).write_text(f"999999999 {port}")  # no such process: `up` is gone
    services = ensure_embedded_services(Settings(data_dir=data, redis_url="redis://127.0.0.1:1"), lazy_milvus=True)
    try:
        assert services.milvus is None and services.deferred_milvus is not None  # lazy again, a fresh reservation
        assert not (data / "milvus.wanted").exists()
    finally:
        services.stop()
    assert not (data / ON_DEMAND_MARKER).exists()
