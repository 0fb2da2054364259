"""Per-service idempotency: retries replay, different operations act, failures are not remembered."""

from __future__ import annotations

import asyncio
from typing import Any

from vpsbridge.billing.whmcs.idempotency import run_once
from vpsbridge.cache import MemoryCache


class Counter:
    def __init__(self, ok: bool = True, delay: float = 0.0) -> None:
        self.calls = 0
        self.ok = ok
        self.delay = delay

    async def __call__(self) -> dict[str, Any]:
        self.calls += 1
        await asyncio.sleep(self.delay)
        return {"ok": self.ok, "n": self.calls}


def ok(answer: dict[str, Any]) -> bool:
    return bool(answer["ok"])


async def test_a_retry_replays_the_first_answer() -> None:
    cache, act = MemoryCache(), Counter()
    first = await run_once(cache, "whmcs:1", "CreateAccount", {}, act, succeeded=ok)
    second = await run_once(cache, "whmcs:1", "CreateAccount", {}, act, succeeded=ok)
    assert first == ({"ok": True, "n": 1}, False)
    assert second == ({"ok": True, "n": 1}, True)
    assert act.calls == 1


async def test_suspend_unsuspend_suspend_acts_three_times() -> None:
    cache, act = MemoryCache(), Counter()
    for op in ("SuspendAccount", "UnsuspendAccount", "SuspendAccount"):
        _, replayed = await run_once(cache, "whmcs:1", op, {}, act, succeeded=ok)
        assert not replayed
    assert act.calls == 3


async def test_different_inputs_or_services_act_again() -> None:
    cache, act = MemoryCache(), Counter()
    await run_once(cache, "whmcs:1", "ChangePackage", {"product": "1"}, act, succeeded=ok)
    await run_once(cache, "whmcs:1", "ChangePackage", {"product": "2"}, act, succeeded=ok)
    await run_once(cache, "whmcs:2", "ChangePackage", {"product": "2"}, act, succeeded=ok)
    assert act.calls == 3


async def test_failures_are_retried_for_real() -> None:
    cache, act = MemoryCache(), Counter(ok=False)
    await run_once(cache, "whmcs:1", "CreateAccount", {}, act, succeeded=ok)
    await run_once(cache, "whmcs:1", "CreateAccount", {}, act, succeeded=ok)
    assert act.calls == 2


async def test_concurrent_duplicates_act_once() -> None:
    cache, act = MemoryCache(), Counter(delay=0.05)
    results = await asyncio.gather(
        *(run_once(cache, "whmcs:9", "CreateAccount", {}, act, succeeded=ok) for _ in range(5))
    )
    assert act.calls == 1
    assert sorted(replayed for _, replayed in results) == [False, True, True, True, True]
