"""Token counting with tiktoken's ``cl100k_base``, loaded strictly offline.

tiktoken downloads its BPE files by default. litellm vendors ``cl100k_base`` in its package; we read that
file directly (without importing litellm, which is slow to import), check its pinned SHA-256 and build the
``tiktoken.Encoding`` ourselves, so counting tokens never touches the network.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import threading
from pathlib import Path

import tiktoken

from memrelay.engine.core.errors import ConfigError

CL100K_FILE = "litellm_core_utils/tokenizers/9b5ad71b2ce5302211f9c61530b329a4922fc6a4"
CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
CL100K_PATTERN = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
                  r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s""")
CL100K_SPECIAL = {"<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
                  "<|fim_suffix|>": 100260, "<|endofprompt|>": 100276}

_encoding: tiktoken.Encoding | None = None
_lock = threading.Lock()


def _bundled_rank_file() -> Path:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("litellm (which bundles the cl100k_base tokenizer) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / CL100K_FILE


def load_cl100k(path: Path | None = None) -> tiktoken.Encoding:
    """Build the ``cl100k_base`` encoding from the vendored rank file (no network)."""
    path = path or _bundled_rank_file()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the bundled cl100k_base tokenizer: {exc}") from exc
    if hashlib.sha256(raw).hexdigest() != CL100K_SHA256:
        raise ConfigError("the bundled cl100k_base tokenizer does not match its pinned SHA-256",
                          details={"path": str(path)})
    ranks = {base64.b64decode(tok): int(rank) for tok, rank in (line.split() for line in raw.splitlines() if line)}
    enc = tiktoken.Encoding(name="cl100k_base", pat_str=CL100K_PATTERN, mergeable_ranks=ranks,
                            special_tokens=CL100K_SPECIAL)
    # The encoder keeps the ranks in its Rust core; the Python dict it also keeps (100k bytes objects, ~17 MB in
    # every process) serves only pickling, which memrelay never does: dropped, pickling fails loudly.
    del enc._mergeable_ranks
    return enc


def encoding() -> tiktoken.Encoding:
    """The process-wide ``cl100k_base`` encoding (loaded once)."""
    global _encoding
    if _encoding is None:
        with _lock:
            if _encoding is None:
                _encoding = load_cl100k()
    return _encoding


def count_tokens(text: str) -> int:
    """Number of ``cl100k_base`` tokens in ``text`` (special-token text is counted as plain text)."""
    return len(encoding().encode_ordinary(text))


def truncate(text: str, max_tokens: int, *, suffix: str = "") -> str:
    """``text`` cut to at most ``max_tokens`` tokens (``suffix`` included in the budget when cut)."""
    if max_tokens <= 0:
        return ""
    tokens = encoding().encode_ordinary(text)
    if len(tokens) <= max_tokens:
        return text
    keep = max(0, max_tokens - (count_tokens(suffix) if suffix else 0))
    return encoding().decode(tokens[:keep]) + suffix


def split_to_budget(text: str, max_tokens: int) -> list[str]:
    """``text`` in consecutive pieces of at most ``max_tokens`` tokens each (no token is lost)."""
    if max_tokens <= 0:
        raise ValueError("max_tokens must be positive")
    tokens = encoding().encode_ordinary(text)
    return [encoding().decode(tokens[i:i + max_tokens]) for i in range(0, len(tokens), max_tokens)] or [""]
