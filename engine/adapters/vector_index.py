"""Milvus: a derived ANN index over memory embeddings, one collection per embedder, partitioned by org.

The SQL store is the truth; everything here can be rebuilt with ``memrelay reindex``. Each collection has
``org_id`` as its partition key, and every search also filters on ``org_id``. Collections are created and
loaded lazily, on first use, so process start-up never waits for a long collection load.

Writes differ by backend, as measured (issue 12):

- **Milvus server**: a write is *delete by primary key, then insert*, never ``upsert``. The 2.3.5 standalone
  server (the newest on PyPI) routes upserts into partition-key collections to wrong partitions: of 100,000
  upserted vectors in 4 orgs, ~390 per org were visible to the org filter, top-10 overlap with exact search
  0.01. Delete-then-insert gave exact counts and no other org's vector, and wrote faster (100k × 256-d:
  6,500 vs 3,600 rows/s; re-writes 7,600 vs 3,900 rows/s). Nothing is flushed: the server seals segments
  itself, Bounded searches over 100k unsealed vectors took ~7 ms p50, and a flush took 3–25 s (~50 s under
  load). Ids are listed with one plain query: pymilvus' ``query_iterator`` reads stale data from a 2.3 server.
- **Milvus Lite**: ``upsert`` (correct there, and 2.5x faster than delete-then-insert for small writes).
  Searches over a growing segment are slow on Lite (~930 ms at 20k vectors), so writes ask for a
  debounced background flush; no caller waits for it.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from memrelay.engine.core.errors import ServiceUnavailable

ID_MAX = 40
TYPE_MAX = 100


def collection_name(embedder: str, dim: int) -> str:
    """``wordllama:l2_supercat_256`` + 256 → ``memories_wordllama_l2_supercat_256_d256``."""
    slug = re.sub(r"[^0-9A-Za-z]+", "_", embedder).strip("_").lower()
    return f"memories_{slug}_d{dim}"[:255]


def quote(value: str) -> str:
    """A string literal for a Milvus filter expression."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class VectorRow:
    """One memory vector as stored in the index."""

    memory_id: str
    org_id: str
    record_id: str
    entity_type: str
    vector: np.ndarray


@dataclass(frozen=True)
class Hit:
    memory_id: str
    record_id: str
    score: float


log = logging.getLogger(__name__)

GRPC_OPTIONS = {"grpc.keepalive_time_ms": 300_000, "grpc.keepalive_permit_without_calls": 0}
"""Keepalive pings of the Milvus client's channel: none while it is idle, at most one per 5 minutes (a gRPC server's
default minimum) during a call. pymilvus pings every 10 s, idle or not, and Milvus Lite's server closed such a
connection under load (GOAWAY "too_many_pings", seen in CI): the next use of the shared connection then failed
("Too many pings", UNAVAILABLE) and a memorize's index push was left for the workers' reconcile."""
FLUSH_DELAY_S = 2.0


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


@dataclass(frozen=True)
class IndexSpec:
    """The ANN index of a collection and how searches use it (inner product over unit vectors).

    ``ef`` (HNSW) is the search's candidate list: at least the limit, at least this; ``nprobe`` (IVF) the
    clusters visited. Changing the spec of an existing collection takes ``memrelay reindex``."""

    index_type: str
    build: dict[str, Any]
    ef: int | None = None
    nprobe: int | None = None

    def search_params(self, limit: int) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if self.ef is not None:
            params["ef"] = max(self.ef, limit)
        if self.nprobe is not None:
            params["nprobe"] = self.nprobe
        return {"metric_type": "IP", "params": params}


LITE_INDEX = IndexSpec("AUTOINDEX", {})
"""Milvus Lite builds a flat (exact) index whatever is asked."""
SERVER_INDEX = IndexSpec("FLAT", {})
"""Exact search within the org's partition. Measured with bench/bench_milvus_quality.py on the 2.3.5 server,
100,000 × 256 random unit vectors in 4 orgs, smallest per-org top-10 overlap with numpy's exact search:
AUTOINDEX 0.07 (indexed) / 0.3 (growing); HNSW M=16, efConstruction=200: ef 64 → 0.27, 200 → 0.53,
400 → 0.78; FLAT 1.0. Growing and not yet indexed segments are searched through the server's *interim*
index (IVF, nprobe 16: 0.3) unless ``queryNode.segcore.interimIndex.enableIndex`` is false — the setting
memrelay's server deployments need (docker-compose, tests/support/milvus_server.py)."""


