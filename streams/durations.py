"""Duration strings of the config (``90s``, ``30m``, ``7d``) as integer milliseconds.

Event time is integer epoch milliseconds everywhere in cxpulse, so durations are
too: integer arithmetic keeps window boundaries exact.
"""

from __future__ import annotations

import re

_UNITS_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d|w)\s*$")


def parse_duration_ms(text: str) -> int:
    """Parse ``"90s"`` → 90000. Raises ``ValueError`` with a readable message."""
    if not isinstance(text, str):
        raise ValueError(f"expected a duration string such as '90s', got {text!r}")
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration (use e.g. '500ms', '90s', '30m', '2h', '7d')")
    return int(match.group(1)) * _UNITS_MS[match.group(2)]


def format_duration_ms(ms: int) -> str:
    """Shortest exact spelling of a duration, the inverse of :func:`parse_duration_ms`."""
    for unit in ("w", "d", "h", "m", "s"):
        size = _UNITS_MS[unit]
        if ms and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"
