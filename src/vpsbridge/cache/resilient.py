"""Redis with an in-process fallback: the scale-out cache that never takes the service down.

When Redis stops answering, every operation is served by a :class:`MemoryCache` instead and one
warning is logged for the outage (not one per call). While degraded, Redis is probed again at most
every ``retry_seconds`` (by the next operation that comes along, or by ``ping()`` from ``/readyz``);
when it answers, operations return to Redis and one "recovered" line is logged.

What degrading costs, and why it is acceptable: during an outage each process has its own rate-limit
counters, debounce keys and single-flight, so limits are per process rather than global and a few
duplicate upstream reads can happen. Values cached in memory during the outage are not copied back.
Failing requests because a cache is down would be far worse.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog

from vpsbridge.cache.base import Cache, CacheUnavailable, Once, RateDecision
from vpsbridge.cache.memory import MemoryCache

T = TypeVar("T")

log = structlog.stdlib.get_logger("vpsbridge.cache")


class ResilientCache(Cache):
    def __init__(
        self,
        primary: Cache,
        fallback: MemoryCache | None = None,
        *,
        retry_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.primary = primary
        self.fallback = fallback or MemoryCache()
        self.retry_seconds = retry_seconds
        self._clock = clock
        self._degraded = False
        self._next_probe = 0.0
        self.outages = 0
        #: What is serving right now: the primary's backend, or the fallback's while degraded.
        self.backend = primary.backend

    @property
    def degraded(self) -> bool:
        return self._degraded

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "configured": self.primary.backend,
            "degraded": self._degraded,
            "outages": self.outages,
        }

    def _mark_down(self, error: str) -> None:
        self._next_probe = self._clock() + self.retry_seconds
        if not self._degraded:
            self._degraded = True
            self.backend = self.fallback.backend
            self.outages += 1
            log.warning(
                "cache_degraded",
                backend=self.primary.backend,
                fallback=self.fallback.backend,
                error=error,
                detail="serving from the in-process cache until the backend answers again",
            )

    def _mark_up(self) -> None:
        if self._degraded:
            self._degraded = False
            self.backend = self.primary.backend
            log.info("cache_recovered", backend=self.primary.backend)

    async def _run(self, op: Callable[[Cache], Awaitable[T]]) -> T:
        if self._degraded:
            if self._clock() < self._next_probe:
                return await op(self.fallback)
            # One caller probes; the others keep using the fallback until it succeeds.
            self._next_probe = self._clock() + self.retry_seconds
        try:
            result = await op(self.primary)
        except CacheUnavailable as exc:
            self._mark_down(str(exc))
            return await op(self.fallback)
        self._mark_up()
        return result

    async def get(self, key: str) -> Any:
        return await self._run(lambda c: c.get(key))

    async def set(self, key: str, value: Any, ttl: float | None) -> None:
        await self._run(lambda c: c.set(key, value, ttl))

    async def delete(self, key: str) -> None:
        await self._run(lambda c: c.delete(key))

    async def get_or_fetch(
        self,
        key: str,
        ttl: float,
        fetch: Callable[[], Awaitable[T]],
        *,
        negative_ttl: float | None = None,
    ) -> T:
        once = Once(fetch)

        async def op(cache: Cache) -> T:
            value: T = await cache.get_or_fetch(key, ttl, once, negative_ttl=negative_ttl)
            return value

        return await self._run(op)

    async def hit(self, key: str, limit: int, window_seconds: float) -> RateDecision:
        return await self._run(lambda c: c.hit(key, limit, window_seconds))

    async def debounce(self, key: str, seconds: float) -> bool:
        return await self._run(lambda c: c.debounce(key, seconds))

    async def ping(self) -> bool:
        """Whether the configured backend answers; also the fastest way back out of degraded mode."""
        ok = await self.primary.ping()
        if ok:
            self._mark_up()
        else:
            self._mark_down("ping failed")
        return ok

    async def close(self) -> None:
        await self.primary.close()
        await self.fallback.close()