class VectorIndex:
    """Thin, lazily connected wrapper over pymilvus' MilvusClient."""

    def __init__(self, uri: str, *, index: IndexSpec | None = None, on_demand: Path | None = None,
                 start_wait_s: float = 90.0):
        self.uri = uri
        self.is_lite = uri.endswith(".db")  # pymilvus' own rule for starting Milvus Lite
        # ``memrelay up`` starts its embedded Milvus Lite on demand: until it runs, writes leave memories
        # pending (``available`` is False) and a search asks for it by touching this file, then waits.
        self.on_demand = on_demand
        self.start_wait_s = start_wait_s
        self._up_until = 0.0
        self.index = index or (LITE_INDEX if self.is_lite else SERVER_INDEX)
        self._client: Any = None
        self._lock = threading.RLock()
        self._ready: set[str] = set()  # collections known to exist and be loaded
        self._flush_timers: dict[str, threading.Timer] = {}

    @property
    def client(self) -> Any:
        if self._client is None:
            with self._lock:
                self._connect()
        return self._client

    def ping(self) -> dict[str, Any]:
        if not self.available():
            return {"uri": self.uri, "state": "on demand (not started)"}
        return {"uri": self.uri, "collections": len(self.client.list_collections())}

    def available(self) -> bool:
        """Whether the index can be used now: always, unless it is an on-demand server not yet started
        (then index writes are skipped and the memories stay pending until it runs)."""
        if self.on_demand is None:
            return True
        if self._up_until > time.monotonic():
            return True
        port = urlsplit(self.uri).port
        up = port is not None and _port_open(port)
        if up:
            self._up_until = time.monotonic() + 5.0
        return up

    def request(self) -> None:
        """Ask for an on-demand server and wait until it answers (``ServiceUnavailable`` after the wait)."""
        if self.available() or self.on_demand is None:
            return
        self.on_demand.parent.mkdir(parents=True, exist_ok=True)
        self.on_demand.touch()
        log.info("asked for the on-demand Milvus server (%s)", self.on_demand)
        deadline = time.monotonic() + self.start_wait_s
        while time.monotonic() < deadline:
            if self.available():
                return
            time.sleep(0.1)
        raise ServiceUnavailable("the vector index (Milvus) is starting; try again shortly")

    # --- collections -------------------------------------------------------------------------
    def ensure_collection(self, name: str, dim: int) -> None:
        """Create the collection (org partition key, IP index over unit vectors) if needed, and load it."""
        if name in self._ready:
            return
        with self._lock:
            if name in self._ready:
                return
            client = self._connect()
            if not client.has_collection(name):
                try:
                    self._create(client, name, dim)
                except Exception:
                    if not client.has_collection(name):  # else another process created it first
                        raise
                    client.load_collection(name)
            elif str(client.get_load_state(name).get("state")) != "Loaded":
                client.load_collection(name)
            self._ready.add(name)

    def _connect(self) -> Any:
        if self._client is None:
            from pymilvus import MilvusClient

            self.request()  # any real use of an on-demand server starts it

            try:
                self._client = MilvusClient(uri=self.uri, grpc_options=GRPC_OPTIONS)
            except Exception as exc:
                raise ServiceUnavailable(f"Milvus unreachable at {self.uri}: {exc}") from exc
        return self._client

    def _create(self, client: Any, name: str, dim: int) -> None:
        from pymilvus import DataType

        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=ID_MAX)
        schema.add_field("org_id", DataType.VARCHAR, max_length=ID_MAX, is_partition_key=True)
        schema.add_field("record_id", DataType.VARCHAR, max_length=ID_MAX)
        schema.add_field("entity_type", DataType.VARCHAR, max_length=TYPE_MAX)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        index = client.prepare_index_params()
        index.add_index("vector", index_type=self.index.index_type, metric_type="IP", params=self.index.build)
        client.create_collection(name, schema=schema)
        # sync=False: Milvus Lite lacks the AllocTimestamp RPC the index-wait loop uses (the collection
        # is empty, so the index is ready at once).
        client.create_index(name, index, sync=False)
        client.load_collection(name)

    def has_collection(self, name: str) -> bool:
        return bool(self.client.has_collection(name))

    def drop_collection(self, name: str) -> None:
        with self._lock:
            self._ready.discard(name)
            client = self._connect()
            if client.has_collection(name):
                client.drop_collection(name)

    def list_collections(self) -> list[str]:
        return [c for c in self.client.list_collections() if c.startswith("memories_")]

    # --- writes ------------------------------------------------------------------------------
    def upsert(self, name: str, dim: int, rows: Sequence[VectorRow], *, flush: bool = True,
               batch_size: int = 2000) -> int:
        """Idempotently write vectors (a memory id that moved org or record moves with it).

        Never waits for a flush: ``flush`` asks for a background seal (Milvus Lite only, see the module doc);
        bulk writers pass False and call :meth:`flush` once at the end."""
        latest = {r.memory_id: r for r in rows}  # one row per id: the last write of a batch wins
        if not latest:
            return 0
        unique = list(latest.values())
        self.ensure_collection(name, dim)
        for i in range(0, len(unique), batch_size):
            part = unique[i:i + batch_size]
            vectors = np.asarray([r.vector for r in part], dtype=np.float32).tolist()
            data = [{"id": r.memory_id, "org_id": r.org_id, "record_id": r.record_id,
                     "entity_type": r.entity_type[:TYPE_MAX], "vector": v} for r, v in zip(part, vectors, strict=True)]
            if self.is_lite:
                self.client.upsert(name, data)
            else:  # see the module doc: upsert into a partition-key collection is wrong on the server
                self.client.delete(name, ids=[r.memory_id for r in part])
                self.client.insert(name, data)
        if flush:
            self.flush_soon(name)
        return len(rows)

    def flush(self, name: str) -> None:
        """Seal what was written, now (bulk and CLI paths; request paths use :meth:`flush_soon`)."""
        if self.client.has_collection(name):
            self.client.flush(name)

    def flush_soon(self, name: str, delay_s: float = FLUSH_DELAY_S) -> None:
        """Seal within ``delay_s`` in the background: one flush (hundreds of ms on Milvus Lite) serves every
        small write of that window, and request handlers never wait for it. Data is searchable meanwhile.

        A no-op on a Milvus server, which seals segments itself and searches unsealed ones fast."""
        if not self.is_lite:
            return
        with self._lock:
            if name in self._flush_timers:
                return
            timer = threading.Timer(delay_s, self._deferred_flush, args=(name,))
            timer.daemon = True
            self._flush_timers[name] = timer
        timer.start()

    def _deferred_flush(self, name: str) -> None:
        with self._lock:
            self._flush_timers.pop(name, None)
        try:
            self.flush(name)
        except Exception:  # a later write schedules another flush; reconcile and check-index cover the rest
            log.warning("deferred Milvus flush of %s failed", name, exc_info=True)

    def delete(self, name: str, memory_ids: Sequence[str], *, flush: bool = True) -> None:
        """Remove vectors by memory id (missing ids are fine); ``flush`` as in :meth:`upsert`."""
        if not memory_ids or not self.client.has_collection(name):
            return
        self.ensure_collection(name, 0)
        for i in range(0, len(memory_ids), 1000):
            self.client.delete(name, ids=list(memory_ids[i:i + 1000]))
        if flush:
            self.flush_soon(name)

    def delete_org(self, name: str, org_id: str) -> None:
        """Remove every vector of one org from a collection."""
        if not self.client.has_collection(name):
            return
        self.ensure_collection(name, 0)
        self.client.delete(name, filter=f"org_id == {quote(org_id)}")
        self.flush_soon(name)

    # --- reads -------------------------------------------------------------------------------
    def search(self, name: str, vector: np.ndarray, org_id: str, *, limit: int,
               entity_types: Sequence[str] | None = None, exclude_records: Sequence[str] = (),
               consistency: str | None = None) -> list[Hit]:
        """Approximate top ``limit`` memories of one org (filtered by org in the expression too).

        ``consistency`` (``"Strong"``: see every write acknowledged so far) defaults to the collection's
        Bounded staleness: a server search then skips the ~200 ms wait for the newest writes; callers
        re-check hits against SQL, the truth."""
        if not self.client.has_collection(name):
            return []
        self.ensure_collection(name, len(vector))
        expr = [f"org_id == {quote(org_id)}"]
        if entity_types:
            expr.append("entity_type in [" + ", ".join(quote(t) for t in entity_types) + "]")
        if exclude_records:
            expr.append("record_id not in [" + ", ".join(quote(r) for r in exclude_records) + "]")
        res = self.client.search(name, data=[np.asarray(vector, dtype=np.float32).tolist()],
                                 filter=" and ".join(expr), limit=min(max(limit, 1), 16384),
                                 output_fields=["record_id"], search_params=self.index.search_params(limit),
                                 **_consistency(consistency))
        hits: dict[str, Hit] = {}  # two concurrent re-writes of one id can briefly leave two rows
        for h in res[0] if res else []:
            hits.setdefault(str(h["id"]), Hit(str(h["id"]), h["entity"]["record_id"], float(h["distance"])))
        return list(hits.values())

    def count(self, name: str, org_id: str, *, consistency: str | None = None) -> int:
        """Vectors stored for one org (slow on big collections: used by ``check-index`` only)."""
        if not self.client.has_collection(name):
            return 0
        self.ensure_collection(name, 0)
        res = self.client.query(name, filter=f"org_id == {quote(org_id)}", output_fields=["count(*)"],
                                **_consistency(consistency))
        return int(res[0]["count(*)"]) if res else 0

    def ids(self, name: str, org_id: str, *, page: int = 10000, consistency: str | None = None) -> set[str]:
        """Every memory id stored for one org (``check-index``)."""
        if not self.client.has_collection(name):
            return set()
        self.ensure_collection(name, 0)
        expr = f"org_id == {quote(org_id)}"
        if not self.is_lite:
            # One unpaged query: pymilvus' query_iterator pins a client-side timestamp that a 2.3 server
            # reads as stale (writes of the last seconds were missing, even with Strong consistency).
            res = self.client.query(name, filter=expr, output_fields=["id"], **_consistency(consistency))
            return {str(r["id"]) for r in res}
        out: set[str] = set()
        it = self.client.query_iterator(name, filter=expr, output_fields=["id"],
                                        batch_size=page, **_consistency(consistency))
        try:
            while batch := it.next():
                out.update(str(r["id"]) for r in batch)
        finally:
            it.close()
        return out

    def close(self) -> None:
        with self._lock:
            timers, self._flush_timers = self._flush_timers, {}
        for name, timer in timers.items():  # seal pending writes before disconnecting
            timer.cancel()
            try:
                self.flush(name)
            except Exception:
                log.warning("final Milvus flush of %s failed", name, exc_info=True)
        if self._client is not None:
            self._client.close()
            self._client = None
            self._ready.clear()


def _consistency(level: str | None) -> dict[str, str]:
    return {"consistency_level": level} if level else {}


def to_blob(vector: np.ndarray) -> bytes:
    """A float32 vector as stored in SQL (``Memory.embedding``)."""
    return np.asarray(vector, dtype=np.float32).tobytes()


def from_blobs(blobs: Sequence[bytes | None], dim: int) -> np.ndarray:
    """Stack stored embeddings into a ``(n, dim)`` float32 matrix (missing or wrong-sized rows are zero)."""
    size = dim * 4
    if all(blob is not None and len(blob) == size for blob in blobs):  # the usual case: one join, no per-row copy
        joined = bytearray(b"".join(blob for blob in blobs if blob is not None))
        return np.frombuffer(joined, dtype=np.float32).reshape(len(blobs), dim)
    out = np.zeros((len(blobs), dim), dtype=np.float32)
    for i, blob in enumerate(blobs):
        if blob is not None and len(blob) == size:
            out[i] = np.frombuffer(blob, dtype=np.float32)
    return out
