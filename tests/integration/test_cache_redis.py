"""Redis cache backend against a real Redis: atomic limits across clients and processes,
cross-process single-flight (including a dead lock holder), TTLs, debounce."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator

import pytest

from vpsbridge.cache import Cache, MemoryCache
from vpsbridge.cache.redis import RedisCache

pytestmark = pytest.mark.redis


@pytest.fixture
async def rcache(redis_url: str) -> AsyncIterator[RedisCache]:
    cache = RedisCache(redis_url, lock_ttl=2.0)
    yield cache
    await cache.close()


@pytest.fixture(params=["memory", "redis"])
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[Cache]:
    """The same behaviour checks run on both backends."""
    backend: Cache
    backend = MemoryCache() if request.param == "memory" else RedisCache(request.getfixturevalue("redis_url"))
    yield backend
    await backend.close()


async def test_set_get_delete_and_ttl(cache: Cache) -> None:
    await cache.set("a", {"x": [1, "é"]}, ttl=0.15)
    await cache.set("b", 1, ttl=None)
    await cache.set("c", 1, ttl=0)
    assert await cache.get("a") == {"x": [1, "é"]}
    assert await cache.get("b") == 1
    assert await cache.get("c") is None
    await asyncio.sleep(0.25)
    assert await cache.get("a") is None
    await cache.delete("b")
    assert await cache.get("b") is None


async def test_rate_limit_50_concurrent_exactly_10(cache: Cache) -> None:
    decisions = await asyncio.gather(*(cache.hit("portal:power:client9", 10, 30) for _ in range(50)))
    assert sum(d.allowed for d in decisions) == 10
    assert all(d.retry_after > 0 for d in decisions if not d.allowed)


async def test_rate_limit_window_expires(cache: Cache) -> None:
    assert (await cache.hit("w", 1, 0.2)).allowed
    assert not (await cache.hit("w", 1, 0.2)).allowed
    await asyncio.sleep(0.3)
    assert (await cache.hit("w", 1, 0.2)).allowed


async def test_debounce_first_caller_only(cache: Cache) -> None:
    results = await asyncio.gather(*(cache.debounce("stock:1", 0.2) for _ in range(30)))
    assert results.count(True) == 1
    await asyncio.sleep(0.3)
    assert await cache.debounce("stock:1", 0.2)


async def test_single_flight_100_callers_one_fetch(cache: Cache) -> None:
    calls = 0

    async def fetch() -> list[int]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return [1, 2, 3]

    results = await asyncio.gather(*(cache.get_or_fetch("node:1", 10, fetch) for _ in range(100)))
    assert calls == 1
    assert all(r == [1, 2, 3] for r in results)


async def test_negative_ttl(cache: Cache) -> None:
    calls = 0

    async def missing() -> None:
        nonlocal calls
        calls += 1

    await cache.get_or_fetch("gone", 10, missing, negative_ttl=0.2)
    await cache.get_or_fetch("gone", 10, missing, negative_ttl=0.2)
    assert calls == 1
    await asyncio.sleep(0.3)
    await cache.get_or_fetch("gone", 10, missing, negative_ttl=0.2)
    assert calls == 2
    await cache.get_or_fetch("never", 10, missing)
    await cache.get_or_fetch("never", 10, missing)
    assert calls == 4


async def test_rate_limit_two_clients_share_counter(redis_url: str) -> None:
    a, b = RedisCache(redis_url), RedisCache(redis_url)
    try:
        decisions = await asyncio.gather(*(c.hit("k", 10, 30) for _ in range(25) for c in (a, b)))
        assert sum(d.allowed for d in decisions) == 10
    finally:
        await a.close()
        await b.close()


_HITTER = textwrap.dedent(
    """
    import asyncio, sys, time
    from vpsbridge.cache.redis import RedisCache

    async def main():
        cache = RedisCache(sys.argv[1])
        while time.time() < float(sys.argv[2]):
            await asyncio.sleep(0.001)
        results = await asyncio.gather(*(cache.hit("proc-key", 10, 30) for _ in range(50)))
        await cache.close()
        print(sum(r.allowed for r in results))

    asyncio.run(main())
    """
)


def test_rate_limit_two_processes_exactly_10(redis_url: str) -> None:
    start_at = str(time.time() + 1.5)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _HITTER, redis_url, start_at], stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    totals = []
    for proc in procs:
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        totals.append(int(out.strip()))
    assert sum(totals) == 10


async def test_single_flight_across_two_clients(redis_url: str) -> None:
    a, b = RedisCache(redis_url), RedisCache(redis_url)
    calls = 0

    async def fetch() -> dict[str, str]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.1)
        return {"node": "n1"}

    try:
        results = await asyncio.gather(
            *(c.get_or_fetch("cap:1", 10, fetch) for _ in range(50) for c in (a, b))
        )
    finally:
        await a.close()
        await b.close()
    assert calls == 1
    assert all(r == {"node": "n1"} for r in results)


async def test_dead_lock_holder_is_taken_over(rcache: RedisCache) -> None:
    # Another process took the lock and died without storing a value or releasing it.
    await rcache.redis.set("vpsbridge:lock:orphan", "dead-process", px=300)
    calls = 0

    async def fetch() -> int:
        nonlocal calls
        calls += 1
        return 7

    started = time.monotonic()
    assert await rcache.get_or_fetch("orphan", 10, fetch) == 7
    waited = time.monotonic() - started
    assert calls == 1
    assert 0.2 <= waited < 2.0


async def test_failed_holder_releases_lock_and_waiter_fetches(redis_url: str) -> None:
    a, b = RedisCache(redis_url), RedisCache(redis_url)
    holder_started = asyncio.Event()

    async def failing() -> int:
        holder_started.set()
        await asyncio.sleep(0.05)
        raise RuntimeError("upstream 500")

    async def ok() -> int:
        return 3

    try:
        first = asyncio.create_task(a.get_or_fetch("k", 10, failing))
        await holder_started.wait()
        started = time.monotonic()
        second = await b.get_or_fetch("k", 10, ok)
        with pytest.raises(RuntimeError):
            await first
    finally:
        await a.close()
        await b.close()
    assert second == 3
    assert time.monotonic() - started < 1.0  # did not wait for the lock to expire


async def test_keys_are_prefixed(rcache: RedisCache) -> None:
    await rcache.set("x", 1, 10)
    await rcache.hit("x", 1, 10)
    await rcache.debounce("x", 10)
    keys = sorted(await rcache.redis.keys("*"))
    assert keys == ["vpsbridge:db:x", "vpsbridge:rl:x", "vpsbridge:v:x"]
    assert await rcache.ping() is True
