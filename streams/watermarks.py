"""Watermarks (SPEC §2) as small pure objects, shared by every metric family.

* A partition's watermark is the largest ``ts`` seen on it minus
  ``allowed_lateness``; an event strictly below it on arrival is late.
* A topic's watermark is the minimum over its partitions, leaving out those
  idle for ``idle_timeout`` (wall clock). When all are idle and the newest
  event time is within ``max_clock_skew`` of the wall clock, the stream is
  live and the watermark follows the wall clock minus the lateness; an old
  replay never moves by the wall clock.
* A topic watermark never goes back: finality, once published, is final.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TimePolicy:
    """The §2 durations, in milliseconds."""

    allowed_lateness_ms: int
    idle_timeout_ms: int
    max_clock_skew_ms: int


@dataclass(frozen=True, slots=True)
class PartitionStatus:
    """What a source partition tells the merge stage about its event time.

    ``version`` is the offset of the last record it reflects (monotonic per
    partition across owners, so a stale status from a previous owner is
    recognisable); ``last_arrival_wall_ms`` is the owner's wall clock when the
    last valid record arrived (or when it took the partition over).
    """

    partition: int
    version: int
    max_ts: int | None
    last_arrival_wall_ms: int
    #: the effective watermark the source has made its time-driven decisions up to
    ack: int | None = None

    def watermark(self, policy: TimePolicy) -> int | None:
        return None if self.max_ts is None else self.max_ts - policy.allowed_lateness_ms

    def is_idle(self, policy: TimePolicy, now_wall_ms: int) -> bool:
        return now_wall_ms - self.last_arrival_wall_ms > policy.idle_timeout_ms


def partition_watermark(max_ts: int | None, policy: TimePolicy) -> int | None:
    """``max_ts − allowed_lateness``, or ``None`` before the first event."""
    return None if max_ts is None else max_ts - policy.allowed_lateness_ms


def topic_watermark(
    statuses: Iterable[PartitionStatus],
    partitions: int,
    policy: TimePolicy,
    now_wall_ms: int,
    previous: int | None,
) -> int | None:
    """The topic watermark from the latest status of each of its ``partitions``.

    A partition with no status yet holds the watermark back (its owner has not
    reported, so nothing is known about it) unless it is idle by rule, which
    needs a status; partitions that reported but never saw an event hold it
    back until they are idle.
    """
    known = list(statuses)
    if len(known) < partitions:
        return previous
    active = [s for s in known if not s.is_idle(policy, now_wall_ms)]
    candidate: int | None
    if active:
        marks = [s.watermark(policy) for s in active]
        candidate = (
            None if any(m is None for m in marks) else min(m for m in marks if m is not None)
        )
    else:
        newest = max((s.max_ts for s in known if s.max_ts is not None), default=None)
        live = newest is not None and abs(now_wall_ms - newest) <= policy.max_clock_skew_ms
        candidate = now_wall_ms - policy.allowed_lateness_ms if live else None
    if candidate is None:
        return previous
    return candidate if previous is None else max(previous, candidate)


def is_late(ts: int, partition_wm: int | None, topic_wm: int | None, was_idle: bool) -> bool:
    """§2 lateness: strictly below the partition watermark, or, on a partition that
    was idle, strictly below the topic watermark (which moved on without it)."""
    if partition_wm is not None and ts < partition_wm:
        return True
    return was_idle and topic_wm is not None and ts < topic_wm
