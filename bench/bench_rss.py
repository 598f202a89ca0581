"""Memory of `memrelay up` with N memories: per-process RSS and PSS (psutil ``memory_full_info``), summed over
the process tree, with Milvus Lite started on demand (the default) next to it started eagerly
(``MEMRELAY_MILVUS_LAZY=0``, the behaviour before issue 16), in the same run and data dir.

Seeding writes N memories (``--records`` records × N/records memories each) straight through the engine
(:func:`memrelay.engine.memory.batch.memorize_many`, verbatim texts: one embedder call and one transaction per
batch) into a temp data dir; each configuration then starts `memrelay up` (default: 2 web workers, 2 RQ workers, as memrelay's defaults), waits for
``/readyz``, lets the eager configuration's workers index every pending memory into Milvus, runs a few org-wide
and scoped recalls, and measures. Goal (issue 16): ≤ 1 GB total (measured before: 2,452 MB, Milvus Lite 1,058 MB).

RSS counts a page shared by several processes once in each of them (the RQ workers forked from ``up``, and the
gunicorn workers from their master, share the modules, embedder weights and token encoding loaded before the
fork, and every process maps the same org-wide vector file); PSS divides each shared page among its sharers, so
the PSS total is the memory the tree really holds.

Usage: .venv/bin/python bench/bench_rss.py [--memories 50000] [--records 5000]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from memrelay.composition import Services  # noqa: E402
from memrelay.engine.core.settings import Settings  # noqa: E402
from memrelay.engine.memory.batch import memorize_many  # noqa: E402
from memrelay.engine.memory.memories import MemorizeRequest  # noqa: E402
from memrelay.supervise.supervisor import ensure_admin_key  # noqa: E402

TOPICS = ["runs its data platform on {}", "evaluates {} for analytics", "migrated billing to {}",
          "plans a pilot of {} next quarter", "has a budget of ${}k for tooling", "hired {} new engineers",
          "uses {} for observability", "renewed its {} contract", "complained about {} latency",
          "asked for a {} integration"]
WORDS = ["Kafka", "Snowflake", "PostgreSQL", "Datadog", "BigQuery", "Redis", "Spark", "Airflow", "Looker", "dbt",
         "Kubernetes", "Terraform", "Okta", "Stripe", "Segment", "Mixpanel", "Grafana", "Vault", "Flink", "Trino"]


def seed(data_dir: Path, n_memories: int, n_records: int) -> float:
    # Not indexed while seeding (as under `memrelay up` with Milvus on demand): an on-demand Milvus that is not
    # running leaves the memories pending; the eager configuration's workers index them at start.
    settings = Settings(data_dir=data_dir, redis_url="redis://unused", log_json=False, log_level="WARNING",
                        milvus_uri="http://127.0.0.1:9", milvus_wanted_file=str(data_dir / "seed.wanted"))
    settings.ensure_data_dir()
    eng = Services(settings)
    eng.migrate()
    ensure_admin_key(eng, settings)
    org_id = eng.tenancy.get_or_create_org("default").id
    rnd = random.Random(7)
    per = max(1, n_memories // n_records)
    t0 = time.perf_counter()
    batch: list[MemorizeRequest] = []
    written = 0
    for r in range(n_records):
        for k in range(per):
            text = (f"Company {r} " + TOPICS[(r + k) % len(TOPICS)].format(rnd.choice(WORDS) if k % 5 != 4
                                                                           else rnd.randint(10, 999))
                    + f" (note {k} of account {r}).")
            batch.append(MemorizeRequest(content=text, identifiers={"type": "contact",
                                                                    "email": f"person{r}@corp{r}.example"},
                                         verbatim=True, source="bench"))
        if len(batch) >= 2000 or r == n_records - 1:
            written += memorize_many(eng.memories, org_id, batch).memories_created
            batch = []
    eng.close()
    print(f"seeded {written} memories on {n_records} records in {time.perf_counter() - t0:.0f} s", flush=True)
    return time.perf_counter() - t0


def tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def label(p: psutil.Process) -> str:
    if p.name() == "memrelay-worker":  # forked by `memrelay up` from its warm parent: the command line is up's
        return "rq-worker"
    cmd = " ".join(p.cmdline())
    for key, name in (("milvus_lite", "milvus-lite"), ("redis-server", "redis"), ("gunicorn", "gunicorn"),
                      (" worker", "rq-worker"), (" up", "supervisor")):
        if key in cmd:
            return name
    return p.name()


def measure(pid: int) -> list[tuple[str, int, float, float]]:
    rows = []
    for p in tree(pid):
        try:
            info = p.memory_full_info()
            rows.append((label(p), p.pid, info.rss / 2**20, getattr(info, "pss", info.rss) / 2**20))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return sorted(rows)


def index_states(data_dir: Path) -> dict[str, int]:
    with sqlite3.connect(data_dir / "memrelay.db") as c:
        return dict(c.execute("SELECT index_state, count(*) FROM memories GROUP BY index_state").fetchall())


def run_up(cwd: Path, *, lazy: bool, port: int, wait_indexed: bool, workers: int = 2,
           web_workers: int = 2) -> list[tuple[str, int, float, float]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMRELAY_")}
    env.update(MEMRELAY_PORT=str(port), MEMRELAY_WORKERS=str(workers), MEMRELAY_WEB_WORKERS=str(web_workers),
               MEMRELAY_MILVUS_LAZY="1" if lazy else "0", MEMRELAY_LOG_LEVEL="WARNING")
    log = open(cwd / f"up-{'lazy' if lazy else 'eager'}.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "memrelay.cli.main", "up"], cwd=cwd, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    data = cwd / ".memrelay"
    try:
        t0 = time.monotonic()
        while time.monotonic() - t0 < 300:
            try:
                if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if proc.poll() is not None:
                raise SystemExit(f"memrelay up exited: see {log.name}")
            time.sleep(0.5)
        print(f"  ready after {time.monotonic() - t0:.0f} s", flush=True)
        if wait_indexed:
            deadline = time.monotonic() + 900
            while time.monotonic() < deadline and set(index_states(data)) - {"indexed"}:
                time.sleep(5)
            print(f"  index states {index_states(data)} after {time.monotonic() - t0:.0f} s", flush=True)
        auth = {"Authorization": f"Bearer {(data / 'admin_key').read_text().strip()}"}
        base = f"http://127.0.0.1:{port}/api/v1"
        for q in ("which accounts run on Kafka?", "budget for tooling", "observability vendor"):
            r = requests.post(f"{base}/smart-recall", json={"query": q}, headers=auth, timeout=120)
            assert r.status_code == 200, r.text
            r = requests.post(f"{base}/smart-recall", json={"query": q, "email": "person7@corp7.example",
                                                            "type": "contact"}, headers=auth, timeout=60)
            assert r.status_code == 200, r.text
        time.sleep(2)
        return measure(proc.pid)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(120)


def show(title: str, rows: list[tuple[str, int, float, float]]) -> tuple[float, float]:
    print(title)
    for name, pid, rss, pss in rows:
        print(f"  {name:14} pid {pid:7d}  RSS {rss:8.1f} MB  PSS {pss:8.1f} MB")
    rss, pss = sum(r[2] for r in rows), sum(r[3] for r in rows)
    print(f"  {'total':14} {'':11}  RSS {rss:8.1f} MB  PSS {pss:8.1f} MB", flush=True)
    return rss, pss


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--memories", type=int, default=50_000)
    ap.add_argument("--records", type=int, default=5_000)
    ap.add_argument("--port", type=int, default=18931)
    ap.add_argument("--workers", type=int, default=2, help="RQ workers (memrelay's default: 2)")
    ap.add_argument("--web-workers", type=int, default=2, help="gunicorn workers (memrelay's default: 2)")
    args = ap.parse_args()
    procs = {"workers": args.workers, "web_workers": args.web_workers}
    cwd = Path(tempfile.mkdtemp(prefix="memrelay-bench-rss-"))
    seed(cwd / ".memrelay", args.memories, args.records)
    lazy = show("memrelay up, Milvus Lite on demand (default):", run_up(cwd, lazy=True, port=args.port,
                                                                         wait_indexed=False, **procs))
    eager = show("memrelay up, Milvus Lite at start (MEMRELAY_MILVUS_LAZY=0, before):",
                 run_up(cwd, lazy=False, port=args.port, wait_indexed=True, **procs))
    print(f"lazy / eager: RSS {lazy[0]:.0f} / {eager[0]:.0f} MB, PSS {lazy[1]:.0f} / {eager[1]:.0f} MB;"
          f" goal ≤ 1024 MB: RSS {'met' if lazy[0] <= 1024 else 'NOT met'}, PSS {'met' if lazy[1] <= 1024 else 'NOT met'}")


if __name__ == "__main__":
    main()
