"""Semantic-memory benchmark on the embedded defaults (SQLite + Milvus Lite + WordLlama).

Measured side by side in one run:
  * entity-scoped fast recall p50/p95 — in the engine and over HTTP (Flask test client), and the first one right
    after a new memory of the record (unchanged memories' text analysis kept vs analysed again),
  * org-wide search through Milvus vs a numpy brute-force top-10 over the same vectors (+ overlap),
  * cold start to ready (fresh process: app built, first scoped recall, first org-wide recall),
  * batch memorize rows/s — structured only, and with one embedded text field.

    .venv/bin/python bench/bench_semantic.py --memories 100000 --entities 1000
    .venv/bin/python bench/bench_semantic.py --memories 5000 --entities 100      # quick

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from sqlalchemy import insert, select  # noqa: E402

from memrelay.composition import Services  # noqa: E402
from memrelay.engine.adapters.vector_index import from_blobs, to_blob  # noqa: E402
from memrelay.engine.core.settings import Settings  # noqa: E402
from memrelay.engine.core.util import new_id, utcnow  # noqa: E402
from memrelay.engine.memory.index_sync import check_embedder  # noqa: E402
from memrelay.engine.memory.recall import RecallRequest  # noqa: E402
from memrelay.engine.stores.db.models import Memory, Record, RecordKey  # noqa: E402

FIRST = "Alice Bob Carol Dan Eve Fay Gus Hal Ivy Jon Kim Lee Max Ned Oli Pam Quinn Rae Sam Tia Uma Vic Wes Xia Yan Zoe".split()
PRODUCTS = "analytics dashboards reporting billing onboarding SSO audit-logs API webhooks mobile-app data-export".split()
TECH = "PostgreSQL MySQL Snowflake BigQuery AWS Azure GCP Salesforce HubSpot Kubernetes Kafka Redis".split()
TEMPLATES = [
    "{name} asked about {p1} pricing for a team of {n} people.",
    "{name} said their stack runs on {t1} and {t2}.",
    "{name} wants a demo of {p1} before the end of Q{q}.",
    "{name} reported a bug in {p1} affecting {n} users.",
    "{name} is evaluating {p2} against a competitor with a ${n}k budget.",
    "{name} prefers email over calls and is based in timezone UTC+{q}.",
    "{name} mentioned migrating from {t1} to {t2} next year.",
    "{name} renewed the {p2} contract for {q} years.",
]
QUERIES = ["pricing for the analytics product", "which database do they use", "demo request before quarter end",
           "bugs reported by users", "budget for evaluation", "preferred contact channel", "migration plans",
           "contract renewal length"]


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def text_for(rng: random.Random, name: str) -> str:
    return rng.choice(TEMPLATES).format(name=name, p1=rng.choice(PRODUCTS), p2=rng.choice(PRODUCTS),
                                        t1=rng.choice(TECH), t2=rng.choice(TECH), n=rng.randint(2, 900),
                                        q=rng.randint(1, 4))


def load_corpus(engine: Services, org_id: str, n_memories: int, n_entities: int, seed: int = 7) -> dict[str, float]:
    """Bulk-insert records, keys and embedded memories (batched embeddings), then index them."""
    rng = random.Random(seed)
    emb = engine.embedder
    now = utcnow()
    t0 = time.perf_counter()
    records, keys = [], []
    for i in range(n_entities):
        rid = new_id("rec")
        records.append({"id": rid, "org_id": org_id, "entity_type": "contact", "primary_key": f"email:e{i}@bench.io",
                        "version": 1, "created_at": now, "updated_at": now})
        keys.append({"org_id": org_id, "record_id": rid, "key_name": "email", "key_value": f"e{i}@bench.io"})
    with engine.db.session() as s:
        check_embedder(s, org_id, emb)
        s.execute(insert(Record), records)
        s.execute(insert(RecordKey), keys)
    embed_s = 0.0
    batch = 10_000
    for start in range(0, n_memories, batch):
        idx = range(start, min(start + batch, n_memories))
        owners = [records[i % n_entities] for i in idx]
        texts = [text_for(rng, f"{FIRST[(i % n_entities) % len(FIRST)]}-{i % n_entities}") for i in idx]
        t = time.perf_counter()
        vectors = emb.embed(texts)
        embed_s += time.perf_counter() - t
        rows = [{"id": new_id("mem"), "org_id": org_id, "record_id": o["id"], "entity_type": "contact", "text": txt,
                 "tags": ["bench"], "source": "bench", "ts": now, "created_at": now, "updated_at": now,
                 "embedding": to_blob(v), "embedder": emb.name, "seen_count": 1, "provenance": [],
                 "index_state": "pending"} for o, txt, v in zip(owners, texts, vectors, strict=True)]
        with engine.db.session() as s:
            s.execute(insert(Memory), rows)
    sql_s = time.perf_counter() - t0
    t = time.perf_counter()
    engine.index.reconcile()
    index_s = time.perf_counter() - t
    return {"load_sql_s": sql_s, "embed_s": embed_s, "index_s": index_s}


def bench_scoped(engine: Services, app: Any, key: str, org_id: str, n_entities: int, n: int) -> dict[str, list[float]]:
    rng = random.Random(1)
    client = app.test_client()
    out: dict[str, list[float]] = {"engine_cold": [], "engine_warm": [], "engine_new_question": [],
                                   "engine_uncached_names": [],
                                   "http_warm": [], "http_uncached_names": [], "scoring_only": []}
    emb = engine.embedder
    for _ in range(n):
        email = f"e{rng.randrange(n_entities)}@bench.io"
        req = RecallRequest(query=rng.choice(QUERIES), email=email, limit=10)
        for label in ("engine_cold", "engine_warm", "engine_new_question", "engine_uncached_names"):
            # engine_uncached_names: the records' names read and embedded on every call (as before they were
            # cached with the record's vectors), interleaved with the cached calls so both see the same load;
            # engine_new_question: the question's vector not cached (a question this process has not seen)
            engine.recall.subject_cache = label != "engine_uncached_names"
            if label in ("engine_new_question", "engine_uncached_names"):
                engine.recall.questions.clear()
            t = time.perf_counter()
            engine.recall.smart_recall(org_id, req)
            out[label].append((time.perf_counter() - t) * 1000)
        for label in ("http_warm", "http_uncached_names"):
            engine.recall.subject_cache = label != "http_uncached_names"
            t = time.perf_counter()
            r = client.post("/api/v1/smart-recall", json={"query": req.query, "email": email, "limit": 10},
                            headers={"Authorization": f"Bearer {key}"})
            out[label].append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200, r.json
        engine.recall.subject_cache = True
        q = emb.embed([req.query])[0]
        with engine.db.read() as s:
            rid = s.scalar(select(RecordKey.record_id).where(RecordKey.key_value == email))
            ev = engine.recall.cache.get(s, org_id, rid, embedder=emb.name, dim=emb.dim)
        t = time.perf_counter()
        sims = ev.matrix @ q
        np.argsort(-sims)[:10]
        out["scoring_only"].append((time.perf_counter() - t) * 1000)
    return out


def bench_after_write(engine: Services, org_id: str, n_entities: int, n: int) -> dict[str, list[float]]:
    """The first scoped recall of a record right after one memory was added to it (its cache entry is reloaded):
    with the unchanged memories' text analysis taken over from the replaced entry (production) and without
    (``text_memos`` off), alternating over distinct records so both see the same load."""
    rng = random.Random(2)
    emb = engine.embedder
    cache = engine.recall.cache
    kept = cache.text_memos
    out: dict[str, list[float]] = {"carried": [], "reanalysed": []}
    entities = rng.sample(range(n_entities), min(n_entities, 2 * n))
    for i, e in enumerate(entities):
        label = "carried" if i % 2 == 0 else "reanalysed"
        email = f"e{e}@bench.io"
        req = RecallRequest(query=rng.choice(QUERIES), email=email, limit=10)
        engine.recall.smart_recall(org_id, req)  # the record's entry cached and analysed for this question
        with engine.db.read() as s:
            rid = s.scalar(select(RecordKey.record_id).where(RecordKey.key_value == email))
        text = text_for(rng, f"{FIRST[e % len(FIRST)]}-{e}")
        now = utcnow()
        with engine.db.session() as s:
            s.execute(insert(Memory), [{"id": new_id("mem"), "org_id": org_id, "record_id": rid,
                                        "entity_type": "contact", "text": text, "tags": ["bench"], "source": "bench",
                                        "ts": now, "created_at": now, "updated_at": now,
                                        "embedding": to_blob(emb.embed([text])[0]), "embedder": emb.name,
                                        "seen_count": 1, "provenance": [], "index_state": "pending"}])
        cache.text_memos = kept if label == "carried" else ()
        t = time.perf_counter()
        engine.recall.smart_recall(org_id, req)
        out[label].append((time.perf_counter() - t) * 1000)
        cache.text_memos = kept
    return out


def bench_org_wide(engine: Services, org_id: str, n: int) -> dict[str, Any]:
    emb = engine.embedder
    with engine.db.read() as s:
        rows = s.execute(select(Memory.id, Memory.embedding).where(Memory.org_id == org_id)).all()
    ids = [r.id for r in rows]
    matrix = from_blobs([r.embedding for r in rows], emb.dim)
    milvus, brute, overlap, recall_ms = [], [], [], []
    name = engine.index.current_collection()
    for qtext in (QUERIES * (n // len(QUERIES) + 1))[:n]:
        q = emb.embed([qtext + f" {random.random():.3f}"])[0]
        t = time.perf_counter()
        hits = engine.vector_index.search(name, q, org_id, limit=10)
        milvus.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        sims = matrix @ q
        top = np.argpartition(-sims, 10)[:10]
        top = top[np.argsort(-sims[top])]
        brute.append((time.perf_counter() - t) * 1000)
        overlap.append(len({h.memory_id for h in hits} & {ids[i] for i in top}) / 10)
        t = time.perf_counter()
        engine.recall.smart_recall(org_id, RecallRequest(query=qtext, limit=10))
        recall_ms.append((time.perf_counter() - t) * 1000)
    return {"milvus": milvus, "brute": brute, "overlap": overlap, "recall": recall_ms}


def bench_batch(engine: Services, org_id: str, n_rows: int, with_text: bool, chunk: int = 500) -> float:
    from memrelay.engine.memory.batch import BatchMemorizeRequest

    props = {"job_title": {"sourceField": "title"}, "lifecycle_stage": {"sourceField": "stage"},
             "city": {"sourceField": "city"}}
    if with_text:
        props["notes"] = {"sourceField": "notes", "extractMemories": True}
    tag = "t" if with_text else "s"
    rows = [{"email": f"{tag}{i}@batch.io", "title": f"Engineer {i}", "stage": "lead", "city": "Berlin",
             "notes": f"Contact {i} asked about {PRODUCTS[i % len(PRODUCTS)]} for {i % 90 + 2} seats."}
            for i in range(n_rows)]
    req = BatchMemorizeRequest(mapping={"entityType": "contact", "email": "email", "properties": props}, rows=rows,
                               chunkSize=chunk)
    batches = engine.batches
    run = batches.create_run(org_id, req)
    t = time.perf_counter()
    for c in run.chunks:
        batches.process_chunk(run.run_id, org_id, c.index, c.offset, req.mapping_json(), c.rows)
    elapsed = time.perf_counter() - t
    st = batches.status(org_id, run.run_id)
    assert st["status"] == "completed" and st["errorCount"] == 0, st
    return n_rows / elapsed


COLD_START = """
import json, sys, time
t0 = time.perf_counter()
sys.path.insert(0, {root!r})
from memrelay.engine.core.settings import Settings
from memrelay.engine.memory.recall import RecallRequest
from memrelay.gateway.app import create_app
app = create_app(Settings(**json.loads({settings!r})))
t_app = time.perf_counter()
c = app.test_client()
h = {{"Authorization": "Bearer {key}"}}
r = c.post("/api/v1/smart-recall", json={{"query": "pricing", "email": "e1@bench.io"}}, headers=h)
assert r.status_code == 200, r.json
t_scoped = time.perf_counter()
r = c.post("/api/v1/smart-recall", json={{"query": "pricing"}}, headers=h)
assert r.status_code == 200, r.json
t_org = time.perf_counter()
print(json.dumps({{"app": t_app - t0, "first_scoped": t_scoped - t0, "first_org_wide": t_org - t0}}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--memories", type=int, default=100_000)
    ap.add_argument("--entities", type=int, default=1000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--batch-rows", type=int, default=5000)
    ap.add_argument("--data-dir", type=Path, default=None, help="Default: a temporary directory (removed).")
    ap.add_argument("--scoped-only", action="store_true",
                    help="Only the load and the scoped recall figures (no org-wide, batch or cold-start runs).")
    args = ap.parse_args()
    data = args.data_dir or Path(tempfile.mkdtemp(prefix="memrelay-bench-"))
    from memrelay.supervise.embedded import EmbeddedMilvus

    # As in production (`memrelay up`): Milvus Lite runs as its own server process.
    data.mkdir(parents=True, exist_ok=True)
    milvus = EmbeddedMilvus(data / "milvus.db").start()
    settings_kw = {"data_dir": str(data), "log_json": False, "log_level": "WARNING", "milvus_uri": milvus.uri,
                   "redis_url": os.environ.get("MEMRELAY_REDIS_URL", "redis://127.0.0.1:6379/15")}
    settings = Settings(**settings_kw)
    settings.ensure_data_dir()
    engine = Services(settings)
    engine.migrate()
    org = engine.tenancy.get_or_create_org("bench")
    key, _ = engine.tenancy.create_key(org.id, scopes=["read", "write"], rate_limit_per_minute=10**9)
    from memrelay.gateway.app import create_app

    app = create_app(settings, services=engine)
    rows: list[tuple[str, str]] = []
    print(f"loading {args.memories:,} memories over {args.entities:,} entities into {data} ...", flush=True)
    load = load_corpus(engine, org.id, args.memories, args.entities)
    rows.append(("load: SQL insert + embeddings (s)", f"{load['load_sql_s']:.1f} (embedding {load['embed_s']:.1f})"))
    rows.append(("load: Milvus upsert + flush (s)", f"{load['index_s']:.1f}"))
    rows.append(("load: memories/s end to end", f"{args.memories / (load['load_sql_s'] + load['index_s']):,.0f}"))

    sc = bench_scoped(engine, app, key, org.id, args.entities, args.queries)
    for label, name in (("engine_cold", "scoped recall, engine, first call per entity"),
                        ("engine_warm", "scoped recall, engine, cached"),
                        ("engine_new_question", "scoped recall, engine, cached, a question not seen before"),
                        ("engine_uncached_names", "scoped recall, engine, cached vectors, names not cached"),
                        ("http_warm", "scoped recall, HTTP (Flask test client)"),
                        ("http_uncached_names", "scoped recall, HTTP, names not cached"),
                        ("scoring_only", "baseline: numpy exact cosine + top-10, same memories")):
        rows.append((f"{name} p50/p95 (ms)", f"{pct(sc[label], 50):.3f} / {pct(sc[label], 95):.3f}"))
    rows.append(("scoped recall engine p50 (question seen / new) vs goal 1 ms / HTTP p50 vs goal 5 ms",
                 f"{pct(sc['engine_warm'], 50):.3f} / {pct(sc['engine_new_question'], 50):.3f} / "
                 f"{pct(sc['http_warm'], 50):.3f}"))
    aw = bench_after_write(engine, org.id, args.entities, min(args.queries, args.entities // 2))
    rows.append(("scoped recall right after a new memory of the record p50/p95 (ms)",
                 f"{pct(aw['carried'], 50):.3f} / {pct(aw['carried'], 95):.3f}"))
    rows.append(("  same, unchanged memories analysed again (as before) p50/p95 (ms)",
                 f"{pct(aw['reanalysed'], 50):.3f} / {pct(aw['reanalysed'], 95):.3f}"))
    rows.append(("load average (1 min) after the scoped runs; 2 cores shared", f"{os.getloadavg()[0]:.2f}"))
    if args.scoped_only:
        _print(rows, args)
        engine.close()
        milvus.stop()
        if args.data_dir is None:
            shutil.rmtree(data, ignore_errors=True)
        return

    ow = bench_org_wide(engine, org.id, min(args.queries, 100))
    rows.append(("org-wide Milvus search p50/p95 (ms)", f"{pct(ow['milvus'], 50):.2f} / {pct(ow['milvus'], 95):.2f}"))
    rows.append(("org-wide numpy brute force p50/p95 (ms)", f"{pct(ow['brute'], 50):.2f} / {pct(ow['brute'], 95):.2f}"))
    rows.append(("org-wide top-10 overlap Milvus vs exact", f"{statistics.mean(ow['overlap']):.2f}"))
    rows.append(("org-wide smart-recall (engine, SQL re-check) p50/p95 (ms)",
                 f"{pct(ow['recall'], 50):.2f} / {pct(ow['recall'], 95):.2f}"))

    rows.append(("batch memorize, structured (rows/s)", f"{bench_batch(engine, org.id, args.batch_rows, False):,.0f}"))
    rows.append(("batch memorize, + 1 embedded text (rows/s)",
                 f"{bench_batch(engine, org.id, args.batch_rows, True):,.0f}"))

    engine.close()
    milvus.stop()  # cold start: a fresh Milvus Lite server and a fresh app process
    t = time.perf_counter()
    milvus = EmbeddedMilvus(data / "milvus.db").start()
    rows.append(("cold start: Milvus Lite server listening (s)", f"{time.perf_counter() - t:.2f}"))
    settings_kw["milvus_uri"] = milvus.uri
    script = COLD_START.format(root=str(ROOT), settings=json.dumps(settings_kw), key=key)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=1800)
    if proc.returncode == 0:
        cold = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append(("cold start: app ready (s)", f"{cold['app']:.2f}"))
        rows.append(("cold start: first scoped recall (s)", f"{cold['first_scoped']:.2f}"))
        rows.append(("cold start: first org-wide recall, incl. collection load (s)", f"{cold['first_org_wide']:.2f}"))
    else:
        rows.append(("cold start", "failed: " + proc.stderr.strip().splitlines()[-1]))

    _print(rows, args)
    milvus.stop()
    if args.data_dir is None:
        shutil.rmtree(data, ignore_errors=True)


def _print(rows: list[tuple[str, str]], args: argparse.Namespace) -> None:
    try:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"memrelay semantic bench — {args.memories:,} memories / {args.entities:,} entities")
        table.add_column("measure")
        table.add_column("value", justify="right")
        for r in rows:
            table.add_row(*r)
        Console(width=120).print(table)
    except ImportError:  # pragma: no cover
        for name, value in rows:
            print(f"{name:<62} {value}")


if __name__ == "__main__":
    main()
