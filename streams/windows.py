"""Hopping windows ``size/step`` aligned to the UTC epoch, as pure integer arithmetic.

A window ``size/step`` with end ``E`` (a multiple of ``step``) covers attribution
times ``E - size <= t < E``. cxpulse never stores windows: it stores *buckets* of
width ``step`` (one grid per distinct step) and sums ``size // step`` adjacent
buckets to get a window. That keeps state per bucket, not per window, and makes
every window a merge of the same integer aggregates, whatever the order.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from cxpulse.streams.durations import format_duration_ms, parse_duration_ms


@dataclass(frozen=True, slots=True, order=True)
class WindowSpec:
    """A hopping window: ``size_ms`` long, a new one every ``step_ms``."""

    size_ms: int
    step_ms: int
    #: How the config spelled it (``24h/15m`` stays ``24h/15m``, not ``1d/15m``).
    label: str = field(default="", compare=False)

    @property
    def name(self) -> str:
        """The spelling used in KPI records and Prometheus labels, e.g. ``1h/1m``."""
        if self.label:
            return self.label
        return f"{format_duration_ms(self.size_ms)}/{format_duration_ms(self.step_ms)}"

    @property
    def buckets_per_window(self) -> int:
        return self.size_ms // self.step_ms


def parse_window(text: str) -> WindowSpec:
    """Parse ``"1h/1m"``; the size must be a positive multiple of the step."""
    if not isinstance(text, str) or text.count("/") != 1:
        raise ValueError(f"{text!r} is not a window (write it size/step, e.g. '1h/1m')")
    size_s, step_s = text.split("/")
    size, step = parse_duration_ms(size_s), parse_duration_ms(step_s)
    if step <= 0 or size <= 0:
        raise ValueError(f"window {text!r}: size and step must be positive")
    if size % step:
        raise ValueError(f"window {text!r}: the size must be a whole multiple of the step")
    return WindowSpec(size, step, text.strip())


def bucket_start(ts_ms: int, step_ms: int) -> int:
    """Start of the ``step``-wide bucket holding ``ts_ms`` (floor, also for negative times)."""
    return ts_ms - ts_ms % step_ms


def window_ends_for(ts_ms: int, spec: WindowSpec) -> range:
    """Every window end ``E`` whose window covers ``ts_ms`` (``E - size <= ts < E``)."""
    first = bucket_start(ts_ms, spec.step_ms) + spec.step_ms
    return range(first, first + spec.size_ms, spec.step_ms)


def current_window_end(watermark_ms: int, spec: WindowSpec) -> int:
    """End of the window whose last step contains the watermark: the open one."""
    return bucket_start(watermark_ms, spec.step_ms) + spec.step_ms


def ends_closed_between(
    bucket_starts: Iterable[int], spec: WindowSpec, after_ms: int | None, upto_ms: int
) -> Iterator[int]:
    """Window ends ``E`` with ``after < E <= upto`` that cover at least one of ``bucket_starts``.

    These are exactly the windows that became final when the watermark moved from
    ``after`` to ``upto`` and that have an observation (windows with none are skipped).
    Linear in the number of starts (sorted first): the windows covering a start
    form one run of ends, and the runs of sorted starts are merged as they come.
    """
    step, size = spec.step_ms, spec.size_ms
    lowest = None if after_ms is None else after_ms + step - after_ms % step
    out: list[int] = []
    reached: int | None = None  # the last end already yielded
    for start in sorted(bucket_starts):
        first = start - start % step + step  # the first end covering ``start``
        last = min(first + size - step, upto_ms - upto_ms % step)
        if lowest is not None and first < lowest:
            first = lowest
        if reached is not None and first <= reached:
            first = reached + step
        if first <= last:
            out.extend(range(first, last + 1, step))
            reached = last
    return iter(out)


def ends_closed_in(
    starts: Sequence[int], spec: WindowSpec, after_ms: int | None, upto_ms: int
) -> Iterator[int]:
    """:func:`ends_closed_between` of *ascending* ``starts``, looking only at the starts
    an end in ``(after, upto]`` can cover: ``lowest - size <= start < upto``, ``lowest``
    the first end after ``after`` and ``upto`` floored to the step (found by bisection).

    The merge stage asks this of every series at every watermark move, and a series
    holds the buckets of its longest window (a ``7d/1h`` one, 168 and more): the
    unsorted form walks them all, most of them long final.
    """
    step, size = spec.step_ms, spec.size_ms
    hi = bisect_left(starts, upto_ms - upto_ms % step)
    lo = 0 if after_ms is None else bisect_left(starts, after_ms + step - after_ms % step - size)
    return ends_closed_between(starts[lo:hi], spec, after_ms, upto_ms)
