"""Text embedders: WordLlama (default, offline), MiniLM (optional extra), any litellm embedding API.

May import ``memrelay.engine.core`` and the LLM adapter's runtime; no SQL."""

from memrelay.engine.adapters.embedding.factory import DEFAULT_SPEC, build_embedder
from memrelay.engine.adapters.embedding.lazy import LazyEmbedder
from memrelay.engine.core.embedder import Embedder, cosine, l2_normalize

__all__ = ["DEFAULT_SPEC", "Embedder", "LazyEmbedder", "build_embedder", "cosine", "l2_normalize"]
