"""In-process cache backend: TTL, single-flight, negative caching, atomic limits, debounce, bounds."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from vpsbridge.cache import MemoryCache


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_ttl_expiry_with_clock() -> None:
    clock = FakeClock()
    cache = MemoryCache(clock=clock)
    await cache.set("a", {"x": [1, 2]}, ttl=10)
    await cache.set("forever", 1, ttl=None)
    await cache.set("never", 1, ttl=0)
    assert await cache.get("a") == {"x": [1, 2]}
    clock.now += 9.9
    assert await cache.get("a") == {"x": [1, 2]}
    clock.now += 0.2
    assert await cache.get("a") is None
    assert await cache.get("forever") == 1
    assert await cache.get("never") is None
    await cache.delete("forever")
    assert await cache.get("forever") is None


async def test_values_are_json_copies() -> None:
    cache = MemoryCache()
    value = {"list": [1]}
    await cache.set("k", value, ttl=10)
    value["list"].append(2)
    assert await cache.get("k") == {"list": [1]}
    assert await cache.get_or_fetch("t", 10, _const((1, 2))) == [1, 2]
    with pytest.raises(TypeError):
        await cache.set("bad", object(), ttl=10)


def _const(value: object):  # type: ignore[no-untyped-def]
    async def fetch() -> object:
        return value

    return fetch


async def test_single_flight_100_concurrent_callers_one_fetch() -> None:
    cache = MemoryCache()
    calls = 0

    async def fetch() -> dict[str, int]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return {"n": 42}

    results = await asyncio.gather(*(cache.get_or_fetch("srv:1", 30, fetch) for _ in range(100)))
    assert calls == 1
    assert all(r == {"n": 42} for r in results)
    assert await cache.get_or_fetch("srv:1", 30, fetch) == {"n": 42}
    assert calls == 1


async def test_single_flight_error_reaches_all_waiters_and_is_not_cached() -> None:
    cache = MemoryCache()
    calls = 0

    async def failing() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.02)
        raise RuntimeError("upstream down")

    results = await asyncio.gather(
        *(cache.get_or_fetch("k", 30, failing) for _ in range(10)), return_exceptions=True
    )
    assert calls == 1
    assert all(isinstance(r, RuntimeError) for r in results)

    async def ok() -> int:
        return 5

    assert await cache.get_or_fetch("k", 30, ok) == 5


async def test_cancelled_waiter_does_not_cancel_shared_fetch() -> None:
    cache = MemoryCache()
    started = asyncio.Event()

    async def fetch() -> str:
        started.set()
        await asyncio.sleep(0.05)
        return "done"

    first = asyncio.create_task(cache.get_or_fetch("k", 30, fetch))
    await started.wait()
    second = asyncio.create_task(cache.get_or_fetch("k", 30, fetch))
    await asyncio.sleep(0)
    first.cancel()
    assert await second == "done"
    assert first.cancelled()


async def test_negative_ttl_caches_none_only_when_asked() -> None:
    clock = FakeClock()
    cache = MemoryCache(clock=clock)
    calls = 0

    async def missing() -> None:
        nonlocal calls
        calls += 1

    assert await cache.get_or_fetch("gone", 30, missing) is None
    assert await cache.get_or_fetch("gone", 30, missing) is None
    assert calls == 2  # not cached without negative_ttl
    assert await cache.get_or_fetch("gone", 30, missing, negative_ttl=5) is None
    assert await cache.get_or_fetch("gone", 30, missing, negative_ttl=5) is None
    assert calls == 3
    clock.now += 5.1
    assert await cache.get_or_fetch("gone", 30, missing, negative_ttl=5) is None
    assert calls == 4


async def test_rate_limit_atomic_under_concurrency() -> None:
    cache = MemoryCache()
    decisions = await asyncio.gather(*(cache.hit("login:1.2.3.4", 10, 60) for _ in range(50)))
    allowed = [d for d in decisions if d.allowed]
    assert len(allowed) == 10
    assert sorted(d.remaining for d in allowed) == list(range(10))
    denied = [d for d in decisions if not d.allowed]
    assert all(0 < d.retry_after <= 60 and d.remaining == 0 for d in denied)


def test_rate_limit_atomic_across_threads_and_loops() -> None:
    cache = MemoryCache()
    barrier = threading.Barrier(4)

    def worker() -> int:
        async def run() -> int:
            barrier.wait()
            results = await asyncio.gather(*(cache.hit("k", 10, 60) for _ in range(25)))
            return sum(r.allowed for r in results)

        return asyncio.run(run())

    with ThreadPoolExecutor(4) as pool:
        total = sum(pool.map(lambda _: worker(), range(4)))
    assert total == 10


async def test_rate_limit_window_resets() -> None:
    clock = FakeClock()
    cache = MemoryCache(clock=clock)
    assert (await cache.hit("k", 2, 10)).allowed
    assert (await cache.hit("k", 2, 10)).allowed
    third = await cache.hit("k", 2, 10)
    assert not third.allowed
    assert third.retry_after == pytest.approx(10)
    clock.now += 4
    assert (await cache.hit("k", 2, 10)).retry_after == pytest.approx(6)
    clock.now += 6
    assert (await cache.hit("k", 2, 10)).allowed


async def test_debounce() -> None:
    clock = FakeClock()
    cache = MemoryCache(clock=clock)
    results = await asyncio.gather(*(cache.debounce("stock:7", 5) for _ in range(20)))
    assert results.count(True) == 1
    clock.now += 4.9
    assert not await cache.debounce("stock:7", 5)
    clock.now += 0.2
    assert await cache.debounce("stock:7", 5)
    assert await cache.debounce("stock:8", 5)


async def test_max_entries_bounds_memory() -> None:
    cache = MemoryCache(max_entries=100)
    for i in range(250):
        await cache.set(f"k{i}", i, ttl=60)
    assert len(cache) <= 100
    assert await cache.get("k249") == 249
    assert await cache.get("k0") is None


async def test_ping_and_close() -> None:
    cache = MemoryCache()
    await cache.set("k", 1, 10)
    assert await cache.ping() is True
    await cache.close()
    assert await cache.get("k") is None
    assert cache.describe() == {"backend": "memory"}
