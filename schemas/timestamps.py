"""Event-time values: parse the two wire forms of ``ts`` and format epoch ms as RFC 3339.

Accepted by :func:`parse_ts` (SPEC §1, field ``ts``):

* an integer number of epoch milliseconds: a JSON integer, or a JSON number with an
  integral value (``1700000000000.0``); ``true``/``false`` are *not* numbers;
* an RFC 3339 ``date-time`` string **with** an offset, e.g. ``2026-11-23T10:15:00.123Z``
  or ``2026-11-23T11:15:00+01:00``. Per RFC 3339 §5.6 the ``T`` and ``Z`` may be lower
  case and the date/time separator may be a space. Fractional seconds of any length are
  truncated (not rounded) to milliseconds. ``-00:00`` is read as UTC. A leap second
  (``:60``) is accepted and lands on the first millisecond of the next second, as POSIX
  time does. A string without an offset (a naive local time) is unparsable: its instant
  is unknown.

Both forms must fall in years 0001-9999 (UTC), the range :func:`format_ts` can write;
anything else is unparsable (``None``), which the event decoders report as ``schema``.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

__all__ = ["MAX_TS_MS", "MIN_TS_MS", "format_ts", "parse_ts"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_DAY_MS = 86_400_000

#: Smallest / largest accepted epoch ms: 0001-01-01T00:00:00.000Z .. 9999-12-31T23:59:59.999Z.
MIN_TS_MS = (date(1, 1, 1).toordinal() - _EPOCH_ORDINAL) * _DAY_MS
MAX_TS_MS = (date(9999, 12, 31).toordinal() - _EPOCH_ORDINAL + 1) * _DAY_MS - 1

# [0-9] rather than \d: \d also matches non-ASCII digits such as "٣".
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]"
    r"([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))"
)


def parse_ts(value: object) -> int | None:
    """Return ``value`` as epoch milliseconds, or ``None`` when it is not a valid ``ts``."""
    if type(value) is int:  # the hot path: producers send integers (bool is excluded)
        ms = value
    elif type(value) is float:
        if not value.is_integer():  # also rejects NaN and infinities
            return None
        ms = int(value)
    elif type(value) is str:
        return _parse_rfc3339(value)
    else:  # bool, None, list, dict, subclasses
        return None
    if MIN_TS_MS <= ms <= MAX_TS_MS:
        return ms
    return None


def _parse_rfc3339(text: str) -> int | None:
    m = _RFC3339.fullmatch(text)
    if m is None:
        return None
    year, month, day, hour, minute, second, frac, sign, off_h, off_m = m.groups()
    h, mi, s = int(hour), int(minute), int(second)
    if h > 23 or mi > 59 or s > 60:
        return None
    try:
        days = date(int(year), int(month), int(day)).toordinal() - _EPOCH_ORDINAL
    except ValueError:  # month 13, February 30, year 0000, ...
        return None
    ms = days * _DAY_MS + ((h * 60 + mi) * 60 + s) * 1000
    if frac is not None:
        ms += int(frac[:3].ljust(3, "0"))
    if sign is not None:
        oh, om = int(off_h), int(off_m)
        if oh > 23 or om > 59:
            return None
        offset_ms = (oh * 60 + om) * 60_000
        ms += -offset_ms if sign == "+" else offset_ms
    if MIN_TS_MS <= ms <= MAX_TS_MS:
        return ms
    return None


@lru_cache(maxsize=1 << 16)
def format_ts(ms: int) -> str:
    """Format epoch ms as ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (UTC, exactly 3 fraction digits).

    The inverse of :func:`parse_ts` for such strings. Raises ``OverflowError`` outside
    years 0001-9999 (``parse_ts`` never returns such a value). Cached: KPI records
    repeat the same window bounds across metrics and segments (~1.4 calls per event
    on the survey benchmark, py-spy).
    """
    dt = _EPOCH + timedelta(milliseconds=ms)
    return (
        f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T"
        f"{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}.{ms % 1000:03d}Z"
    )
