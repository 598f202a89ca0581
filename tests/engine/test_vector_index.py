"""The Milvus index: org partitioning and filters, tombstones, check-index and reindex (CLI)."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from memrelay.cli.index_commands import check_index_command, reindex_command
from memrelay.composition import Services
from memrelay.engine.adapters.vector_index import VectorRow, collection_name
from memrelay.engine.core.errors import ServiceUnavailable
from memrelay.engine.memory.memories import MemorizeRequest
from memrelay.engine.memory.recall import RecallRequest
from memrelay.engine.stores.db.database import Database
from memrelay.engine.stores.db.models import IndexMeta, Memory
from tests.engine.test_memories import memorize, recall


def test_collection_names_are_per_embedder_and_dimension():
    assert collection_name("wordllama:l2_supercat_256", 256) == "memories_wordllama_l2_supercat_256_d256"
    assert collection_name("litellm:openai/text-embedding-3-small", 1536).endswith("_d1536")


def test_search_is_filtered_by_org_type_and_record(engine, api, other_api):
    vi, name = engine.vector_index, "memories_unit_test_d4"
    rows = [VectorRow("m1", api.org_id, "r1", "contact", np.array([1, 0, 0, 0], np.float32)),
            VectorRow("m2", api.org_id, "r2", "company", np.array([0.9, 0.1, 0, 0], np.float32)),
            VectorRow("m3", other_api.org_id, "r3", "contact", np.array([1, 0, 0, 0], np.float32))]
    vi.upsert(name, 4, rows)
    vi.upsert(name, 4, rows[:1])  # idempotent
    q = np.array([1, 0, 0, 0], np.float32)
    assert [h.memory_id for h in vi.search(name, q, api.org_id, limit=10)] == ["m1", "m2"]
    assert [h.memory_id for h in vi.search(name, q, api.org_id, limit=10, entity_types=["company"])] == ["m2"]
    assert [h.memory_id for h in vi.search(name, q, api.org_id, limit=10, exclude_records=["r1"])] == ["m2"]
    assert vi.count(name, api.org_id) == 2 and vi.ids(name, other_api.org_id) == {"m3"}
    vi.delete(name, ["m1"])
    assert [h.memory_id for h in vi.search(name, q, api.org_id, limit=10)] == ["m2"]


def test_check_index_finds_and_repairs_drift(api, engine):
    out = memorize(api, "Hosts everything on Hetzner in Falkenstein.", email="ops@lambda.com")
    mid = out["memoryIds"][0]
    assert engine.index.check_org(api.org_id)["ok"]
    engine.vector_index.delete(engine.index.current_collection(), [mid])  # index lost a vector
    report = engine.index.check_org(api.org_id)
    assert not report["ok"] and report["missing"] == 1
    repaired = engine.index.check_org(api.org_id, repair=True)
    assert repaired["repair"] == {"indexed": 1, "tombstones": 0}
    assert engine.index.check_org(api.org_id)["ok"]
    assert recall(api, "Hetzner hosting")["results"][0]["memoryId"] == mid


def test_reindex_after_an_embedder_change(api, engine, settings, monkeypatch):
    out = memorize(api, "Their data team standardised on dbt and BigQuery.", email="data@mu.com")
    small = Services(settings.model_copy(update={"embedder": "wordllama:l2_supercat_256:64"}),
                   db=Database(settings.sql_url))
    try:
        with pytest.raises(ServiceUnavailable, match="memrelay reindex"):
            small.memories.memorize(api.org_id, MemorizeRequest(content="Uses Looker.", email="data@mu.com",
                                                                tags=["t"]))
        assert not small.index.check_org(api.org_id)["ok"]
        env = {"MEMRELAY_DATABASE_URL": settings.sql_url, "MEMRELAY_MILVUS_URI": settings.milvus_target,
               "MEMRELAY_REDIS_URL": settings.redis_url, "MEMRELAY_DATA_DIR": str(settings.data_dir),
               "MEMRELAY_EMBEDDER": "wordllama:l2_supercat_256:64", "MEMRELAY_LOG_JSON": "false"}
        org_name = _org_name(engine, api.org_id)
        res = CliRunner().invoke(reindex_command, ["--org", org_name], env=env)
        assert res.exit_code == 0, res.output
        with small.db.read() as s:
            meta = s.get(IndexMeta, api.org_id)
            row = s.scalar(select(Memory).where(Memory.id == out["memoryIds"][0]))
        assert (meta.embedder, meta.dim) == (small.embedder.name, 64) and len(row.embedding) == 64 * 4
        found = small.recall.smart_recall(api.org_id, RecallRequest(query="BigQuery warehouse"))
        assert found["results"][0]["memoryId"] == out["memoryIds"][0]
        res = CliRunner().invoke(check_index_command, ["--org", org_name], env=env)
        assert res.exit_code == 0 and "ok" in res.output, res.output
    finally:
        small.close()


def test_check_index_cli_repairs_pending_rows(api, engine, settings):
    out = memorize(api, "Weekly sync every Monday at 9am.", email="pm@nu.com")
    with engine.db.session() as s:  # as if the process died before the Milvus write
        s.execute(update(Memory).where(Memory.id == out["memoryIds"][0]).values(index_state="pending"))
    engine.vector_index.delete(engine.index.current_collection(), out["memoryIds"])
    env = {"MEMRELAY_DATABASE_URL": settings.sql_url, "MEMRELAY_MILVUS_URI": settings.milvus_target,
           "MEMRELAY_REDIS_URL": settings.redis_url, "MEMRELAY_DATA_DIR": str(settings.data_dir)}
    org_name = _org_name(engine, api.org_id)
    res = CliRunner().invoke(check_index_command, ["--org", org_name], env=env)
    assert res.exit_code == 1 and "MISMATCH" in res.output
    res = CliRunner().invoke(check_index_command, ["--org", org_name, "--repair"], env=env)
    assert res.exit_code == 0, res.output
    assert engine.index.reconcile() == {"indexed": 0, "tombstones": 0}
    assert recall(api, "weekly sync meeting")["results"][0]["memoryId"] == out["memoryIds"][0]


def _org_name(engine: Services, org_id: str) -> str:
    from memrelay.engine.stores.db.models import Org

    with engine.db.read() as s:
        return s.get(Org, org_id).name


def test_the_milvus_channel_does_not_ping_while_idle(engine):
    """pymilvus pings every 10 s, idle or not; Milvus Lite's server closed such a connection under load (GOAWAY
    "too_many_pings") and the next index push failed. The client's channel is built without idle pings."""
    from memrelay.engine.adapters.vector_index import GRPC_OPTIONS

    handler = engine.vector_index.client._handler
    assert handler._grpc_options == GRPC_OPTIONS
    assert GRPC_OPTIONS["grpc.keepalive_permit_without_calls"] == 0
    assert GRPC_OPTIONS["grpc.keepalive_time_ms"] >= 300_000
