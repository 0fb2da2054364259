"""Choosing the cache backend from settings."""

from __future__ import annotations

from vpsbridge.cache.base import Cache
from vpsbridge.cache.memory import MemoryCache
from vpsbridge.config import Settings


async def create_cache(settings: Settings, *, retry_seconds: float = 5.0) -> Cache:
    """In-process cache in embedded mode; Redis (degrading to in-process) when ``redis_url`` is set.

    Never raises because Redis is down: the service must start, warn once, and switch to Redis
    by itself when it comes back.
    """
    if not settings.redis_url:
        return MemoryCache()
    from vpsbridge.cache.redis import RedisCache
    from vpsbridge.cache.resilient import ResilientCache

    cache = ResilientCache(RedisCache(settings.redis_url), MemoryCache(), retry_seconds=retry_seconds)
    await cache.ping()  # logs the one warning now if Redis is not answering at start
    return cache
