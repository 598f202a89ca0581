"""WordLlama (bundled ``l2_supercat_256`` weights), loaded strictly offline with pinned file hashes.

The weights are not loaded: their float16 table is memory-mapped read-only from the bundled safetensors file, and
each call gathers its tokens' rows and widens them to float32 — exactly what ``WordLlamaInference`` computes from
the float32 copy it would otherwise hold (float16 -> float32 is exact), with its pooling, chunk for chunk. A
process holds only the pages of the tokens it has seen, in the page cache all processes share, instead of a private
32 MB float32 table in each (``bench/bench_rss.py``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import mmap
import struct
import threading
from pathlib import Path

import numpy as np

from memrelay.engine.core.embedder import embed_non_blank
from memrelay.engine.core.errors import ConfigError

CONFIG = "l2_supercat"
FULL_DIM = 256
TRUNCATIONS = (64, 128, 256)  # Matryoshka prefixes the 256-d weights support
WEIGHTS_FILE = "weights/l2_supercat_256.safetensors"
TOKENIZER_FILE = "tokenizers/l2_supercat_tokenizer_config.json"
TENSOR_KEY = "embedding.weight"
BATCH = 64  # texts per gather, as WordLlamaInference.embed (bounds the (batch, tokens, dim) temporary)
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


def bundled_package_dir() -> Path:
    """The installed ``wordllama`` package's directory, found without importing it (its inference code, k-means
    and splitters are not used here; only its bundled files are)."""
    spec = importlib.util.find_spec("wordllama")
    if spec is None or spec.origin is None:
        raise ConfigError("wordllama is not installed", details={"install": "pip install wordllama"})
    return Path(spec.origin).resolve().parent


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


def map_safetensor(path: Path, key: str = TENSOR_KEY) -> np.ndarray:
    """A read-only float16 view of tensor ``key`` in safetensors file ``path``, over a memory map of it (the
    view's base: the map stays open while the view lives)."""
    with path.open("rb") as fh:
        (header_len,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(header_len))
        mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        meta = header[key]
        start, end = (int(v) for v in meta["data_offsets"])
        shape = tuple(int(v) for v in meta["shape"])
        if meta["dtype"] != "F16" or len(shape) != 2 or end - start != shape[0] * shape[1] * 2:
            raise ValueError(f"{key} is {meta['dtype']} {shape}, expected a float16 matrix")
        table = np.frombuffer(mapped, dtype="<f2", count=shape[0] * shape[1], offset=8 + header_len + start)
    except (KeyError, ValueError) as exc:
        mapped.close()
        raise ConfigError(f"cannot map WordLlama weights {path}: {exc}", details={"path": str(path)}) from exc
    return table.reshape(shape)


class WordLlamaEmbedder:
    """Static-embedding WordLlama model: ~16 MB mapped, no network, tens of microseconds per sentence.

    The tokenizer is shared state, so calls are serialised by a lock (each call is tiny).
    """

    def __init__(self, dim: int = FULL_DIM) -> None:
        if dim not in TRUNCATIONS:
            raise ConfigError(f"WordLlama dimension must be one of {TRUNCATIONS}", details={"dim": dim})
        package_dir = bundled_package_dir()
        verify_bundled_files(package_dir)
        from tokenizers import Tokenizer

        try:
            self._tokenizer = Tokenizer.from_file(str(package_dir / TOKENIZER_FILE))
        except Exception as exc:  # the tokenizers library raises a bare Exception on a bad file
            raise ConfigError(f"cannot load the WordLlama tokenizer offline: {exc}") from exc
        self._tokenizer.enable_padding()
        self._tokenizer.no_truncation()
        table = map_safetensor(package_dir / WEIGHTS_FILE)
        if table.shape[1] != FULL_DIM:
            raise ConfigError(f"WordLlama weights are {table.shape[1]}-d, expected {FULL_DIM}")
        self._table = table[:, :dim]  # a Matryoshka prefix: a strided view, no copy
        self.dim = dim
        self.name = f"wordllama:{CONFIG}_{FULL_DIM}" + ("" if dim == FULL_DIM else f":{dim}")
        self._lock = threading.Lock()

    def embed(self, texts: list[str]) -> np.ndarray:
        """Embed texts; rows are unit length, blank texts give zero rows."""
        return embed_non_blank(texts, self._embed_raw, lambda: self.dim)

    def _embed_raw(self, texts: list[str]) -> np.ndarray:
        """Mean-pooled token vectors, unnormalised (``WordLlamaInference.embed(texts, norm=False)``)."""
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        last = self._table.shape[0] - 1
        for i in range(0, len(texts), BATCH):
            with self._lock:
                encoded = self._tokenizer.encode_batch(texts[i:i + BATCH], is_pretokenized=False,
                                                       add_special_tokens=False)
            ids = np.array([e.ids for e in encoded], dtype=np.int32)
            mask = np.array([e.attention_mask for e in encoded], dtype=np.float32)
            np.clip(ids, 0, last, out=ids)
            # float16 rows widened inside the masked product (one pass, no float32 copy of the rows first)
            masked = np.multiply(self._table[ids], mask[..., np.newaxis], dtype=np.float32)
            counts = np.maximum(mask.sum(axis=1, keepdims=True), 1.0).astype(np.float32)
            out[i:i + len(encoded)] = np.sum(masked, axis=1, dtype=np.float32) / counts
        return out
