"""Memory of `memrelay up` with N memories: per-process RSS, PSS and USS (psutil ``memory_full_info``), summed over
the process tree, and the tree's distinct resident pages (every physical page once, from ``/proc/<pid>/pagemap``;
needs root), with Milvus Lite started on demand (the default) next to it started eagerly
(``MEMRELAY_MILVUS_LAZY=0``, the behaviour before issue 16), in the same run and data dir.

Seeding writes N memories (``--records`` records × N/records memories each) straight through the engine
(:func:`memrelay.engine.memory.batch.memorize_many`, verbatim texts: one embedder call and one transaction per
batch) into a temp data dir (or ``--data``, seeded once and reused); each configuration then starts `memrelay up`
(default: 2 web workers, 2 RQ workers, as memrelay's defaults), waits for ``/readyz``, lets the eager
configuration's workers index every pending memory into Milvus, runs ``--load`` rounds of org-wide and scoped
recalls per web worker, and measures. Goal (issue 16): ≤ 1 GB total (measured before: 2,452 MB, Milvus Lite
1,058 MB).

RSS counts a page shared by several processes once in each of them: the web workers and the RQ workers are
forked from `up`'s warm parent (its supervisor; no gunicorn master), so all share the modules, embedder weights
and token encoding loaded before the fork, and every web worker maps the same org-wide vector file. PSS divides each
shared page among its sharers, so the PSS total is the memory the tree really holds; USS is each process's own
pages, and "distinct pages" = USS sum + the shared pages counted once. ``--detail`` prints, per process, anonymous
and file-backed PSS and the mappings holding most.

The kernel's own count: where the cgroup v1 memory controller is writable (``/sys/fs/cgroup/memory``, as root
here), `memrelay up` starts in a memory cgroup of its own, and the bench prints what the kernel charges the tree
— what a container's memory limit (``docker run -m``) counts: anonymous memory and page cache, every page once,
and the peak. Before the start the data dir's files are dropped from the page cache (``POSIX_FADV_DONTNEED``) so
the tree's own reads of them are charged to it; library files the bench process itself has mapped stay cached
and are not charged (at most the per-process "shared clean" figure of ``--detail``). ``--limit-mb 1024`` also
sets that limit as a hard one (memory and memory+swap) and reports whether any process of the tree was
OOM-killed while it served the load.

Usage: .venv/bin/python bench/bench_rss.py [--memories 50000] [--records 5000] [--data DIR] [--lazy-only]
       [--load 1] [--concurrency 1] [--workers 2] [--web-workers 2] [--detail] [--limit-mb 1024]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import signal
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from memrelay.engine.memory.batch import memorize_many  # noqa: E402
from memrelay.engine.memory.memories import MemorizeRequest  # noqa: E402
from tests.support.up_data import open_up_data_dir  # noqa: E402

TOPICS = ["runs its data platform on {}", "evaluates {} for analytics", "migrated billing to {}",
          "plans a pilot of {} next quarter", "has a budget of ${}k for tooling", "hired {} new engineers",
          "uses {} for observability", "renewed its {} contract", "complained about {} latency",
          "asked for a {} integration"]
WORDS = ["Kafka", "Snowflake", "PostgreSQL", "Datadog", "BigQuery", "Redis", "Spark", "Airflow", "Looker", "dbt",
         "Kubernetes", "Terraform", "Okta", "Stripe", "Segment", "Mixpanel", "Grafana", "Vault", "Flink", "Trino"]


def seed(data_dir: Path, n_memories: int, n_records: int) -> float:
    # Not indexed while seeding (as under `memrelay up` with Milvus on demand): an on-demand Milvus that is not
    # running leaves the memories pending; the eager configuration's workers index them at start.
    eng, org_id = open_up_data_dir(data_dir)
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
    for key, name in (("milvus_lite", "milvus-lite"), ("redis-server", "redis"), ("gunicorn: worker", "web-worker"),
                      ("gunicorn", "gunicorn"),
                      (" worker", "rq-worker"), (" up", "supervisor")):
        if key in cmd:
            return name
    return p.name()


Row = tuple[str, int, float, float, float]  # label, pid, RSS, PSS, USS (MB)


def measure(pid: int) -> list[Row]:
    rows = []
    for p in tree(pid):
        try:
            info = p.memory_full_info()
            rows.append((label(p), p.pid, info.rss / 2**20, getattr(info, "pss", info.rss) / 2**20,
                         getattr(info, "uss", info.rss) / 2**20))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return sorted(rows)


PAGE = os.sysconf("SC_PAGE_SIZE")


def frames(pid: int) -> set[int] | None:
    """The physical page frames ``pid`` has resident (``/proc/<pid>/pagemap``; needs root, else None)."""
    out: set[int] = set()
    try:
        maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
        with open(f"/proc/{pid}/pagemap", "rb") as pm:
            for line in maps:
                lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
                if "[vsyscall]" in line:
                    continue
                pm.seek(lo // PAGE * 8)
                data = pm.read((hi - lo) // PAGE * 8)
                for (e,) in struct.iter_unpack("<Q", data):
                    if e >> 63 & 1:
                        pfn = e & ((1 << 55) - 1)
                        if not pfn:
                            return None  # PFNs hidden (not root)
                        out.add(pfn)
    except (OSError, ValueError):
        return None
    return out


def tree_footprint(pid: int) -> float | None:
    """MB of distinct resident pages of the whole tree: every page once, however many processes map it."""
    union: set[int] = set()
    for p in tree(pid):
        f = frames(p.pid)
        if f is None:
            return None
        union |= f
    return len(union) * PAGE / 2**20


def rollup(pid: int) -> dict[str, float]:
    """``/proc/<pid>/smaps_rollup`` in MB (Pss_Anon, Pss_File, Anonymous, Shared_Clean, ...)."""
    out = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, rest = line.partition(":")
        out[key] = int(rest.split()[0]) / 1024
    return out


def top_mappings(pid: int, n: int = 12) -> list[tuple[float, float, str]]:
    """The mappings of ``pid`` holding most PSS, summed per path (anonymous ones per kind): (PSS, RSS, name)."""
    agg: dict[str, list[float]] = {}
    name = "?"
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split()
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            name = head[5] if len(head) > 5 else "[anon]"
            name = re.sub(r"/.*/site-packages/", "site-packages/", name)
            agg.setdefault(name, [0.0, 0.0])
        elif head[0] == "Pss:":
            agg[name][0] += int(head[1]) / 1024
        elif head[0] == "Rss:":
            agg[name][1] += int(head[1]) / 1024
    return sorted(((v[0], v[1], k) for k, v in agg.items()), reverse=True)[:n]


def detail(pid: int) -> None:
    for p in tree(pid):
        try:
            r = rollup(p.pid)
            print(f"  {label(p):12} {p.pid:7d}  PSS anon {r['Pss_Anon']:6.1f} file {r['Pss_File']:6.1f}  "
                  f"private dirty {r['Private_Dirty']:6.1f} shared clean {r['Shared_Clean']:6.1f} "
                  f"shared dirty {r['Shared_Dirty']:6.1f}")
            for pss, rss, name in top_mappings(p.pid, 6):
                print(f"      PSS {pss:6.1f}  RSS {rss:6.1f}  {name}")
        except (OSError, psutil.NoSuchProcess):
            continue


CGROUP_ROOT = Path("/sys/fs/cgroup/memory")


class MemoryCgroup:
    """A cgroup v1 memory controller group for the `memrelay up` tree (None from :meth:`create` where it is not
    writable): what the kernel charges the tree, every page once, anonymous and page cache."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, tag: str, limit_mb: int | None) -> MemoryCgroup | None:
        path = CGROUP_ROOT / f"memrelay-bench-{os.getpid()}-{tag}"
        try:
            path.mkdir()
            if limit_mb:
                for name in ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes"):
                    if (path / name).exists():
                        (path / name).write_text(str(limit_mb * 2**20))
        except OSError:
            return None
        return cls(path)

    def enter(self) -> None:
        """Move the calling process (a child before its exec) into the group."""
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def stat(self) -> dict[str, float]:
        """MB: ``usage``, ``peak``, ``anon`` (total_rss), ``cache``, ``mapped_file``; ``oom_kills`` a count."""
        st = dict(line.split() for line in (self.path / "memory.stat").read_text().splitlines())
        oom = dict(line.split() for line in (self.path / "memory.oom_control").read_text().splitlines())
        mb = 2**20
        return {"usage": int((self.path / "memory.usage_in_bytes").read_text()) / mb,
                "peak": int((self.path / "memory.max_usage_in_bytes").read_text()) / mb,
                "anon": int(st["total_rss"]) / mb, "cache": int(st["total_cache"]) / mb,
                "mapped_file": int(st["total_mapped_file"]) / mb, "oom_kills": float(oom.get("oom_kill", 0))}

    def remove(self) -> None:
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except OSError:  # the tree's last processes are still leaving
                time.sleep(0.2)


