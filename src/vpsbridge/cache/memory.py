"""The in-process cache backend: the embedded default, and the fallback while Redis is down.

Everything lives in dicts guarded by one :class:`threading.Lock` held only around non-awaiting
critical sections, so rate limits and debounce stay atomic even if a thread pool or a second event
loop uses the same instance. Expired entries are dropped lazily on read and swept periodically on
write; ``max_entries`` bounds memory by evicting the oldest entries.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from vpsbridge.cache.base import Cache, RateDecision, SingleFlight, decode, encode

T = TypeVar("T")

_SWEEP_EVERY = 1000


class MemoryCache(Cache):
    backend = "memory"

    def __init__(self, *, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._values: dict[str, tuple[str, float | None]] = {}
        self._windows: dict[str, tuple[int, float]] = {}
        self._debounces: dict[str, float] = {}
        self._flight = SingleFlight()
        self._writes = 0

    # --- values ---------------------------------------------------------------------------------

    def _get_raw(self, key: str) -> str | None:
        with self._lock:
            entry = self._values.get(key)
            if entry is None:
                return None
            raw, expires = entry
            if expires is not None and expires <= self._clock():
                del self._values[key]
                return None
            return raw

    def _set_raw(self, key: str, raw: str, ttl: float | None) -> None:
        with self._lock:
            if ttl is not None and ttl <= 0:
                self._values.pop(key, None)
                return
            self._values.pop(key, None)  # re-insert at the end: eviction order = age of last write
            self._values[key] = (raw, None if ttl is None else self._clock() + ttl)
            self._writes += 1
            if self._writes % _SWEEP_EVERY == 0 or len(self._values) > self.max_entries:
                self._sweep()

    def _sweep(self) -> None:
        now = self._clock()
        for store in (self._values,):
            for key in [k for k, (_, exp) in store.items() if exp is not None and exp <= now]:
                del store[key]
        for key in [k for k, (_, reset) in self._windows.items() if reset <= now]:
            del self._windows[key]
        for key in [k for k, until in self._debounces.items() if until <= now]:
            del self._debounces[key]
        while len(self._values) > self.max_entries:
            del self._values[next(iter(self._values))]

    async def get(self, key: str) -> Any:
        raw = self._get_raw(key)
        return None if raw is None else decode(raw)

    async def set(self, key: str, value: Any, ttl: float | None) -> None:
        self._set_raw(key, encode(value), ttl)

    async def delete(self, key: str) -> None:
        with self._lock:
            self._values.pop(key, None)

    async def get_or_fetch(
        self,
        key: str,
        ttl: float,
        fetch: Callable[[], Awaitable[T]],
        *,
        negative_ttl: float | None = None,
    ) -> T:
        raw = self._get_raw(key)
        if raw is not None:
            cached: T = decode(raw)
            return cached

        async def load() -> T:
            again = self._get_raw(key)  # filled while we were scheduled
            if again is not None:
                hit: T = decode(again)
                return hit
            value = await fetch()
            encoded = encode(value)
            if value is not None:
                self._set_raw(key, encoded, ttl)
            elif negative_ttl is not None:
                self._set_raw(key, encoded, negative_ttl)
            result: T = decode(encoded)
            return result

        return await self._flight.do(key, load)

    # --- rate limits and debounce --------------------------------------------------------------

    async def hit(self, key: str, limit: int, window_seconds: float) -> RateDecision:
        with self._lock:
            now = self._clock()
            count, reset_at = self._windows.get(key, (0, 0.0))
            if reset_at <= now:
                count, reset_at = 0, now + window_seconds
            count += 1
            self._windows[key] = (count, reset_at)
        allowed = count <= limit
        return RateDecision(
            allowed=allowed,
            remaining=max(0, limit - count),
            retry_after=0.0 if allowed else max(0.0, reset_at - now),
            limit=limit,
        )

    async def debounce(self, key: str, seconds: float) -> bool:
        with self._lock:
            now = self._clock()
            until = self._debounces.get(key)
            if until is not None and until > now:
                return False
            self._debounces[key] = now + seconds
            return True

    # --- lifecycle ------------------------------------------------------------------------------

    async def ping(self) -> bool:
        await asyncio.sleep(0)
        return True

    async def close(self) -> None:
        with self._lock:
            self._values.clear()
            self._windows.clear()
            self._debounces.clear()

    def __len__(self) -> int:
        return len(self._values)
