"""Watermarks (SPEC §2): partition and topic watermarks, idle partitions, lateness."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cxpulse.streams.watermarks import (
    PartitionStatus,
    TimePolicy,
    is_late,
    partition_watermark,
    topic_watermark,
)

SEC = 1_000
POLICY = TimePolicy(
    allowed_lateness_ms=120 * SEC, idle_timeout_ms=60 * SEC, max_clock_skew_ms=300 * SEC
)
LATE = POLICY.allowed_lateness_ms
NOW = 1_795_428_900_000  # wall clock in the tests: 2026-11-23T10:15:00Z


def status(partition: int, max_ts: int | None, *, idle: bool = False) -> PartitionStatus:
    """A status whose last arrival was 1 s ago (active) or 61 s ago (idle)."""
    ago = POLICY.idle_timeout_ms + SEC if idle else SEC
    return PartitionStatus(partition, version=10, max_ts=max_ts, last_arrival_wall_ms=NOW - ago)


# --------------------------------------------------------------------------- partition_watermark


def test_partition_watermark() -> None:
    assert partition_watermark(None, POLICY) is None
    assert partition_watermark(NOW, POLICY) == NOW - LATE
    assert partition_watermark(0, POLICY) == -LATE
    assert partition_watermark(5, TimePolicy(0, 1, 1)) == 5


def test_status_watermark_agrees_with_partition_watermark() -> None:
    for max_ts in (None, 0, NOW):
        assert status(0, max_ts).watermark(POLICY) == partition_watermark(max_ts, POLICY)


@pytest.mark.parametrize(
    ("ago", "idle"),
    [
        (0, False),
        (POLICY.idle_timeout_ms - 1, False),
        (POLICY.idle_timeout_ms, False),  # idle *for* idle_timeout means strictly more
        (POLICY.idle_timeout_ms + 1, True),
        (10 * POLICY.idle_timeout_ms, True),
    ],
)
def test_is_idle_boundary(ago: int, idle: bool) -> None:
    s = PartitionStatus(0, 1, NOW, last_arrival_wall_ms=NOW - ago)
    assert s.is_idle(POLICY, NOW) is idle


# --------------------------------------------------------------------------- is_late


@pytest.mark.parametrize(
    ("ts", "partition_wm", "topic_wm", "was_idle", "late"),
    [
        (99, 100, None, False, True),  # strictly below the partition watermark
        (100, 100, None, False, False),  # equal is not late
        (101, 100, None, False, False),
        (0, None, None, False, False),  # before the first event nothing is late
        (0, None, 100, False, False),  # topic watermark ignored on a partition that was not idle
        (150, 100, 200, False, False),
        (150, 100, 200, True, True),  # idle partition: below the topic watermark is late
        (200, 100, 200, True, False),  # ... equal is not
        (201, 100, 200, True, False),
        (50, None, 100, True, True),  # idle partition that never saw an event
        (50, None, None, True, False),
        (99, 100, 50, True, True),  # partition rule still applies
    ],
)
def test_is_late_table(
    ts: int, partition_wm: int | None, topic_wm: int | None, was_idle: bool, late: bool
) -> None:
    assert is_late(ts, partition_wm, topic_wm, was_idle) is late


@given(
    st.integers(-(10**13), 10**13),
    st.none() | st.integers(-(10**13), 10**13),
    st.none() | st.integers(-(10**13), 10**13),
    st.booleans(),
)
def test_is_late_property(ts: int, pwm: int | None, twm: int | None, was_idle: bool) -> None:
    expected = (pwm is not None and ts < pwm) or (was_idle and twm is not None and ts < twm)
    assert is_late(ts, pwm, twm, was_idle) is expected


# --------------------------------------------------------------------------- topic_watermark


def test_min_over_active_partitions() -> None:
    statuses = [status(0, NOW - 10 * SEC), status(1, NOW - 50 * SEC), status(2, NOW)]
    assert topic_watermark(statuses, 3, POLICY, NOW, None) == NOW - 50 * SEC - LATE


def test_idle_partitions_are_left_out() -> None:
    statuses = [status(0, NOW - 10 * SEC), status(1, NOW - 3_600 * SEC, idle=True)]
    assert topic_watermark(statuses, 2, POLICY, NOW, None) == NOW - 10 * SEC - LATE


def test_idle_partition_without_events_is_left_out() -> None:
    statuses = [status(0, NOW - 10 * SEC), status(1, None, idle=True)]
    assert topic_watermark(statuses, 2, POLICY, NOW, None) == NOW - 10 * SEC - LATE


@pytest.mark.parametrize("previous", [None, 0, NOW - 600 * SEC])
def test_partition_without_status_holds_the_watermark(previous: int | None) -> None:
    statuses = [status(0, NOW), status(1, NOW)]
    assert topic_watermark(statuses, 3, POLICY, NOW, previous) == previous
    assert topic_watermark([], 1, POLICY, NOW, previous) == previous


@pytest.mark.parametrize("previous", [None, NOW - 600 * SEC])
def test_active_partition_without_events_holds_the_watermark(previous: int | None) -> None:
    statuses = [status(0, NOW), status(1, None)]
    assert topic_watermark(statuses, 2, POLICY, NOW, previous) == previous


def test_all_idle_and_live_follows_the_wall_clock() -> None:
    statuses = [status(0, NOW - 100 * SEC, idle=True), status(1, NOW - 200 * SEC, idle=True)]
    assert topic_watermark(statuses, 2, POLICY, NOW, None) == NOW - LATE
    assert topic_watermark(statuses, 2, POLICY, NOW, NOW - 400 * SEC) == NOW - LATE


@pytest.mark.parametrize(
    ("newest_ago", "live"),
    [
        (0, True),
        (POLICY.max_clock_skew_ms, True),  # within the skew, boundary included
        (POLICY.max_clock_skew_ms + 1, False),
        (-POLICY.max_clock_skew_ms, True),  # producer clock ahead of ours
        (-POLICY.max_clock_skew_ms - 1, False),
    ],
)
def test_all_idle_live_depends_on_the_newest_ts(newest_ago: int, live: bool) -> None:
    newest = NOW - newest_ago
    statuses = [status(0, newest, idle=True), status(1, newest - 3_600 * SEC, idle=True)]
    previous = newest - 10 * 3_600 * SEC
    expected = NOW - LATE if live else previous
    assert topic_watermark(statuses, 2, POLICY, NOW, previous) == expected


def test_all_idle_old_replay_does_not_move() -> None:
    old = NOW - 30 * 86_400 * SEC
    statuses = [status(0, old, idle=True), status(1, old + 5 * SEC, idle=True)]
    assert topic_watermark(statuses, 2, POLICY, NOW, old - 200 * SEC) == old - 200 * SEC
    assert topic_watermark(statuses, 2, POLICY, NOW, None) is None


def test_all_idle_without_events_does_not_move() -> None:
    statuses = [status(0, None, idle=True), status(1, None, idle=True)]
    assert topic_watermark(statuses, 2, POLICY, NOW, None) is None
    assert topic_watermark(statuses, 2, POLICY, NOW, 42) == 42


def test_never_goes_backwards() -> None:
    statuses = [status(0, NOW - 3_600 * SEC)]
    assert topic_watermark(statuses, 1, POLICY, NOW, NOW) == NOW
    # An idle-then-active partition far behind does not pull the watermark back either.
    statuses = [status(0, NOW), status(1, 0)]
    assert topic_watermark(statuses, 2, POLICY, NOW, NOW - LATE) == NOW - LATE


def test_first_watermark_from_previous_none() -> None:
    assert topic_watermark([status(0, 1_000)], 1, POLICY, NOW, None) == 1_000 - LATE


def _statuses(partitions: int) -> st.SearchStrategy[list[PartitionStatus]]:
    one = st.builds(
        PartitionStatus,
        partition=st.just(0),
        version=st.integers(0, 100),
        max_ts=st.none() | st.integers(NOW - 3_600 * SEC, NOW + 600 * SEC),
        last_arrival_wall_ms=st.integers(NOW - 600 * SEC, NOW + 3_600 * SEC),
    )
    return st.lists(one, min_size=0, max_size=partitions)


@settings(max_examples=150)
@given(
    st.integers(1, 4).flatmap(
        lambda p: st.tuples(
            st.just(p),
            st.lists(
                st.tuples(_statuses(p), st.integers(NOW - 600 * SEC, NOW + 3_600 * SEC)),
                min_size=1,
                max_size=15,
            ),
        )
    ),
    st.none() | st.integers(NOW - 7_200 * SEC, NOW),
)
def test_topic_watermark_never_decreases(
    case: tuple[int, list[tuple[list[PartitionStatus], int]]], start: int | None
) -> None:
    partitions, steps = case
    previous = start
    for statuses, now in steps:
        statuses = [
            PartitionStatus(i, s.version, s.max_ts, s.last_arrival_wall_ms)
            for i, s in enumerate(statuses)
        ]
        wm = topic_watermark(statuses, partitions, POLICY, now, previous)
        if previous is not None:
            assert wm is not None and wm >= previous
        # The candidate is one of: previous, a partition watermark, or wall clock − lateness.
        allowed = {previous, now - LATE} | {s.watermark(POLICY) for s in statuses}
        assert wm in allowed
        previous = wm