def drop_cached(directory: Path) -> None:
    """Drop the clean page-cache pages of the files under ``directory`` (so the next reader is charged them)."""
    for f in directory.rglob("*"):
        if f.is_file():
            with contextlib.suppress(OSError):
                fd = os.open(f, os.O_RDONLY)
                try:
                    os.fdatasync(fd)
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                finally:
                    os.close(fd)


def index_states(data_dir: Path) -> dict[str, int]:
    with sqlite3.connect(data_dir / "memrelay.db") as c:
        return dict(c.execute("SELECT index_state, count(*) FROM memories GROUP BY index_state").fetchall())


Measured = tuple[list[Row], float | None, dict[str, float] | None]  # rows, distinct pages (MB), cgroup stat


def run_up(cwd: Path, *, lazy: bool, port: int, wait_indexed: bool, workers: int = 2,
           web_workers: int = 2, load: int = 0, concurrency: int = 1, show_detail: bool = False,
           limit_mb: int | None = None) -> Measured:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMRELAY_")}
    env.update(MEMRELAY_PORT=str(port), MEMRELAY_WORKERS=str(workers), MEMRELAY_WEB_WORKERS=str(web_workers),
               MEMRELAY_MILVUS_LAZY="1" if lazy else "0", MEMRELAY_LOG_LEVEL="WARNING")
    log = open(cwd / f"up-{'lazy' if lazy else 'eager'}.log", "wb")
    data = cwd / ".memrelay"
    group = MemoryCgroup.create("lazy" if lazy else "eager", limit_mb)
    if group is not None:
        drop_cached(data)
    proc = subprocess.Popen([sys.executable, "-m", "memrelay.cli.main", "up"], cwd=cwd, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True,
                            preexec_fn=group.enter if group is not None else None)
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
        queries = ["which accounts run on Kafka?", "budget for tooling", "observability vendor"]
        # Every web worker should have served org-wide and scoped recalls: send enough, from ``concurrency``
        # clients at once (a web worker serves up to 8 requests in parallel threads), that all get some.

        def one(i: int) -> None:
            q = queries[i % len(queries)]
            r = requests.post(f"{base}/smart-recall", json={"query": q}, headers=auth, timeout=120)
            assert r.status_code == 200, r.text
            n = random.Random(i).randrange(1000)
            r = requests.post(f"{base}/smart-recall", json={"query": q, "email": f"person{n}@corp{n}.example",
                                                            "type": "contact"}, headers=auth, timeout=60)
            assert r.status_code == 200, r.text

        with ThreadPoolExecutor(max(1, concurrency)) as pool:
            list(pool.map(one, range(max(1, load) * 2 * web_workers * max(1, concurrency))))
        time.sleep(2)
        rows = measure(proc.pid)
        footprint = tree_footprint(proc.pid)
        if show_detail:
            detail(proc.pid)
        return rows, footprint, group.stat() if group is not None else None
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(120)
        if group is not None:
            group.remove()


