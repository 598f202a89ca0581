"""The embedder interface and the small helpers every implementation shares."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of a fixed dimension.

    ``name`` identifies the model (stored next to every vector so a model change is detectable);
    ``embed`` returns shape ``(len(texts), dim)``. Texts with no content get a zero row.
    """

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed(self, texts: list[str]) -> np.ndarray: ...


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Return float32 rows scaled to unit length; all-zero rows stay zero (never NaN)."""
    out = np.asarray(vectors, dtype=np.float32)
    if out.ndim != 2:
        raise ValueError(f"expected a 2-D array, got shape {out.shape}")
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)


def embed_non_blank(
    texts: list[str], embed_fn: Callable[[list[str]], np.ndarray], dim_of: Callable[[], int]
) -> np.ndarray:
    """Embed only the texts with content through ``embed_fn``; blank ones get a zero row.

    ``embed_fn`` receives the non-blank texts in order and returns one row per text. ``dim_of`` is read
    after that call, so an embedder that learns its dimension from the first response can use it.
    """
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise TypeError("texts must be a list of str")
    idx = [i for i, t in enumerate(texts) if t.strip()]
    rows = l2_normalize(embed_fn([texts[i] for i in idx])) if idx else None
    dim = dim_of()
    out = np.zeros((len(texts), dim), dtype=np.float32)
    if rows is not None:
        if rows.shape != (len(idx), dim):
            raise ValueError(f"embedder returned shape {rows.shape}, expected {(len(idx), dim)}")
        out[idx] = rows
    return out


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors (0.0 when either is zero)."""
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 or nb == 0.0:
        return 0.0
    return float(np.dot(a, b) / (na * nb))


class MemoEmbedder:
    """One request's view of an embedder: each distinct text is embedded at most once.

    Memorize embeds the content's sentences for extraction and then its facts; most facts are those
    sentences verbatim, so wrapping the embedder for the request makes the second pass free."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self._memo: dict[str, np.ndarray] = {}
        self.texts_embedded = 0  # distinct texts sent to ``inner`` (observable in tests and benches)

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed(self, texts: list[str]) -> np.ndarray:
        """Rows for ``texts``; only texts this request has not embedded yet reach the inner embedder."""
        missing = [t for t in dict.fromkeys(texts) if t not in self._memo]
        if missing:
            self._memo.update(zip(missing, self.inner.embed(missing), strict=True))
            self.texts_embedded += len(missing)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._memo[t] for t in texts])


class TextVectorCache:
    """Process-wide bounded LRU of vectors for constant texts (property descriptions, option labels).

    Keyed by (embedder name, dimension, text): a schema edit changes the text and so misses, a new
    collection version with unchanged descriptions hits — no invalidation to get wrong."""

    def __init__(self, max_entries: int = 20_000) -> None:
        self.max_entries = max_entries
        self._rows: OrderedDict[tuple[str, int, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def embed(self, embedder: Embedder, texts: list[str]) -> np.ndarray:
        """Rows for ``texts`` from the cache; the misses are embedded in one call and remembered."""
        name, dim = embedder.name, embedder.dim
        with self._lock:
            missing = [t for t in dict.fromkeys(texts) if (name, dim, t) not in self._rows]
        if missing:
            fresh = embedder.embed(missing)
            with self._lock:
                for text, row in zip(missing, fresh, strict=True):
                    self._rows[(name, dim, text)] = row
                while len(self._rows) > self.max_entries:
                    self._rows.popitem(last=False)
        if not texts:
            return np.zeros((0, dim), dtype=np.float32)
        with self._lock:
            rows = []
            for t in texts:
                key = (name, dim, t)
                row = self._rows.get(key)
                if row is None:  # evicted by a concurrent caller between the two steps: embed it alone
                    row = embedder.embed([t])[0]
                else:
                    self._rows.move_to_end(key)
                rows.append(row)
        return np.stack(rows)

    def __len__(self) -> int:
        return len(self._rows)

    def clear(self) -> None:
        with self._lock:
            self._rows.clear()
