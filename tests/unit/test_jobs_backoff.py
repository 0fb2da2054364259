"""Retry delays: exponential growth, cap, jitter bounds and time scaling."""

from __future__ import annotations

from vpsbridge.config import load_settings
from vpsbridge.jobs.backoff import backoff_seconds


def test_doubles_until_the_cap_without_jitter() -> None:
    s = load_settings(job_backoff_base_seconds=2, job_backoff_max_seconds=30)
    delays = [backoff_seconds(s, n, rand=lambda: 0.0) for n in range(1, 8)]
    assert delays == [2, 4, 8, 16, 30, 30, 30]


def test_jitter_only_shortens_and_keeps_growth() -> None:
    s = load_settings(job_backoff_base_seconds=1, job_backoff_max_seconds=10_000)
    for n in range(1, 10):
        low = backoff_seconds(s, n, rand=lambda: 0.999999)
        high = backoff_seconds(s, n, rand=lambda: 0.0)
        assert 0.75 * high <= low <= high
    worst = [backoff_seconds(s, n, rand=lambda: 0.999999) for n in range(2, 10)]
    best = [backoff_seconds(s, n, rand=lambda: 0.0) for n in range(1, 9)]
    # The shortest delay after n failures is longer than the longest after n-1.
    assert all(w > b for w, b in zip(worst, best, strict=True))


def test_scaled_by_time_scale_and_safe_for_huge_counts() -> None:
    s = load_settings(job_backoff_base_seconds=2, job_backoff_max_seconds=600, time_scale=0.01)
    assert backoff_seconds(s, 1, rand=lambda: 0.0) == 0.02
    assert backoff_seconds(s, 10_000, rand=lambda: 0.0) == 6.0


def test_random_jitter_spreads_delays() -> None:
    s = load_settings(job_backoff_base_seconds=4)
    values = {round(backoff_seconds(s, 3), 6) for _ in range(50)}
    assert len(values) > 10
    assert all(12 <= v <= 16 for v in values)
