"""The cache interface shared by the in-process and the Redis backend.

Services and the web layer use one :class:`Cache` for four jobs:

* a **TTL cache** of JSON values (``get``/``set``/``delete``);
* **single-flight** fetches (``get_or_fetch``): when a hundred portal users open the same server page,
  the upstream API is asked once and everybody shares the answer - optionally remembering a confirmed
  "not there" (``None``) for ``negative_ttl`` seconds so a 404 is not asked again and again;
* **atomic rate limits** (``hit``), a fixed window counter that cannot be raced past its limit;
* **debounce keys** (``debounce``): only the first caller in a window gets ``True``, e.g. to enqueue
  one stock recalculation per product however many events arrive.

Values are JSON: what comes back is what ``json.loads`` gives (tuples become lists), on both
backends, so code tested against the in-process backend behaves the same on Redis.
"""

from __future__ import annotations

import asyncio
import json
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


class CacheUnavailable(Exception):
    """The cache backend cannot be reached; :class:`~vpsbridge.cache.resilient.ResilientCache` catches it."""


@dataclass(frozen=True, slots=True)
class RateDecision:
    """Result of one rate-limited action.

    ``retry_after`` is the number of seconds until the current window ends (0 when allowed), suitable
    for an HTTP ``Retry-After`` header after rounding up.
    """

    allowed: bool
    remaining: int
    retry_after: float
    limit: int


def encode(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def decode(raw: str | bytes) -> Any:
    return json.loads(raw)


class Cache(ABC):
    """One interface, two backends; every method is safe to call concurrently."""

    #: ``memory`` or ``redis`` (a degraded resilient cache reports what it is actually using).
    backend: str = "abstract"

    @abstractmethod
    async def get(self, key: str) -> Any:
        """The cached value, or ``None`` when absent or expired."""

    @abstractmethod
    async def set(self, key: str, value: Any, ttl: float | None) -> None:
        """Store a JSON value for ``ttl`` seconds (``None``: until deleted; ``<= 0``: not stored)."""

    @abstractmethod
    async def delete(self, key: str) -> None: ...

    @abstractmethod
    async def get_or_fetch(
        self,
        key: str,
        ttl: float,
        fetch: Callable[[], Awaitable[T]],
        *,
        negative_ttl: float | None = None,
    ) -> T:
        """The cached value, or the result of ``fetch()`` shared by every concurrent caller of ``key``.

        A ``None`` result is cached only when ``negative_ttl`` is given (for that many seconds): use it
        for *confirmed* absence only, never for "could not ask". Exceptions from ``fetch`` are not
        cached and reach every caller that was waiting for that fetch.
        """

    @abstractmethod
    async def hit(self, key: str, limit: int, window_seconds: float) -> RateDecision:
        """Count one action against ``limit`` per fixed window of ``window_seconds``; atomic."""

    @abstractmethod
    async def debounce(self, key: str, seconds: float) -> bool:
        """``True`` for the first caller of ``key`` within ``seconds``, ``False`` for the others."""

    @abstractmethod
    async def ping(self) -> bool:
        """Whether the configured backend answers (never raises)."""

    @abstractmethod
    async def close(self) -> None: ...

    def describe(self) -> dict[str, Any]:
        """A small status dict for readiness output and the operator console."""
        return {"backend": self.backend}


class SingleFlight:
    """Per-key sharing of one in-flight coroutine inside this process.

    The fetch runs in its own task and every caller awaits it through :func:`asyncio.shield`, so a
    caller that is cancelled (a browser closing its tab) does not cancel the fetch others wait for.
    """

    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[Any]] = {}

    def in_flight(self, key: str) -> bool:
        return key in self._tasks

    async def do(self, key: str, fn: Callable[[], Awaitable[T]]) -> T:
        loop = asyncio.get_running_loop()
        task = self._tasks.get(key)
        if task is None or task.get_loop() is not loop or task.done():
            task = asyncio.ensure_future(fn())
            self._tasks[key] = task
            task.add_done_callback(lambda t, k=key: self._finished(k, t))  # type: ignore[misc]
        result: T = await asyncio.shield(task)
        return result

    def _finished(self, key: str, task: asyncio.Task[Any]) -> None:
        if self._tasks.get(key) is task:
            del self._tasks[key]
        if not task.cancelled():
            task.exception()  # mark retrieved: waiters may all have been cancelled


class Once:
    """Wrap ``fetch`` so that a second call returns the first call's result instead of fetching again.

    Used when a backend fails *after* the fetch succeeded and the caller falls back to another
    backend: the upstream must not be asked twice for one logical read.
    """

    def __init__(self, fetch: Callable[[], Awaitable[Any]]) -> None:
        self._fetch = fetch
        self._done = False
        self._result: Any = None

    async def __call__(self) -> Any:
        if not self._done:
            self._result = await self._fetch()
            self._done = True
        return self._result
