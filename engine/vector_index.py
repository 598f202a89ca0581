"""Milvus: a derived ANN index over memory embeddings, one collection per embedder, partition per org.

The SQL store is the truth; everything here can be rebuilt with ``memrelay reindex``.
"""

from __future__ import annotations

import threading
from typing import Any

from engine.errors import ServiceUnavailable


class VectorIndex:
    """Thin, lazily connected wrapper over pymilvus' MilvusClient."""

    def __init__(self, uri: str):
        self.uri = uri
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    from pymilvus import MilvusClient

                    try:
                        self._client = MilvusClient(uri=self.uri)
                    except Exception as exc:
                        raise ServiceUnavailable(f"Milvus unreachable at {self.uri}: {exc}") from exc
        return self._client

    def ping(self) -> dict[str, Any]:
        return {"uri": self.uri, "collections": len(self.client.list_collections())}

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
