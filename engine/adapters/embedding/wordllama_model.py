"""WordLlama (bundled ``l2_supercat_256`` weights), loaded strictly offline with pinned file hashes."""

from __future__ import annotations

import hashlib
import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np

from memrelay.engine.core.embedder import embed_non_blank
from memrelay.engine.core.errors import ConfigError

CONFIG = "l2_supercat"
FULL_DIM = 256
TRUNCATIONS = (64, 128, 256)  # Matryoshka prefixes the 256-d weights support
WEIGHTS_FILE = "weights/l2_supercat_256.safetensors"
TOKENIZER_FILE = "tokenizers/l2_supercat_tokenizer_config.json"
PINNED_SHA256 = {
    WEIGHTS_FILE: "64b47a2dc493cb8e85944076601189739852d7b64e0e1eedcb1937a251cd9fd5",
    TOKENIZER_FILE: "93248f2a9ec36c7b35f700a033d5f36228aae48db61aee31007fa49062cdeb68",
}


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _import_wordllama() -> Any:
    """Import the package without letting its import-time ``logging.basicConfig`` touch the root logger."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        import wordllama
    except ImportError as exc:  # pragma: no cover - it is a hard dependency
        raise ConfigError("wordllama is not installed", details={"error": str(exc)}) from exc
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    return wordllama


def verify_bundled_files(package_dir: Path, pinned: dict[str, str] | None = None) -> None:
    """Raise ConfigError unless every pinned file under ``package_dir`` exists with the pinned hash."""
    for rel, expected in (PINNED_SHA256 if pinned is None else pinned).items():
        path = package_dir / rel
        if not path.is_file():
            raise ConfigError(f"WordLlama file missing: {path}", details={"path": str(path)})
        actual = sha256_of(path)
        if actual != expected:
            raise ConfigError(
                f"WordLlama file {rel} does not match its pinned SHA-256",
                details={"path": str(path), "expected": expected, "actual": actual},
            )


class WordLlamaEmbedder:
    """Static-embedding WordLlama model: ~16 MB, no network, tens of microseconds per sentence.

    The tokenizer is shared state, so calls are serialised by a lock (each call is tiny).
    """

    def __init__(self, dim: int = FULL_DIM) -> None:
        if dim not in TRUNCATIONS:
            raise ConfigError(f"WordLlama dimension must be one of {TRUNCATIONS}", details={"dim": dim})
        wordllama = _import_wordllama()
        package_dir = Path(wordllama.__file__).resolve().parent
        verify_bundled_files(package_dir)
        try:
            self._model = wordllama.WordLlama.load(
                config=CONFIG,
                cache_dir=package_dir,
                dim=FULL_DIM,
                trunc_dim=None if dim == FULL_DIM else dim,
                disable_download=True,
            )
        except (FileNotFoundError, ValueError) as exc:
            raise ConfigError(f"cannot load WordLlama offline: {exc}") from exc
        self.dim = dim
        self.name = f"wordllama:{CONFIG}_{FULL_DIM}" + ("" if dim == FULL_DIM else f":{dim}")
        self._lock = threading.Lock()

    def embed(self, texts: list[str]) -> np.ndarray:
        """Embed texts; rows are unit length, blank texts give zero rows."""
        return embed_non_blank(texts, self._embed_raw, lambda: self.dim)

    def _embed_raw(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            return self._model.embed(texts, norm=False)
