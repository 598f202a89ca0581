"""Milvus: a derived ANN index over memory embeddings, one collection per embedder, partitioned by org.

The SQL store is the truth; everything here can be rebuilt with ``memrelay reindex``. Each collection has
``org_id`` as its partition key, and every search also filters on ``org_id``. Collections are created and
loaded lazily, on first use, so process start-up never waits for a long collection load.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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
FLUSH_DELAY_S = 2.0


class VectorIndex:
    """Thin, lazily connected wrapper over pymilvus' MilvusClient."""

    def __init__(self, uri: str):
        self.uri = uri
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
        return {"uri": self.uri, "collections": len(self.client.list_collections())}

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
                self._create(client, name, dim)
            elif str(client.get_load_state(name).get("state")) != "Loaded":
                client.load_collection(name)
            self._ready.add(name)

    def _connect(self) -> Any:
        if self._client is None:
            from pymilvus import MilvusClient

            try:
                self._client = MilvusClient(uri=self.uri)
            except Exception as exc:
                raise ServiceUnavailable(f"Milvus unreachable at {self.uri}: {exc}") from exc
        return self._client

    @staticmethod
    def _create(client: Any, name: str, dim: int) -> None:
        from pymilvus import DataType

        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=ID_MAX)
        schema.add_field("org_id", DataType.VARCHAR, max_length=ID_MAX, is_partition_key=True)
        schema.add_field("record_id", DataType.VARCHAR, max_length=ID_MAX)
        schema.add_field("entity_type", DataType.VARCHAR, max_length=TYPE_MAX)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        index = client.prepare_index_params()
        index.add_index("vector", index_type="AUTOINDEX", metric_type="IP")
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
        """Idempotently write vectors; ``flush`` seals them so searches avoid the slow growing segment."""
        if not rows:
            return 0
        self.ensure_collection(name, dim)
        for i in range(0, len(rows), batch_size):
            part = rows[i:i + batch_size]
            vectors = np.asarray([r.vector for r in part], dtype=np.float32).tolist()
            self.client.upsert(name, [{"id": r.memory_id, "org_id": r.org_id, "record_id": r.record_id,
                                       "entity_type": r.entity_type[:TYPE_MAX], "vector": v}
                                      for r, v in zip(part, vectors, strict=True)])
        if flush:
            self.client.flush(name)
        return len(rows)

    def flush(self, name: str) -> None:
        """Seal what was written so searches avoid the slow growing-segment path."""
        if self.client.has_collection(name):
            self.client.flush(name)

    def flush_soon(self, name: str, delay_s: float = FLUSH_DELAY_S) -> None:
        """Seal within ``delay_s`` in the background: one flush (hundreds of ms on Milvus Lite) serves every
        small write of that window, and request handlers never wait for it. Data is searchable meanwhile."""
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
        """Remove vectors by memory id (missing ids are fine)."""
        if not memory_ids or not self.client.has_collection(name):
            return
        self.ensure_collection(name, 0)
        for i in range(0, len(memory_ids), 1000):
            self.client.delete(name, ids=list(memory_ids[i:i + 1000]))
        if flush:
            self.client.flush(name)

    def delete_org(self, name: str, org_id: str) -> None:
        """Remove every vector of one org from a collection."""
        if not self.client.has_collection(name):
            return
        self.ensure_collection(name, 0)
        self.client.delete(name, filter=f"org_id == {quote(org_id)}")
        self.client.flush(name)

    # --- reads -------------------------------------------------------------------------------
    def search(self, name: str, vector: np.ndarray, org_id: str, *, limit: int,
               entity_types: Sequence[str] | None = None, exclude_records: Sequence[str] = ()) -> list[Hit]:
        """Approximate top ``limit`` memories of one org (filtered by org in the expression too)."""
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
                                 output_fields=["record_id"])
        return [Hit(str(h["id"]), h["entity"]["record_id"], float(h["distance"])) for h in (res[0] if res else [])]

    def count(self, name: str, org_id: str) -> int:
        """Vectors stored for one org (slow on big collections: used by ``check-index`` only)."""
        if not self.client.has_collection(name):
            return 0
        self.ensure_collection(name, 0)
        res = self.client.query(name, filter=f"org_id == {quote(org_id)}", output_fields=["count(*)"])
        return int(res[0]["count(*)"]) if res else 0

    def ids(self, name: str, org_id: str, *, page: int = 10000) -> set[str]:
        """Every memory id stored for one org (``check-index``)."""
        if not self.client.has_collection(name):
            return set()
        self.ensure_collection(name, 0)
        out: set[str] = set()
        it = self.client.query_iterator(name, filter=f"org_id == {quote(org_id)}", output_fields=["id"],
                                        batch_size=page)
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


def to_blob(vector: np.ndarray) -> bytes:
    """A float32 vector as stored in SQL (``Memory.embedding``)."""
    return np.asarray(vector, dtype=np.float32).tobytes()


def from_blobs(blobs: Sequence[bytes | None], dim: int) -> np.ndarray:
    """Stack stored embeddings into a ``(n, dim)`` float32 matrix (missing or wrong-sized rows are zero)."""
    out = np.zeros((len(blobs), dim), dtype=np.float32)
    for i, blob in enumerate(blobs):
        if blob is not None and len(blob) == dim * 4:
            out[i] = np.frombuffer(blob, dtype=np.float32)
    return out
