"""Text embedders: WordLlama (default, offline), MiniLM (optional extra), any litellm embedding API."""

from engine.embedding.base import Embedder, cosine, l2_normalize
from engine.embedding.factory import DEFAULT_SPEC, build_embedder

__all__ = ["DEFAULT_SPEC", "Embedder", "build_embedder", "cosine", "l2_normalize"]
