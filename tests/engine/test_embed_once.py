"""Embed once (issue 16 item 6): schema vectors cached per process, each text once per memorize, and
embedder threads sized to the process's share of the cores."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest

from memrelay.composition import Services
from memrelay.engine.adapters.embedding.factory import build_embedder
from memrelay.engine.core.embedder import Embedder, MemoEmbedder, TextVectorCache
from memrelay.engine.core.threads import THREADS_ENV, embedder_threads
from memrelay.engine.domain.extraction import offline
from memrelay.engine.memory.memories import Memories, MemorizeRequest
from memrelay.engine.stores.identity import Identifiers

CONTENT = ("Jane Doe is the Head of Growth at Acme. She moved to the customer stage last week. "
           "Acme's budget is $250,000.")


class CountingEmbedder:
    """The real WordLlama embedder, recording every text it is asked to embed."""

    def __init__(self, inner: Embedder) -> None:
        self.inner, self.calls = inner, Counter[str]()

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed(self, texts: list[str]) -> np.ndarray:
        self.calls.update(texts)
        return self.inner.embed(texts)


@pytest.fixture
def counting() -> CountingEmbedder:
    return CountingEmbedder(build_embedder("wordllama"))


def _memories(engine: Services, emb: CountingEmbedder) -> Memories:
    return Memories(engine.db, emb, engine.records, engine.collections, engine.index, None)


def _memorize(memories: Memories, org: str, content: str, email: str) -> dict[str, Any]:
    return memories.memorize(org, MemorizeRequest(content=content, tags=["t"],
                                                  identifiers=Identifiers(type="contact", email=email)))


def test_a_memorize_embeds_each_text_once_and_the_schema_once_per_process(engine: Services, counting):
    offline.SCHEMA_VECTORS.clear()
    org = engine.tenancy.create_org("embed-once").id
    memories = _memories(engine, counting)
    first = _memorize(memories, org, CONTENT, "jane@acme.com")
    assert first["memoriesCreated"] >= 2 and first["propertiesExtracted"], first
    assert counting.calls and max(counting.calls.values()) == 1, counting.calls  # no text embedded twice
    assert any(t.startswith("job title") for t in counting.calls), counting.calls  # the schema was embedded

    counting.calls.clear()
    second = _memorize(memories, org, "Bob Roe is the CTO of Initech.", "bob@initech.com")
    assert second["memoriesCreated"] == 1
    # the second memorize embeds its own sentence only: descriptions and options come from the cache
    assert set(counting.calls) == {"Bob Roe is the CTO of Initech."}, counting.calls


def test_cached_schema_vectors_give_the_same_extraction_as_embedding_everything(engine: Services, counting):
    org = engine.tenancy.create_org("embed-same").id
    memories = _memories(engine, counting)
    offline.SCHEMA_VECTORS.clear()
    cold = _memorize(memories, org, CONTENT, "a@acme.com")["propertiesExtracted"]
    warm = _memorize(memories, org, CONTENT.replace("Jane Doe", "Ann Poe"), "b@acme.com")["propertiesExtracted"]
    assert cold, cold
    strip = [{k: v for k, v in p.items() if k in ("name", "value")} for p in cold]
    assert strip == [{k: v for k, v in p.items() if k in ("name", "value")} for p in warm]


def test_memo_embedder_sends_only_new_texts_and_keeps_order(counting):
    memo = MemoEmbedder(counting)
    a = memo.embed(["alpha beta", "gamma", "alpha beta"])
    b = memo.embed(["gamma", "delta"])
    assert counting.calls == Counter({"alpha beta": 1, "gamma": 1, "delta": 1})
    assert memo.texts_embedded == 3 and a.shape == (3, counting.dim)
    np.testing.assert_array_equal(a[0], a[2])
    np.testing.assert_array_equal(a[1], b[0])
    np.testing.assert_allclose(b[1], counting.inner.embed(["delta"])[0], rtol=1e-6)
    assert memo.embed([]).shape == (0, counting.dim)


def test_text_vector_cache_is_keyed_by_model_and_bounded(counting):
    cache = TextVectorCache(max_entries=2)
    cache.embed(counting, ["one", "two"])
    cache.embed(counting, ["two", "one"])
    assert counting.calls == Counter({"one": 1, "two": 1})
    cache.embed(counting, ["three"])  # evicts the least recently used ("two" was touched before "one")
    assert len(cache) == 2
    cache.embed(counting, ["two"])
    assert counting.calls["two"] == 2

    other = CountingEmbedder(build_embedder("wordllama:l2_supercat_256:64"))
    rows = cache.embed(other, ["one"])
    assert rows.shape == (1, 64) and other.calls == Counter({"one": 1})  # another model never reads 256-d rows


def test_embedder_threads_are_the_process_share_of_cores(monkeypatch):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert embedder_threads(cores=2, processes=4) == 1
    assert embedder_threads(cores=8, processes=4) == 2
    assert embedder_threads(cores=16, processes=1) == 16
    monkeypatch.setenv("MEMRELAY_WEB_WORKERS", "3")
    monkeypatch.setenv("MEMRELAY_WORKERS", "1")
    assert embedder_threads(cores=8) == 2
    monkeypatch.setenv(THREADS_ENV, "3")
    assert embedder_threads(cores=2, processes=4) == 3
