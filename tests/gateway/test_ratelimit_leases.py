"""Webhook receiver limits lease their budget from Redis in blocks (issue 16: the accept path skips most
rate-limit round trips): across processes the shared counter still never admits more than the limit, small
limits are counted one request at a time, and a new window starts from nothing."""

from __future__ import annotations

import multiprocessing
import threading
import uuid

import redis

from memrelay.gateway.ratelimit import MAX_BLOCK, LeasedWindows
from memrelay.supervise.embedded import EmbeddedRedis


def _take_until_refused(url: str, key: str, limit: int, window: int, attempts: int) -> tuple[int, int]:
    """One process: ``attempts`` deliveries against the shared counter; (admitted, Redis round trips)."""
    windows = LeasedWindows(redis.Redis.from_url(url))
    admitted = sum(bool(windows.take([(key, limit)], window)[0]) for _ in range(attempts))  # type: ignore[index]
    return admitted, windows.round_trips


def test_processes_sharing_a_counter_never_admit_more_than_the_limit(private_redis: EmbeddedRedis) -> None:
    key, limit, procs = f"test:rl:{uuid.uuid4().hex}", 1500, 3
    ctx = multiprocessing.get_context("spawn")  # real, separate processes with their own leases
    with ctx.Pool(procs) as pool:
        results = pool.starmap(_take_until_refused, [(private_redis.url, key, limit, 7, 700)] * procs)
    admitted = sum(a for a, _ in results)
    assert admitted <= limit  # 2,100 asked for
    assert admitted >= limit - procs * (MAX_BLOCK - 1)  # what leases can strand: unused slots of a block
    refused = procs * 700 - admitted  # each refusal asked Redis (one slot at a time past the limit)
    assert sum(rt for _, rt in results) - refused < admitted / 4  # most admissions took no round trip


def test_threads_of_one_process_share_its_leases(private_redis: EmbeddedRedis) -> None:
    key, limit = f"test:rl:{uuid.uuid4().hex}", 1000
    windows = LeasedWindows(redis.Redis.from_url(private_redis.url))
    other = LeasedWindows(redis.Redis.from_url(private_redis.url))  # another process on the same counter
    admitted = [0] * 8
    lock = threading.Lock()

    def run(i: int) -> None:
        mine = windows if i % 2 else other
        for _ in range(200):
            ok = mine.take([(key, limit)], 3)
            assert ok is not None
            if ok[0]:
                with lock:
                    admitted[i] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert limit - 2 * (MAX_BLOCK - 1) <= sum(admitted) <= limit


def test_a_small_limit_is_counted_one_delivery_at_a_time(private_redis: EmbeddedRedis) -> None:
    client = redis.Redis.from_url(private_redis.url)
    a, b = LeasedWindows(client), LeasedWindows(client)
    key = f"test:rl:{uuid.uuid4().hex}"
    got = [x.take([(key, 5)], 1) for x in (a, b, a, b, a, b, a)]
    assert [g[0] for g in got if g] == [True] * 5 + [False, False]
    assert int(client.get(key) or 0) == 7  # every attempt counted, as one INCR per request would
    assert a.round_trips + b.round_trips == 7


def test_each_counter_of_a_delivery_is_taken_and_a_new_window_starts_afresh(
    private_redis: EmbeddedRedis,
) -> None:
    client = redis.Redis.from_url(private_redis.url)
    windows = LeasedWindows(client)
    addr, src = f"test:rl:a:{uuid.uuid4().hex}", f"test:rl:s:{uuid.uuid4().hex}"
    assert windows.take([(addr, 2), (src, 3)], 10) == [True, True]
    assert windows.take([(addr, 2), (src, 3)], 10) == [True, True]
    assert windows.take([(addr, 2), (src, 3)], 10) == [False, True]
    assert windows.take([(addr, 2), (src, 3)], 10) == [False, False]
    assert windows.take([(addr + ":11", 2), (src + ":11", 3)], 11) == [True, True]  # the next minute's keys


def test_an_unreachable_redis_admits(tmp_path) -> None:  # type: ignore[no-untyped-def]
    windows = LeasedWindows(redis.Redis(unix_socket_path=str(tmp_path / "none.sock"), socket_timeout=0.5))
    assert windows.take([("test:rl:x", 1)], 1) is None
