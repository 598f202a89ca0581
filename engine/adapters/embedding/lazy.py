"""An embedder that builds the real one on first use, so a process starts without loading a model."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

from memrelay.engine.core.embedder import Embedder


class LazyEmbedder:
    """Satisfies :class:`~memrelay.engine.core.embedder.Embedder`; ``build`` runs once, on the first
    ``name``, ``dim`` or ``embed`` (thread-safe). Services hold this object from construction on."""

    def __init__(self, build: Callable[[], Embedder]):
        self._build = build
        self._real: Embedder | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        """Whether the real embedder has been built yet."""
        return self._real is not None

    def get(self) -> Embedder:
        """The real embedder (built now if needed)."""
        if self._real is None:
            with self._lock:
                if self._real is None:
                    self._real = self._build()
        return self._real

    @property
    def name(self) -> str:
        return self.get().name

    @property
    def dim(self) -> int:
        return self.get().dim

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.get().embed(texts)
