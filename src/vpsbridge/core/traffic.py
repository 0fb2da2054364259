"""Month arithmetic and rate integration for traffic history, shared by drivers, simulators and the portal.

Traffic is reported per month, but "month" means two different things upstream: VirtFusion counts
periods from the day a server was created (a server made on the 6th has periods 6th-5th), while
Proxmox keeps no accounting at all and a month has to be estimated from RRD averages (rate x step)
over calendar months. Both need the same careful arithmetic - December to January, a first month
that starts mid-way because the server is younger, anchor days that do not exist in February - and
getting it wrong shows a client a month twice or not at all. It lives here, without I/O, so it can
be tested on its own.

All datetimes are timezone-aware UTC; period starts are midnight.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

#: VirtFusion anchors periods on the creation day, clamped so that every month has that day.
MAX_ANCHOR_DAY = 28


def month_start(t: dt.datetime) -> dt.datetime:
    """Midnight on the first day of ``t``'s calendar month (same timezone)."""
    return t.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def add_months(t: dt.datetime, months: int) -> dt.datetime:
    """``t`` moved by whole calendar months (negative = back); the day is clamped to the month's length.

    Clamping matters for anchors like the 31st: one month after January 31st is the last day of
    February, not March 3rd.
    """
    index = t.year * 12 + (t.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    return t.replace(year=year, month=month, day=min(t.day, days_in_month(year, month)))


def days_in_month(year: int, month: int) -> int:
    following = dt.date(year + (month == 12), month % 12 + 1, 1)
    return (following - dt.timedelta(days=1)).day


def month_key(t: dt.datetime) -> str:
    """``YYYY-MM`` of ``t``: how a month is named in answers and on chart labels."""
    return f"{t.year:04d}-{t.month:02d}"


@dataclass(frozen=True, slots=True)
class Window:
    """A half-open stretch of time ``[start, end)``."""

    start: dt.datetime
    end: dt.datetime

    @property
    def seconds(self) -> float:
        return max(0.0, (self.end - self.start).total_seconds())

    def clip(self, start: dt.datetime | None = None, end: dt.datetime | None = None) -> Window:
        """The part of this window after ``start`` and before ``end`` (possibly empty)."""
        lo = max(self.start, start) if start is not None else self.start
        hi = min(self.end, end) if end is not None else self.end
        return Window(lo, max(lo, hi))


def calendar_months(now: dt.datetime, count: int) -> list[Window]:
    """The last ``count`` calendar months, newest first; the current one ends at ``now``."""
    current = month_start(now)
    out = [Window(current, now)]
    for n in range(1, count):
        start = add_months(current, -n)
        out.append(Window(start, add_months(current, -n + 1)))
    return out


def anchored_start(anchor: dt.datetime, t: dt.datetime) -> dt.datetime:
    """The start of the period that contains ``t`` when periods begin on ``anchor``'s day of the month.

    ``anchor``'s day is clamped to :data:`MAX_ANCHOR_DAY`, as VirtFusion does, so every month has it.
    """
    day = min(anchor.day, MAX_ANCHOR_DAY)
    start = t.replace(day=day, hour=0, minute=0, second=0, microsecond=0)
    if start > t:
        start = add_months(start, -1)
    return start


def anchored_periods(created: dt.datetime, now: dt.datetime, count: int) -> list[Window]:
    """Up to ``count`` periods anchored on ``created``'s day, newest first, none before ``created``.

    Every window is a whole period (the current one included); the first period of a young server
    starts before ``created`` - callers that count usage clip it with :meth:`Window.clip`.
    """
    current = anchored_start(created, now)
    oldest = anchored_start(created, created)
    out: list[Window] = []
    for n in range(count):
        start = add_months(current, -n)
        if start < oldest:
            break
        out.append(Window(start, add_months(current, -n + 1)))
    return out


def month_slots(newest: dt.datetime, created: dt.datetime | None, count: int = 12) -> list[dt.datetime]:
    """Month starts for a chart of ``count`` months ending with ``newest``'s month, oldest first.

    Months that ended before ``created`` are left out (the server did not exist); the month it was
    created in stays, because it holds the partial first month.
    """
    last = month_start(newest)
    first = add_months(last, -(count - 1))
    if created is not None:
        first = max(first, month_start(created))
    out: list[dt.datetime] = []
    slot = first
    while slot <= last:
        out.append(slot)
        slot = add_months(slot, 1)
    return out


@dataclass(frozen=True, slots=True)
class RateSample:
    """One averaged data point: byte rates (per second) over ``[start, start + step)``; ``None`` = no data.

    Proxmox labels each RRD row with the *start* of the interval it averages (``create_rrd_data``
    counts ``time`` up from the fetch's start), so a sample covers the step after its time.
    """

    start: float
    step: float
    rx: float | None
    tx: float | None

    @property
    def has_data(self) -> bool:
        return self.rx is not None or self.tx is not None


@dataclass(frozen=True, slots=True)
class Integrated:
    """Bytes in a window estimated from samples, and how many seconds of it had data."""

    rx: float = 0.0
    tx: float = 0.0
    covered: float = 0.0

    @property
    def has_data(self) -> bool:
        return self.covered > 0


def integrate(samples: Iterable[RateSample], window: Window) -> Integrated:
    """Bytes received and sent in ``window``: each sample's rate times its overlap with the window.

    A sample that straddles the window's edge (a weekly average across a month boundary) counts
    only with the part inside, so consecutive windows never count a second twice.
    """
    lo, hi = window.start.timestamp(), window.end.timestamp()
    rx = tx = covered = 0.0
    for s in samples:
        if not s.has_data or s.step <= 0:
            continue
        overlap = min(hi, s.start + s.step) - max(lo, s.start)
        if overlap <= 0:
            continue
        rx += (s.rx or 0.0) * overlap
        tx += (s.tx or 0.0) * overlap
        covered += overlap
    return Integrated(rx, tx, covered)


def samples_with_steps(points: Iterable[tuple[float, float | None, float | None]]) -> list[RateSample]:
    """(time, rx rate, tx rate) points, sorted, each step taken from the spacing to the next point.

    The last point borrows the spacing before it, because an RRD series is evenly spaced.
    """
    ordered = sorted(points, key=lambda p: p[0])
    out: list[RateSample] = []
    for i, (t, rx, tx) in enumerate(ordered):
        if i + 1 < len(ordered):
            step = ordered[i + 1][0] - t
        elif i > 0:
            step = t - ordered[i - 1][0]
        else:
            step = 0.0
        out.append(RateSample(start=t, step=step, rx=rx, tx=tx))
    return out


def _series_start(samples: list[RateSample]) -> float | None:
    return min((s.start for s in samples), default=None)


def _estimate(samples: list[RateSample], window: Window) -> Integrated:
    """Bytes in ``window``, scaled up when the series does not reach back to the window's start.

    A series that already has data in its first row means the guest existed before the series
    began, so the uncovered part of the window is assumed to look like the covered part. A series
    whose first rows are empty began before the guest, so nothing is extrapolated.
    """
    got = integrate(samples, window)
    begin = _series_start(samples)
    if begin is None or not got.has_data or begin <= window.start.timestamp():
        return got
    first = min(samples, key=lambda s: s.start)
    if not first.has_data:
        return got
    factor = window.seconds / got.covered if got.covered else 1.0
    return Integrated(got.rx * factor, got.tx * factor, window.seconds)


def estimate_months(
    coarse: list[RateSample], fine: list[RateSample], windows: list[Window]
) -> list[tuple[Window, Integrated]]:
    """Per-month estimates from RRD averages, newest first, for ``windows`` (newest first).

    The first window (the current month) uses the ``fine`` series where it reaches and the
    ``coarse`` one for any earlier part of the month; older months use ``coarse`` alone. Months
    with no data at all (before the guest existed) are left out; the current month always stays.
    """
    out: list[tuple[Window, Integrated]] = []
    fine_begin = _series_start([s for s in fine if s.step > 0])
    for index, window in enumerate(windows):
        if index == 0 and fine_begin is not None:
            split = max(window.start, dt.datetime.fromtimestamp(fine_begin, tz=window.start.tzinfo))
            recent = integrate(fine, window.clip(start=split))
            earlier = _estimate(coarse, window.clip(end=split)) if split > window.start else Integrated()
            total = Integrated(
                recent.rx + earlier.rx, recent.tx + earlier.tx, recent.covered + earlier.covered
            )
        else:
            total = _estimate(coarse, window)
        if index == 0 or total.has_data:
            out.append((window, total))
    return out