def show(title: str, measured: Measured, limit_mb: int | None = None) -> tuple[float, float]:
    rows, footprint, charged = measured
    print(title)
    for name, pid, rss, pss, uss in rows:
        print(f"  {name:14} pid {pid:7d}  RSS {rss:8.1f} MB  PSS {pss:8.1f} MB  USS {uss:8.1f} MB")
    rss, pss, uss = (sum(r[i] for r in rows) for i in (2, 3, 4))
    print(f"  {'total':14} {'':11}  RSS {rss:8.1f} MB  PSS {pss:8.1f} MB  USS {uss:8.1f} MB")
    if footprint is not None:
        print(f"  distinct resident pages of the tree (each page once): {footprint:.1f} MB "
              f"= USS sum {uss:.1f} + shared-once {footprint - uss:.1f}", flush=True)
    if charged is not None:
        print(f"  kernel's charge for the tree (its memory cgroup{f', hard limit {limit_mb} MB' if limit_mb else ''}):"
              f" {charged['usage']:.1f} MB = anonymous {charged['anon']:.1f} + page cache {charged['cache']:.1f}"
              f" (mapped {charged['mapped_file']:.1f}); peak {charged['peak']:.1f} MB;"
              f" OOM kills {charged['oom_kills']:.0f}", flush=True)
    return rss, pss


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--memories", type=int, default=50_000)
    ap.add_argument("--records", type=int, default=5_000)
    ap.add_argument("--port", type=int, default=18931)
    ap.add_argument("--workers", type=int, default=2, help="RQ workers (memrelay's default: 2)")
    ap.add_argument("--web-workers", type=int, default=2, help="gunicorn workers (memrelay's default: 2)")
    ap.add_argument("--data", type=Path, default=None,
                    help="working dir to reuse (seeded on first use: <data>/.memrelay)")
    ap.add_argument("--lazy-only", action="store_true", help="skip the eager-Milvus configuration")
    ap.add_argument("--load", type=int, default=1, help="rounds of recalls per web worker before measuring")
    ap.add_argument("--concurrency", type=int, default=1, help="clients sending the recalls at once")
    ap.add_argument("--detail", action="store_true", help="print anon/file PSS and top mappings per process")
    ap.add_argument("--limit-mb", type=int, default=None,
                    help="run each `memrelay up` under this hard memory limit (its cgroup; root only)")
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}", flush=True)
    procs = {"workers": args.workers, "web_workers": args.web_workers, "load": args.load,
             "concurrency": args.concurrency, "show_detail": args.detail, "limit_mb": args.limit_mb}
    cwd = args.data or Path(tempfile.mkdtemp(prefix="memrelay-bench-rss-"))
    cwd.mkdir(parents=True, exist_ok=True)
    if not (cwd / ".memrelay" / "memrelay.db").exists():
        seed(cwd / ".memrelay", args.memories, args.records)
    lazy = show("memrelay up, Milvus Lite on demand (default):", run_up(cwd, lazy=True, port=args.port,
                                                                         wait_indexed=False, **procs), args.limit_mb)
    goal = f"goal ≤ 1024 MB: RSS {'met' if lazy[0] <= 1024 else 'NOT met'}, PSS {'met' if lazy[1] <= 1024 else 'NOT met'}"
    if args.lazy_only:
        print(f"lazy: RSS {lazy[0]:.0f} MB, PSS {lazy[1]:.0f} MB; {goal}")
    else:
        eager = show("memrelay up, Milvus Lite at start (MEMRELAY_MILVUS_LAZY=0, before):",
                     run_up(cwd, lazy=False, port=args.port, wait_indexed=True, **procs), args.limit_mb)
        print(f"lazy / eager: RSS {lazy[0]:.0f} / {eager[0]:.0f} MB, PSS {lazy[1]:.0f} / {eager[1]:.0f} MB; {goal}")
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}", flush=True)


if __name__ == "__main__":
    main()
