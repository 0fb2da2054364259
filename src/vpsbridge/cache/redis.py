"""The Redis cache backend: shared by every web and worker process in scale-out mode.

* Rate limits are one Lua script (INCR + PEXPIRE on first use), so two processes can never both see
  "9 of 10" and both proceed.
* Single-flight works at two levels: inside a process through a shared task, across processes
  through a short lock key (``SET NX PX``). Whoever holds the lock fetches and stores the value;
  the others poll for the value. If the holder dies, its lock expires after ``lock_ttl`` and a waiter
  takes over; if the holder fails, it deletes its lock and a waiter fetches at once.
* Every Redis failure is raised as :class:`~vpsbridge.cache.base.CacheUnavailable` (fetch errors
  pass through untouched) so :class:`~vpsbridge.cache.resilient.ResilientCache` can tell "Redis is
  down" from "the upstream failed". Timeouts are short and the client does not retry by itself:
  waiting seconds for a dead Redis is worse than degrading.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from vpsbridge.cache.base import Cache, CacheUnavailable, RateDecision, SingleFlight, decode, encode

T = TypeVar("T")

_HIT_SCRIPT = """
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
"""

_RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


class RedisCache(Cache):
    backend = "redis"

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "vpsbridge:",
        lock_ttl: float = 10.0,
        lock_wait: float | None = None,
        connect_timeout: float = 1.0,
        command_timeout: float = 2.0,
    ) -> None:
        self.url = url
        self.prefix = prefix
        #: How long a fetch may hold the cross-process lock before others assume it died.
        self.lock_ttl = lock_ttl
        #: How long a waiter waits in total before fetching without the lock.
        self.lock_wait = lock_wait if lock_wait is not None else 2 * lock_ttl
        self.redis: aioredis.Redis = aioredis.Redis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=connect_timeout,
            socket_timeout=command_timeout,
            retry=Retry(NoBackoff(), 0),
        )
        self._hit = self.redis.register_script(_HIT_SCRIPT)
        self._release = self.redis.register_script(_RELEASE_SCRIPT)
        self._flight = SingleFlight()

    def _k(self, kind: str, key: str) -> str:
        return f"{self.prefix}{kind}:{key}"

    @asynccontextmanager
    async def _errors(self) -> AsyncIterator[None]:
        try:
            yield
        except (RedisError, OSError, TimeoutError) as exc:
            raise CacheUnavailable(f"Redis {type(exc).__name__}: {exc}") from exc

    async def _call(self, awaitable: Awaitable[Any]) -> Any:
        async with self._errors():
            return await awaitable

    # --- values ---------------------------------------------------------------------------------

    async def get(self, key: str) -> Any:
        raw = await self._call(self.redis.get(self._k("v", key)))
        return None if raw is None else decode(raw)

    async def _set_raw(self, key: str, raw: str, ttl: float | None) -> None:
        if ttl is not None and ttl <= 0:
            await self._call(self.redis.delete(self._k("v", key)))
        elif ttl is None:
            await self._call(self.redis.set(self._k("v", key), raw))
        else:
            await self._call(self.redis.set(self._k("v", key), raw, px=_ms(ttl)))

    async def set(self, key: str, value: Any, ttl: float | None) -> None:
        await self._set_raw(key, encode(value), ttl)

    async def delete(self, key: str) -> None:
        await self._call(self.redis.delete(self._k("v", key)))

    async def get_or_fetch(
        self,
        key: str,
        ttl: float,
        fetch: Callable[[], Awaitable[T]],
        *,
        negative_ttl: float | None = None,
    ) -> T:
        raw = await self._call(self.redis.get(self._k("v", key)))
        if raw is not None:
            cached: T = decode(raw)
            return cached
        return await self._flight.do(key, lambda: self._fetch_shared(key, ttl, fetch, negative_ttl))

    async def _fetch_shared(
        self, key: str, ttl: float, fetch: Callable[[], Awaitable[T]], negative_ttl: float | None
    ) -> T:
        value_key, lock_key = self._k("v", key), self._k("lock", key)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.lock_wait
        delay = 0.005
        while True:
            token = uuid.uuid4().hex
            if await self._call(self.redis.set(lock_key, token, nx=True, px=_ms(self.lock_ttl))):
                try:
                    raw = await self._call(self.redis.get(value_key))
                    if raw is not None:  # the previous holder stored it just before we locked
                        hit: T = decode(raw)
                        return hit
                    return await self._fetch_and_store(key, ttl, fetch, negative_ttl)
                finally:
                    await self._release_lock(lock_key, token)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)
            raw = await self._call(self.redis.get(value_key))
            if raw is not None:
                shared: T = decode(raw)
                return shared
            if loop.time() >= deadline:
                # The holder is alive but far too slow (it keeps renewing nothing, so this only
                # happens when lock_wait < lock_ttl): answer this caller ourselves.
                return await self._fetch_and_store(key, ttl, fetch, negative_ttl)

    async def _fetch_and_store(
        self, key: str, ttl: float, fetch: Callable[[], Awaitable[T]], negative_ttl: float | None
    ) -> T:
        value = await fetch()
        encoded = encode(value)
        if value is not None:
            await self._set_raw(key, encoded, ttl)
        elif negative_ttl is not None:
            await self._set_raw(key, encoded, negative_ttl)
        result: T = decode(encoded)
        return result

    async def _release_lock(self, lock_key: str, token: str) -> None:
        # On failure the lock expires by itself; the caller's value matters more.
        with suppress(CacheUnavailable):
            await self._call(self._release(keys=[lock_key], args=[token]))

    # --- rate limits and debounce --------------------------------------------------------------

    async def hit(self, key: str, limit: int, window_seconds: float) -> RateDecision:
        count, ttl_ms = await self._call(self._hit(keys=[self._k("rl", key)], args=[_ms(window_seconds)]))
        count, ttl_ms = int(count), int(ttl_ms)
        allowed = count <= limit
        return RateDecision(
            allowed=allowed,
            remaining=max(0, limit - count),
            retry_after=0.0 if allowed else ttl_ms / 1000,
            limit=limit,
        )

    async def debounce(self, key: str, seconds: float) -> bool:
        return bool(await self._call(self.redis.set(self._k("db", key), "1", nx=True, px=_ms(seconds))))

    # --- lifecycle ------------------------------------------------------------------------------

    async def ping(self) -> bool:
        try:
            return bool(await self._call(self.redis.ping()))
        except CacheUnavailable:
            return False

    async def close(self) -> None:
        with suppress(RedisError, OSError):
            await self.redis.aclose()
