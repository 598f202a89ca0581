"""Webhook accept path: memrelay (verify HubSpot v3 → event log → enqueue RQ job → 202) vs a bare Flask
handler that only LPUSHes the body to Redis — both under gunicorn with the same workers, same load.

The two apps are loaded in alternating rounds (``--rounds``) and each one's latencies pooled over its rounds, so
a burst of load from other processes on a shared machine falls on both rather than on whichever ran second.
The receiver limits are raised far above the load (the limiter still counts every delivery) so that no
delivery is refused with a 429.

Usage: .venv/bin/python bench/bench_webhooks.py [--requests 3000] [--concurrency 16] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from memrelay.composition import Services  # noqa: E402
from memrelay.connectors.hubspot.webhook import v3_signature  # noqa: E402
from memrelay.engine.core.settings import Settings  # noqa: E402
from memrelay.supervise.embedded import EmbeddedRedis  # noqa: E402

SECRET = "bench-secret"
WEB_WORKERS = os.environ.get("BENCH_WEB_WORKERS", "2")
THREADS = os.environ.get("BENCH_THREADS", "8")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url: str, timeout: float = 30) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            requests.get(url, timeout=15)
            return
        except (requests.ConnectionError, requests.ReadTimeout):
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def gunicorn(app: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "gunicorn", app, "--bind", f"127.0.0.1:{port}",
                             "--workers", WEB_WORKERS, "--worker-class", "gthread", "--threads", THREADS,
                             "--log-level", "warning"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def load(make_request, n: int, concurrency: int) -> tuple[float, list[float], int]:  # type: ignore[no-untyped-def]
    lat: list[float] = []
    errors = 0
    lock = threading.Lock()
    counter = iter(range(n))

    def run() -> None:
        nonlocal errors
        sess = requests.Session()
        for i in counter:
            url, body, headers = make_request(i)
            t = time.perf_counter()
            r = sess.post(url, data=body, headers=headers, timeout=30)
            dt = time.perf_counter() - t
            with lock:
                lat.append(dt)
                if r.status_code >= 300:
                    errors += 1

    t0 = time.perf_counter()
    threads = [threading.Thread(target=run) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, lat, errors


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds per app (requests split evenly)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="memrelay-whbench-"))
    rds = EmbeddedRedis(tmp / "redis" / "redis.sock").start()
    settings = Settings(data_dir=tmp / "data", redis_url=rds.url, milvus_uri=str(tmp / "milvus.db"), log_level="WARNING")
    eng = Services(settings)
    eng.migrate()
    org = eng.tenancy.create_org("bench")
    src = eng.sources.create(org.id, connector="hubspot", secret=SECRET, config={"fetch": False})
    eng.close()
    env = {**os.environ, "MEMRELAY_DATA_DIR": str(tmp / "data"), "MEMRELAY_REDIS_URL": rds.url,
           "MEMRELAY_MILVUS_URI": str(tmp / "milvus.db"), "MEMRELAY_LOG_LEVEL": "WARNING", "BASELINE_REDIS_URL": rds.url,
           "MEMRELAY_WEBHOOK_RATE_LIMIT_PER_ADDRESS": "10000000", "MEMRELAY_WEBHOOK_RATE_LIMIT_PER_SOURCE": "10000000"}
    mp, bp = free_port(), free_port()
    procs = [gunicorn("memrelay.gateway.wsgi:app", mp, env), gunicorn("bench.baseline_webhook_app:app", bp, env)]
    try:
        wait_up(f"http://127.0.0.1:{mp}/healthz")
        wait_up(f"http://127.0.0.1:{bp}/hook")
        path = src["webhookPath"]
        murl = f"http://127.0.0.1:{mp}{path}"

        def memrelay_req(i: int):  # type: ignore[no-untyped-def]
            body = json.dumps([{"eventId": i, "subscriptionId": 1, "portalId": 1, "occurredAt": 1700000000000 + i,
                                "subscriptionType": "contact.propertyChange", "objectId": i % 500,
                                "propertyName": "jobtitle", "propertyValue": f"t{i}", "attemptNumber": 0}]).encode()
            ts = str(int(time.time() * 1000))
            return murl, body, {"Content-Type": "application/json", "X-HubSpot-Request-Timestamp": ts,
                                "X-HubSpot-Signature-v3": v3_signature(SECRET, "POST", murl, body, ts)}

        def baseline_req(i: int):  # type: ignore[no-untyped-def]
            body = json.dumps([{"eventId": i, "objectId": i % 500}]).encode()
            return f"http://127.0.0.1:{bp}/hook", body, {"Content-Type": "application/json"}

        load(memrelay_req, 200, args.concurrency)  # warm-up
        load(baseline_req, 200, args.concurrency)
        m_s = b_s = 0.0
        m_lat: list[float] = []
        b_lat: list[float] = []
        m_err = b_err = 0
        per_round = max(1, args.requests // args.rounds)
        for r in range(args.rounds):
            secs, lat, err = load(lambda i, r=r: memrelay_req(1_000_000 * (r + 1) + i), per_round, args.concurrency)
            m_s, m_err = m_s + secs, m_err + err
            m_lat += lat
            secs, lat, err = load(baseline_req, per_round, args.concurrency)
            b_s, b_err = b_s + secs, b_err + err
            b_lat += lat
        total = per_round * args.rounds
        print(f"\nwebhook accept — {total} requests per app in {args.rounds} alternating rounds, concurrency "
              f"{args.concurrency}, gunicorn {WEB_WORKERS}x{THREADS} gthread (both apps)")
        for name, secs, lat, err in (("memrelay (verify+log+enqueue)", m_s, m_lat, m_err),
                                     ("baseline (bare Flask LPUSH)", b_s, b_lat, b_err)):
            print(f"{name:32} {total / secs:8.0f} req/s   p50 {pct(lat, 50):6.2f} ms   "
                  f"p99 {pct(lat, 99):6.2f} ms   errors {err}")
        print(f"memrelay / baseline throughput: {b_s / m_s:.0%} (goal >= 50 %);  p99 memrelay / baseline: "
              f"{pct(m_lat, 99) / pct(b_lat, 99):.2f}x (goal <= 1.5x)")
    finally:
        for p in procs:
            p.terminate()
            p.wait()
        rds.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
