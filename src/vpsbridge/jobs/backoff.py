"""Retry delays: exponential, capped, jittered and scaled by ``time_scale``.

The jitter only ever *shortens* a delay, by at most a quarter. That spreads retries of many jobs that
failed together (an upstream outage) while keeping each delay more than the previous one until the
cap: 0.75 * 2 * d > d.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from vpsbridge.config import Settings


def backoff_seconds(settings: Settings, failures: int, rand: Callable[[], float] = random.random) -> float:
    """Delay before the next attempt after ``failures`` failed attempts (``failures`` >= 1)."""
    exponent = min(max(failures - 1, 0), 60)
    raw = min(settings.job_backoff_base_seconds * (2.0**exponent), settings.job_backoff_max_seconds)
    return settings.scaled(raw * (1.0 - 0.25 * rand()))
