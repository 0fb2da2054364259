"""Cache, single-flight, rate limits and debounce: in-process or Redis, behind one interface."""

from vpsbridge.cache.base import Cache, CacheUnavailable, RateDecision
from vpsbridge.cache.factory import create_cache
from vpsbridge.cache.memory import MemoryCache
from vpsbridge.cache.resilient import ResilientCache

__all__ = ["Cache", "CacheUnavailable", "MemoryCache", "RateDecision", "ResilientCache", "create_cache"]
