"""The embedder interface and the small helpers every implementation shares."""

from __future__ import annotations

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
