"""Degrade-and-recover: Redis down at start or later never reaches callers; one warning per outage."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from structlog.testing import capture_logs

from vpsbridge.cache import MemoryCache, ResilientCache, create_cache
from vpsbridge.cache.redis import RedisCache
from vpsbridge.config import load_settings

pytestmark = pytest.mark.redis


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


class TcpProxy:
    """A loopback TCP proxy to the real Redis that the test can switch on and off (an "outage")."""

    def __init__(self, port: int, target: tuple[str, int]) -> None:
        self.port = port
        self.target = target
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            for writer in list(self.writers):
                writer.close()
            await self.server.wait_closed()
            self.server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@pytest.fixture
async def proxy(redis_url: str) -> AsyncIterator[TcpProxy]:
    parts = urlsplit(redis_url)
    p = TcpProxy(_free_port(), (parts.hostname or "127.0.0.1", parts.port or 6379))
    yield p
    await p.stop()


def _degraded_warnings(logs: list[dict[str, object]]) -> int:
    return sum(1 for entry in logs if entry["event"] == "cache_degraded")


async def test_create_cache_memory_without_redis_url(tmp_path: Path) -> None:
    cache = await create_cache(load_settings(data_dir=tmp_path, redis_url=""))
    assert isinstance(cache, MemoryCache)
    await cache.close()


async def test_redis_down_at_start_degrades_with_one_warning(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{_free_port()}/0"
    with capture_logs() as logs:
        cache = await create_cache(load_settings(data_dir=tmp_path, redis_url=url), retry_seconds=60)
        assert isinstance(cache, ResilientCache)
        assert cache.degraded
        await cache.set("k", {"v": 1}, 10)
        assert await cache.get("k") == {"v": 1}
        decisions = await asyncio.gather(*(cache.hit("rl", 10, 30) for _ in range(50)))
        assert sum(d.allowed for d in decisions) == 10
        assert await cache.debounce("d", 5)
        assert not await cache.debounce("d", 5)
        calls = 0

        async def fetch() -> int:
            nonlocal calls
            calls += 1
            await asyncio.sleep(0.02)
            return 1

        assert await asyncio.gather(*(cache.get_or_fetch("f", 10, fetch) for _ in range(20))) == [1] * 20
        assert calls == 1
        assert await cache.ping() is False
    assert _degraded_warnings(logs) == 1
    assert cache.describe() == {"backend": "memory", "configured": "redis", "degraded": True, "outages": 1}
    await cache.close()


async def test_outage_and_recovery_through_real_redis(proxy: TcpProxy) -> None:
    url = f"redis://127.0.0.1:{proxy.port}/15"
    cache = ResilientCache(RedisCache(url, connect_timeout=0.5, command_timeout=0.5), retry_seconds=0.2)
    with capture_logs() as logs:
        # Down at first: served from memory.
        assert not await cache.ping()
        await cache.set("k", "memory-value", 30)
        assert cache.degraded

        # Redis comes back: after retry_seconds the next operation goes to Redis again.
        await proxy.start()
        await asyncio.sleep(0.25)
        await cache.set("k", "redis-value", 30)
        assert not cache.degraded
        assert cache.backend == "redis"
        direct = RedisCache(url)
        assert await direct.get("k") == "redis-value"  # really stored in Redis
        await direct.close()
        assert (await cache.hit("rl", 1, 30)).allowed
        assert not (await cache.hit("rl", 1, 30)).allowed

        # A second outage in the middle of use: callers never see an error.
        await proxy.stop()
        for _ in range(5):
            # Served by the in-process fallback, which still holds what was written during outage 1.
            assert await cache.get("k") == "memory-value"
            assert (await cache.hit("other", 100, 30)).allowed
        assert cache.degraded

        # And back once more, detected by ping() (what /readyz calls).
        await proxy.start()
        assert await cache.ping()
        assert not cache.degraded
        assert await cache.get("k") == "redis-value"
    assert _degraded_warnings(logs) == 2  # one per outage, not one per call
    assert sum(1 for e in logs if e["event"] == "cache_recovered") == 2
    assert cache.outages == 2
    await cache.close()


async def test_fetch_is_not_repeated_when_redis_fails_mid_flight(proxy: TcpProxy) -> None:
    await proxy.start()
    url = f"redis://127.0.0.1:{proxy.port}/15"
    cache = ResilientCache(RedisCache(url, connect_timeout=0.5, command_timeout=0.5), retry_seconds=30)
    calls = 0

    async def fetch() -> str:
        nonlocal calls
        calls += 1
        await proxy.stop()  # Redis disappears while the upstream is being asked
        return "fresh"

    assert await cache.get_or_fetch("k", 10, fetch) == "fresh"
    assert calls == 1
    assert cache.degraded
    await cache.close()


async def test_fetch_errors_are_not_mistaken_for_outages(redis_url: str) -> None:
    cache = ResilientCache(RedisCache(redis_url))

    async def broken() -> int:
        raise ConnectionError("upstream refused")

    with pytest.raises(ConnectionError):
        await cache.get_or_fetch("k", 10, broken)
    assert not cache.degraded
    await cache.close()
