"""Month arithmetic and rate integration behind traffic history (``vpsbridge.core.traffic``)."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from vpsbridge.core.traffic import (
    RateSample,
    Window,
    add_months,
    anchored_periods,
    anchored_start,
    calendar_months,
    integrate,
    month_key,
    month_slots,
    samples_with_steps,
)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (utc(2026, 1, 1), -1, utc(2025, 12, 1)),
        (utc(2025, 12, 1), 1, utc(2026, 1, 1)),
        (utc(2026, 3, 1), -14, utc(2025, 1, 1)),
        (utc(2024, 1, 31), 1, utc(2024, 2, 29)),  # leap year: clamped to the month's last day
        (utc(2025, 1, 31), 1, utc(2025, 2, 28)),
        (utc(2025, 5, 15, 13, 30), 0, utc(2025, 5, 15, 13, 30)),
    ],
)
def test_add_months_crosses_years_and_clamps_the_day(
    start: dt.datetime, months: int, expected: dt.datetime
) -> None:
    assert add_months(start, months) == expected


def test_calendar_months_span_the_year_boundary_newest_first() -> None:
    now = utc(2026, 2, 10, 8, 0)
    months = calendar_months(now, 4)
    assert [month_key(w.start) for w in months] == ["2026-02", "2026-01", "2025-12", "2025-11"]
    assert months[0] == Window(utc(2026, 2, 1), now)  # the current month ends now
    assert months[1] == Window(utc(2026, 1, 1), utc(2026, 2, 1))
    assert months[2] == Window(utc(2025, 12, 1), utc(2026, 1, 1))
    # consecutive windows touch without overlapping
    for newer, older in itertools.pairwise(months):
        assert older.end == newer.start


def test_anchored_periods_follow_the_creation_day_and_stop_at_creation() -> None:
    created = utc(2025, 11, 6, 15, 0)
    now = utc(2026, 1, 3, 9, 0)  # before the 6th: the current period began in December
    periods = anchored_periods(created, now, 12)
    assert [(w.start, w.end) for w in periods] == [
        (utc(2025, 12, 6), utc(2026, 1, 6)),
        (utc(2025, 11, 6), utc(2025, 12, 6)),
    ]
    # a creation day past the 28th is clamped so February has it too
    assert anchored_start(utc(2025, 1, 31), utc(2025, 3, 1)) == utc(2025, 2, 28)


def test_anchored_periods_give_at_most_count() -> None:
    periods = anchored_periods(utc(2020, 5, 20), utc(2026, 1, 25), 12)
    assert len(periods) == 12
    assert periods[0].start == utc(2026, 1, 20)
    assert periods[-1].start == utc(2025, 2, 20)


def test_month_slots_leave_out_months_before_creation_but_keep_the_partial_first() -> None:
    newest = utc(2026, 2, 1)
    full = month_slots(newest, utc(2020, 1, 1))
    assert len(full) == 12
    assert (month_key(full[0]), month_key(full[-1])) == ("2025-03", "2026-02")
    young = month_slots(newest, utc(2025, 12, 28, 23, 0))
    assert [month_key(s) for s in young] == ["2025-12", "2026-01", "2026-02"]
    assert month_slots(newest, None, count=3) == [utc(2025, 12, 1), utc(2026, 1, 1), utc(2026, 2, 1)]


def test_integrate_splits_a_sample_across_a_month_boundary() -> None:
    week = 7 * 86400
    # a weekly average of 1000 B/s that starts three days before January ends
    sample = RateSample(start=utc(2026, 1, 29).timestamp(), step=week, rx=1000.0, tx=10.0)
    january = integrate([sample], Window(utc(2026, 1, 1), utc(2026, 2, 1)))
    february = integrate([sample], Window(utc(2026, 2, 1), utc(2026, 3, 1)))
    assert january.rx == pytest.approx(1000 * 3 * 86400)
    assert february.rx == pytest.approx(1000 * 4 * 86400)
    assert january.rx + february.rx == pytest.approx(1000 * week)
    assert january.tx == pytest.approx(10 * 3 * 86400)


def test_integrate_ignores_points_without_data() -> None:
    window = Window(utc(2026, 1, 1), utc(2026, 1, 2))
    empty = RateSample(start=window.start.timestamp(), step=3600, rx=None, tx=None)
    assert not integrate([empty], window).has_data
    assert integrate([], window).rx == 0


def test_samples_take_their_step_from_the_spacing() -> None:
    samples = samples_with_steps([(1200.0, 1.0, 2.0), (0.0, 1.0, 2.0), (600.0, None, None)])
    assert [(s.start, s.step) for s in samples] == [(0.0, 600.0), (600.0, 600.0), (1200.0, 600.0)]
    assert not samples[1].has_data
    assert samples_with_steps([(5.0, 1.0, 1.0)])[0].step == 0.0


def test_a_partial_first_month_counts_only_the_days_after_creation() -> None:
    created = utc(2025, 12, 21)
    month = Window(utc(2025, 12, 1), utc(2026, 1, 1))
    existed = month.clip(start=created)
    assert existed.seconds == 11 * 86400
    assert month.clip(start=utc(2026, 2, 1)).seconds == 0
