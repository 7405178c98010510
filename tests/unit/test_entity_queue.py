"""An entity's queue of events waiting for the watermark stays in (event time, arrival) order."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from cxpulse.streams.families.queue import enqueue


@given(st.lists(st.integers(min_value=0, max_value=20), max_size=30))
def test_enqueue_keeps_event_time_then_arrival_order(times: list[int]) -> None:
    queue: list[list[Any]] | None = None
    seen: list[list[Any]] = []
    for arrival, ts in enumerate(times):
        item = [ts, arrival, "added_to_cart"]
        old, copy = queue, None if queue is None else list(queue)
        queue = enqueue(queue, item)
        seen.append(item)
        assert queue == sorted(seen, key=lambda e: (e[0], e[1]))
        assert old == copy  # entity values are never changed in place


def test_enqueue_leaves_the_old_queue_unchanged() -> None:
    old = [[5, 0, "a"], [9, 1, "b"]]
    assert enqueue(old, [7, 2, "c"]) == [[5, 0, "a"], [7, 2, "c"], [9, 1, "b"]]
    assert enqueue(old, [9, 3, "d"]) == [[5, 0, "a"], [9, 1, "b"], [9, 3, "d"]]
    assert old == [[5, 0, "a"], [9, 1, "b"]]
