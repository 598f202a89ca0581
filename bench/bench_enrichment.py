"""Proactive enrichment throughput, side by side in one run on the embedded defaults (SQLite, Milvus Lite,
WordLlama):

  * plain memorize (offline extraction, one call per text)          — memories/s
  * enrichment, offline path (keyword/embedding rules)              — entities/s
  * enrichment, LLM path (structured output, 10 records per call)   — entities/s

The LLM path talks to a local OpenAI-compatible fake (tests/support/fake_llm.py) through litellm's real HTTP
path, so its figure is memrelay's own cost per entity (evidence, prompt, litellm, parsing, writes, usage rows)
without a real model's latency; with a real provider, latency per call × calls dominates.

    .venv/bin/python bench/bench_enrichment.py --companies 1000 --memorize 300
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pydantic import SecretStr  # noqa: E402
from sqlalchemy import text  # noqa: E402

from memrelay.composition import Services  # noqa: E402
from memrelay.engine.core.settings import Settings  # noqa: E402
from memrelay.engine.enrichment.runs import EnrichmentRunRequest  # noqa: E402
from memrelay.engine.memory.memories import MemorizeRequest  # noqa: E402
from memrelay.engine.stores.identity import Identifiers  # noqa: E402
from memrelay.engine.stores.properties import Provenance  # noqa: E402
from tests.engine.test_enrichment_llm import classify  # noqa: E402
from tests.support.fake_llm import FakeLLMServer  # noqa: E402

INSTRUCTION = ("B2B if it sells to businesses (SaaS, enterprise software, wholesale, procurement teams); "
               "B2C if it sells to consumers (shoppers, households, retail stores, mobile app for individuals).")
TEXTS = ["Invoicing SaaS for businesses and their procurement teams.", "Meal kits delivered to households.",
         "Founded in 2004, headquartered in Lyon.", "Their shoppers buy through the mobile app."]


def declare(engine: Services, org_id: str) -> None:
    engine.collections.create(org_id, name="Company Insights", entity_type="company", properties=[
        {"propertyName": "company_type", "type": "options", "options": ["B2B", "B2C"],
         "inferred": {"instruction": INSTRUCTION, "evidence": {"properties": ["description"]}}}])


def load(engine: Services, org_id: str, n: int) -> float:
    items = [(Identifiers(type="company", website_url=f"co{i}.example"), {"description": TEXTS[i % 4]},
              Provenance(source="bench")) for i in range(n)]
    t0 = time.perf_counter()
    for start in range(0, n, 500):
        engine.records.upsert_many(org_id, items[start:start + 500])
    return time.perf_counter() - t0


def memorize(engine: Services, org_id: str, n: int) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        engine.memories.memorize(org_id, MemorizeRequest.model_validate(
            {"type": "company", "website_url": f"co{i}.example", "content": f"{TEXTS[(i + 1) % 4]} Call #{i}."}))
    return time.perf_counter() - t0


def enrich(engine: Services, org_id: str, mode: str) -> tuple[float, dict[str, Any]]:
    t0 = time.perf_counter()
    run = engine.enrichment.start_run(org_id, EnrichmentRunRequest(collection="company", property="company_type",
                                                                   mode=mode, chunkSize=250))
    for index in engine.enrichment.pending_chunks(org_id, run["runId"]):
        engine.enrichment.process_chunk(run["runId"], org_id, index)
    return time.perf_counter() - t0, engine.enrichment.status(org_id, run["runId"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--companies", type=int, default=1000)
    ap.add_argument("--memorize", type=int, default=300, help="memorize calls timed (first N companies)")
    args = ap.parse_args()
    data = Path(tempfile.mkdtemp(prefix="memrelay-bench-enrich-"))
    with FakeLLMServer(responder=classify) as llm:
        settings = Settings(data_dir=data, milvus_uri=str(data / "milvus.db"), redis_url="redis://unused",
                            log_json=False, log_level="WARNING", llm_model="openai/gpt-4o-mini",
                            llm_api_base=llm.base_url, llm_api_key=SecretStr("bench"))
        settings.ensure_data_dir()
        engine = Services(settings)
        engine.migrate()
        org_id = engine.tenancy.get_or_create_org("bench-enrichment").id
        declare(engine, org_id)
        engine.embedder.get()  # load the model before timing
        load_s = load(engine, org_id, args.companies)
        mem_s = memorize(engine, org_id, args.memorize)
        off_s, off = enrich(engine, org_id, "offline")
        with engine.db.session() as s:  # let the LLM path write too (offline values would be "unchanged")
            s.execute(text("DELETE FROM property_values WHERE name = 'company_type'"))
        llm_s, on = enrich(engine, org_id, "llm")
        engine.close()
    shutil.rmtree(data, ignore_errors=True)
    rows = [("bulk upsert companies/s", args.companies / load_s),
            ("plain memorize memories/s", args.memorize / mem_s),
            ("enrichment offline entities/s", args.companies / off_s),
            ("enrichment LLM (local fake) entities/s", args.companies / llm_s)]
    print(f"{args.companies} companies ({args.memorize} with a memorized call note)")
    for name, value in rows:
        print(f"  {name:42} {value:10,.0f}")
    print(f"  offline counts {off['counts']}, cost ${off['costUsd']}")
    print(f"  LLM counts {on['counts']}, {len(llm.chat_requests)} calls, estimate ${on['estimateUsd']:.4f}, "
          f"cost ${on['costUsd']:.4f}")


if __name__ == "__main__":
    main()
