"""Token counting with the vendored cl100k_base: the published token ids, and the pieces memrelay uses."""

from __future__ import annotations

import pickle

import pytest

from memrelay.engine.core import tokens


def test_cl100k_gives_the_published_token_ids() -> None:
    # OpenAI's cookbook ("How to count tokens with tiktoken"): cl100k_base encodes this as these six ids.
    assert tokens.encoding().encode_ordinary("tiktoken is great!") == [83, 1609, 5963, 374, 2294, 0]
    assert tokens.count_tokens("tiktoken is great!") == 6


def test_truncate_and_split_keep_every_token() -> None:
    text = "Northbeam's renewal is due on March 3, 2027; légal review takes two weeks. " * 20
    pieces = tokens.split_to_budget(text, 17)
    assert "".join(pieces) == text and all(tokens.count_tokens(p) <= 17 for p in pieces)
    cut = tokens.truncate(text, 10, suffix="…")
    assert cut.endswith("…") and tokens.count_tokens(cut) <= 10 and text.startswith(cut[:-1])


def test_the_python_copy_of_the_ranks_is_not_kept() -> None:
    enc = tokens.load_cl100k()
    assert not hasattr(enc, "_mergeable_ranks")  # ~17 MB per process; the Rust core has them
    assert enc.decode(enc.encode_ordinary("héllo wörld")) == "héllo wörld"
    with pytest.raises(AttributeError):
        pickle.dumps(enc)
