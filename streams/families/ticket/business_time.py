"""Business-time arithmetic for the ``_business`` ticket metrics (SPEC §3.3).

A :class:`BusinessCalendar` turns a :class:`~cxpulse.streams.settings.BusinessHours` schedule
(a time zone, weekly opening ranges in local wall-clock time, and closed local dates)
into two pure functions on UTC epoch milliseconds:

* :meth:`BusinessCalendar.business_ms` — how much business time lies in ``[start, end)``,
  used for the ``*_seconds_business`` durations;
* :meth:`BusinessCalendar.add_business_ms` — the instant at which a given amount of
  business time has elapsed since ``start``, used for the business-time SLA deadline
  (``deadline = add_business_ms(created, target)``).

Semantics
---------
Each local date ``D`` that is not a holiday is open during its weekday's ranges. A range
``[s, e)`` (minutes since local midnight, ``e`` may be 1440 for 24:00 = the next midnight)
is turned into the UTC interval ``[utc(D, s), utc(D, e))`` and counts the *real* elapsed
time between those two instants, so daylight saving is included: on the spring-forward
day in Europe/Madrid ``00:00-04:00`` is 3 hours, on the fall-back day 5 hours.

The local wall time → UTC mapping ``utc(D, m)``:

* an ordinary local time has exactly one instant;
* an ambiguous local time (the repeated hour at fall-back) takes its first occurrence
  (``fold=0``);
* a nonexistent local time (the skipped hour at spring-forward) maps to the instant the
  gap ends (the transition itself, e.g. 02:30 on 2026-03-29 in Madrid → 01:00 UTC).

This mapping is monotone (non-decreasing) in wall time, so the UTC intervals of all the
ranges of all the dates are ordered and disjoint; a range lying entirely in a gap is empty.
A consequence of mapping the *endpoints* (rather than testing each instant's wall time):
a range that starts or ends inside the repeated hour covers the repeated part only once,
from or up to its first occurrence (``02:00-02:30`` on the Madrid fall-back day is 30
minutes, not an hour). Ranges whose endpoints avoid the repeated hour contain exactly the
instants whose local wall time lies in them.

Performance
-----------
Per local date, the UTC intervals (and their total) are computed once and kept in a
bounded LRU cache (4096 dates by default, about 11 years). ``business_ms`` and
``add_business_ms`` then walk the span date by date: a span of ``n`` local dates costs
``n + 2`` cache look-ups plus clipping at both ends, whatever the length of the ranges.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable

from cxpulse.streams.settings import BusinessHours

__all__ = ["DEFAULT_CACHE_DATES", "BusinessCalendar"]

DEFAULT_CACHE_DATES = 4096
"""Local dates whose UTC opening intervals are kept per calendar (about 11 years)."""

_MINUTES_PER_DAY = 1440
_EPOCH_UTC = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_EPOCH_NAIVE = _EPOCH_UTC.replace(tzinfo=None)
_ONE_MS = dt.timedelta(milliseconds=1)

_Interval = tuple[int, int]
# (first start, last end, intervals, total ms); a closed date has no intervals.
_Day = tuple[int, int, tuple[_Interval, ...], int]
_CLOSED: _Day = (0, 0, (), 0)


def _weekly_ranges(hours: Iterable[tuple[int, int, int]]) -> tuple[tuple[_Interval, ...], ...]:
    """Validate ``(weekday, start_minute, end_minute)`` triples; per weekday, sorted and merged.

    Overlapping or touching ranges of the same day are merged (the settings loader already
    rejects overlaps, but a hand-built :class:`BusinessHours` need not be that careful).
    """
    per_day: list[list[_Interval]] = [[] for _ in range(7)]
    for entry in hours:
        weekday, start, end = entry
        if not 0 <= weekday <= 6:
            raise ValueError(f"business hours: weekday {weekday} not in 0..6 (0 = Monday)")
        if not 0 <= start < end <= _MINUTES_PER_DAY:
            raise ValueError(
                f"business hours: range {start}-{end} (minutes) must satisfy 0 <= start < end"
                f" <= {_MINUTES_PER_DAY}"
            )
        per_day[weekday].append((start, end))
    weekly: list[tuple[_Interval, ...]] = []
    for ranges in per_day:
        merged: list[_Interval] = []
        for start, end in sorted(ranges):
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        weekly.append(tuple(merged))
    return tuple(weekly)


class BusinessCalendar:
    """Business-time arithmetic on UTC epoch milliseconds for one schedule.

    Instances are cheap to query and safe to share; the only state is the per-date cache.
    Raises :class:`ValueError` if the schedule has no open hours in the week or a range is
    malformed (weekday outside 0..6, not ``0 <= start < end <= 1440``).
    """

    __slots__ = ("_day", "_holidays", "_ranges", "_zone")

    def __init__(self, hours: BusinessHours, *, cache_dates: int = DEFAULT_CACHE_DATES) -> None:
        self._zone = hours.zone
        self._ranges = _weekly_ranges(hours.hours)
        if not any(self._ranges):
            raise ValueError("business hours: no open hours in the week")
        self._holidays = frozenset(day.toordinal() for day in hours.holidays)
        self._day = functools.lru_cache(maxsize=cache_dates)(self._compute_day)

    # -- queries ----------------------------------------------------------------------------

    def business_ms(self, start_ms: int, end_ms: int) -> int:
        """Milliseconds of business time inside ``[start_ms, end_ms)``; 0 if ``end <= start``."""
        if end_ms <= start_ms:
            return 0
        total = 0
        day = self._day
        # One date of margin either side: around a DST change at midnight an instant's
        # intervals may belong to the neighbouring local date. Clipping makes this exact.
        for ordinal in range(self._ordinal(start_ms) - 1, self._ordinal(end_ms) + 2):
            first, last, intervals, day_total = day(ordinal)
            if not intervals or last <= start_ms or first >= end_ms:
                continue
            if start_ms <= first and last <= end_ms:
                total += day_total
                continue
            for s, e in intervals:
                s = max(s, start_ms)
                e = min(e, end_ms)
                if e > s:
                    total += e - s
        return total

    def add_business_ms(self, start_ms: int, duration_ms: int) -> int:
        """The earliest instant ``t >= start_ms`` with ``business_ms(start_ms, t) == duration_ms``.

        ``duration_ms`` 0 gives ``start_ms`` itself (even outside hours); otherwise the
        result lies inside an opening interval or at its end. Raises :class:`ValueError`
        for a negative duration.
        """
        if duration_ms < 0:
            raise ValueError(f"negative business duration: {duration_ms} ms")
        if duration_ms == 0:
            return start_ms
        remaining = duration_ms
        day = self._day
        ordinal = self._ordinal(start_ms) - 1
        # The weekly schedule has open hours and holidays are finite, so this ends; the
        # bound only turns an impossible endless loop into an error.
        closed_run, max_closed_run = 0, len(self._holidays) + 400
        while True:
            first, last, intervals, day_total = day(ordinal)
            ordinal += 1
            if not intervals or last <= start_ms:
                closed_run += 1
                if closed_run > max_closed_run:  # pragma: no cover - defensive
                    raise RuntimeError("business calendar: no open interval found")
                continue
            closed_run = 0
            if first >= start_ms and day_total < remaining:
                remaining -= day_total
                continue
            for s, e in intervals:
                if e <= start_ms:
                    continue
                s = max(s, start_ms)
                if e - s >= remaining:
                    return s + remaining
                remaining -= e - s

    def open_intervals(self, day: dt.date) -> tuple[tuple[int, int], ...]:
        """The UTC ``[start_ms, end_ms)`` opening intervals of one local date (empty if closed)."""
        return self._day(day.toordinal())[2]

    # -- internals ---------------------------------------------------------------------------

    def _ordinal(self, ms: int) -> int:
        """Proleptic Gregorian ordinal of the local date of the instant ``ms``."""
        return dt.datetime.fromtimestamp(ms // 1000, self._zone).toordinal()

    def _compute_day(self, ordinal: int) -> _Day:
        if ordinal in self._holidays:
            return _CLOSED
        ranges = self._ranges[(ordinal - 1) % 7]  # ordinal 1 (0001-01-01) is a Monday
        if not ranges:
            return _CLOSED
        midnight = dt.datetime.fromordinal(ordinal)
        intervals: list[_Interval] = []
        for start, end in ranges:
            s = self._wall_to_ms(midnight + dt.timedelta(minutes=start))
            e = self._wall_to_ms(midnight + dt.timedelta(minutes=end))
            if e > s:  # a range lying entirely in a spring-forward gap is empty
                intervals.append((s, e))
        if not intervals:
            return _CLOSED
        return (
            intervals[0][0],
            intervals[-1][1],
            tuple(intervals),
            sum(e - s for s, e in intervals),
        )

    def _wall_to_ms(self, wall: dt.datetime) -> int:
        """UTC epoch ms of a naive local wall time: ``fold=0`` if ambiguous, gap end if skipped."""
        zone = self._zone
        aware = wall.replace(tzinfo=zone)
        ms = self._naive_to_ms(wall, aware)
        if self._local(ms) == wall:
            return ms
        # Nonexistent wall time. ``fold`` 0 and 1 use the offsets before and after the
        # transition; the transition instant T lies between the two readings, and it is the
        # first instant whose wall time is >= ``wall``: binary search on milliseconds.
        other = self._naive_to_ms(wall, wall.replace(tzinfo=zone, fold=1))
        lo, hi = min(ms, other), max(ms, other)  # wall(lo) < wall <= wall(hi)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self._local(mid) >= wall:
                hi = mid
            else:
                lo = mid
        return hi

    @staticmethod
    def _naive_to_ms(wall: dt.datetime, aware: dt.datetime) -> int:
        offset = aware.utcoffset()
        assert offset is not None  # a ZoneInfo always has an offset
        return (wall - offset - _EPOCH_NAIVE) // _ONE_MS

    def _local(self, ms: int) -> dt.datetime:
        """Naive local wall time of the instant ``ms`` (fold dropped)."""
        return (
            (_EPOCH_UTC + dt.timedelta(milliseconds=ms))
            .astimezone(self._zone)
            .replace(tzinfo=None, fold=0)
        )
