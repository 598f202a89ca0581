"""``build_embedder(spec)``: the one place an embedder spec string becomes an embedder."""

from __future__ import annotations

import threading
from collections.abc import Callable

from memrelay.engine.adapters.embedding.litellm_api import LiteLLMEmbedder
from memrelay.engine.adapters.embedding.minilm_model import MiniLMEmbedder
from memrelay.engine.adapters.embedding.wordllama_model import CONFIG, FULL_DIM, WordLlamaEmbedder
from memrelay.engine.core.embedder import Embedder
from memrelay.engine.core.errors import ConfigError

DEFAULT_SPEC = "wordllama"
SPEC_HELP = "wordllama[:l2_supercat_256[:64|:128]] | minilm | litellm:<provider/model>"

_local_cache: dict[str, Embedder] = {}
_cache_lock = threading.Lock()


def build_embedder(
    spec: str = DEFAULT_SPEC,
    *,
    api_base: str | None = None,
    api_key: str | None = None,
    dim: int | None = None,
) -> Embedder:
    """Build the embedder a spec names; local models are loaded once per process and shared.

    ``api_base``/``api_key``/``dim`` apply to ``litellm:`` specs only (``dim`` = expected vector size,
    otherwise learnt from the first response). Unknown specs raise ConfigError.
    """
    kind, _, rest = (spec or "").strip().partition(":")
    kind = kind.lower()
    if kind == "litellm":
        if not rest.strip():
            raise ConfigError(f"embedder spec {spec!r} names no model; expected {SPEC_HELP}")
        return LiteLLMEmbedder(rest.strip(), api_base=api_base, api_key=api_key, dim=dim)
    key, factory = _local_factory(kind, rest.strip(), spec)
    with _cache_lock:
        if key not in _local_cache:
            _local_cache[key] = factory()
        return _local_cache[key]


def _local_factory(kind: str, rest: str, spec: str) -> tuple[str, Callable[[], Embedder]]:
    if kind == "wordllama":
        model, _, trunc = rest.partition(":")
        if model not in ("", f"{CONFIG}_{FULL_DIM}") or (trunc and not trunc.isdigit()):
            raise ConfigError(f"unknown WordLlama model in {spec!r}; expected {SPEC_HELP}")
        size = int(trunc) if trunc else FULL_DIM
        return f"wordllama:{size}", lambda: WordLlamaEmbedder(size)
    if kind == "minilm" and rest.lower() in ("", "all-minilm-l6-v2"):
        return "minilm", MiniLMEmbedder
    raise ConfigError(f"unknown embedder spec {spec!r}; expected {SPEC_HELP}", details={"spec": spec})
