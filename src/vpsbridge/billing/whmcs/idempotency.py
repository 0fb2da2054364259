"""WHMCS retries never double-act: the last successful operation per billing service is remembered.

WHMCS repeats module calls: the Module Queue "Retry" button, a cron run overlapping a slow one, an
admin clicking Create twice. The bridge therefore remembers, per billing service, the last operation
that *succeeded*, with a fingerprint of the inputs that matter and the answer it gave. A request
that repeats that operation with the same fingerprint gets the stored answer back without acting.

Why "last operation" and not "every operation ever": Suspend, Unsuspend, Suspend is three real
actions, not a retry. A different operation in between replaces the record, so the second Suspend
acts. Failures are never stored, so retrying a failed call really retries.

Calls for one service are serialised inside the process (a lock per service); a concurrent
duplicate waits for the first to finish and then replays its answer. Across processes, the record
lives in the shared cache, and a truly simultaneous duplicate on two web nodes is caught one layer
down: the provisioning services are idempotent per service and operation in the database. This
layer makes the *answer* repeatable and cheap.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from vpsbridge.cache import Cache

RECORD_TTL = 7 * 24 * 3600
RECORD_KEY = "bridge:last-op:"

_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()


def _lock_for(service_key: str) -> asyncio.Lock:
    lock = _locks.get(service_key)
    if lock is None:
        lock = asyncio.Lock()
        _locks[service_key] = lock
    return lock


class OperationBusy(Exception):
    """Another call for the same service is still running; WHMCS should try again shortly."""


def fingerprint(material: Any) -> str:
    """A stable digest of the inputs that make two calls "the same" (canonical JSON, sorted keys)."""
    raw = json.dumps(material, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


async def run_once(
    cache: Cache,
    service_key: str,
    operation: str,
    material: Any,
    action: Callable[[], Awaitable[dict[str, Any]]],
    *,
    succeeded: Callable[[dict[str, Any]], bool],
    wait_seconds: float = 20.0,
) -> tuple[dict[str, Any], bool]:
    """Run ``action`` unless it is a repeat of the last successful operation on ``service_key``.

    Returns ``(answer, replayed)``. ``succeeded(answer)`` decides whether the answer is remembered.
    Raises :class:`OperationBusy` when another call for the service holds the lock longer than
    ``wait_seconds``.
    """
    digest = fingerprint(material)
    record_key = RECORD_KEY + service_key
    stored = await cache.get(record_key)
    if _matches(stored, operation, digest):
        return dict(stored["answer"]), True
    lock = _lock_for(service_key)
    try:
        await asyncio.wait_for(lock.acquire(), timeout=wait_seconds)
    except TimeoutError:
        raise OperationBusy(
            f"another operation on this service is still running; try {operation} again in a minute"
        ) from None
    try:
        # Re-read under the lock: the holder we waited for may have just stored this very operation.
        stored = await cache.get(record_key)
        if _matches(stored, operation, digest):
            return dict(stored["answer"]), True
        answer = await action()
        if succeeded(answer):
            await cache.set(
                record_key,
                {"operation": operation, "digest": digest, "answer": answer, "at": time.time()},
                RECORD_TTL,
            )
        return answer, False
    finally:
        lock.release()


async def forget(cache: Cache, service_key: str) -> None:
    """Drop the remembered operation (an operator edited the service by hand)."""
    await cache.delete(RECORD_KEY + service_key)


def _matches(stored: Any, operation: str, digest: str) -> bool:
    return (
        isinstance(stored, dict)
        and stored.get("operation") == operation
        and stored.get("digest") == digest
        and isinstance(stored.get("answer"), dict)
    )
