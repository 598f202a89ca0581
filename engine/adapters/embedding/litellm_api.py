"""Embeddings from any litellm-supported API (OpenAI, Azure, Ollama, an OpenAI-compatible server...)."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from memrelay.engine.core.embedder import embed_non_blank
from memrelay.engine.core.errors import ConfigError, UpstreamError

BATCH_SIZE = 256


def _litellm() -> Any:
    # Imported lazily (litellm takes seconds to import) and only through the runtime module that
    # configures it to stay offline and quiet.
    from memrelay.engine.adapters.llm.runtime import litellm

    return litellm


class LiteLLMEmbedder:
    """Calls ``litellm.embedding``; the dimension is configured or learnt from the first response."""

    def __init__(
        self,
        model: str,
        *,
        api_base: str | None = None,
        api_key: str | None = None,
        dim: int | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        if not model:
            raise ConfigError("litellm embedder needs a model, e.g. litellm:openai/text-embedding-3-small")
        if dim is not None and dim <= 0:
            raise ConfigError("embedding dimension must be positive", details={"dim": dim})
        self.model = model
        self.name = f"litellm:{model}"
        self._api_base = api_base
        self._api_key = api_key
        self._timeout_s = timeout_s
        self._dim = dim
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        """Vector size; probes the API once when it was not configured and nothing was embedded yet."""
        if self._dim is None:
            self._request(["dimension probe"])
        assert self._dim is not None
        return self._dim

    def embed(self, texts: list[str]) -> np.ndarray:
        """Embed texts in batches; rows are unit length, blank texts give zero rows (and are not sent)."""
        return embed_non_blank(texts, self._embed_batches, lambda: self.dim)

    def _embed_batches(self, texts: list[str]) -> np.ndarray:
        return np.vstack([self._request(texts[i : i + BATCH_SIZE]) for i in range(0, len(texts), BATCH_SIZE)])

    def _request(self, texts: list[str]) -> np.ndarray:
        litellm = _litellm()
        try:
            response = litellm.embedding(
                model=self.model,
                input=texts,
                api_base=self._api_base,
                api_key=self._api_key,
                encoding_format="float",
                timeout=self._timeout_s,
            )
        except Exception as exc:  # litellm maps every provider error onto its own exception types
            raise UpstreamError(
                f"embedding request to {self.model} failed: {exc}",
                details={"model": self.model, "error_type": type(exc).__name__},
            ) from exc
        try:
            rows = sorted(response.data, key=lambda d: _field(d, "index"))
            vectors = np.asarray([_field(d, "embedding") for d in rows], dtype=np.float32)
        except (KeyError, AttributeError, TypeError, ValueError) as exc:
            raise UpstreamError(f"{self.model} returned malformed embeddings: {exc}") from exc
        if vectors.ndim != 2 or vectors.shape[0] != len(texts):
            raise UpstreamError(f"{self.model} returned {len(vectors)} vectors for {len(texts)} texts")
        with self._lock:
            if self._dim is None:
                self._dim = int(vectors.shape[1])
        if vectors.shape[1] != self._dim:
            raise UpstreamError(
                f"{self.model} returned {vectors.shape[1]}-d vectors, expected {self._dim}",
                details={"model": self.model, "expected": self._dim, "actual": int(vectors.shape[1])},
            )
        return vectors


def _field(item: Any, key: str) -> Any:
    return item[key] if isinstance(item, dict) else getattr(item, key)
