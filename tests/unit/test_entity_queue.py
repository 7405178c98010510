"""An entity's queue of events waiting for the watermark stays in (event time, arrival) order."""

from __future__ import annotations

import gc
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from cxpulse.streams.families.queue import Queue, enqueue, frozen


@given(st.lists(st.integers(min_value=0, max_value=20), max_size=30))
def test_enqueue_keeps_event_time_then_arrival_order(times: list[int]) -> None:
    queue: Queue | None = None
    seen: list[tuple[Any, ...]] = []
    for arrival, ts in enumerate(times):
        item = (ts, arrival, "added_to_cart")
        old = queue
        queue = enqueue(queue, item)
        seen.append(item)
        assert queue == tuple(sorted(seen, key=lambda e: (e[0], e[1])))
        assert old is None or len(old) == len(queue) - 1  # a new queue, the old one kept


def test_enqueue_leaves_the_old_queue_unchanged() -> None:
    old = ((5, 0, "a"), (9, 1, "b"))
    assert enqueue(old, (7, 2, "c")) == ((5, 0, "a"), (7, 2, "c"), (9, 1, "b"))
    assert enqueue(old, (9, 3, "d")) == ((5, 0, "a"), (9, 1, "b"), (9, 3, "d"))
    assert old == ((5, 0, "a"), (9, 1, "b"))


def test_a_restored_queue_is_tuples_with_shared_labels() -> None:
    shared: dict[tuple[str, ...], tuple[str, ...]] = {}

    def intern(labels: Any) -> tuple[str, ...]:
        key = tuple(labels)
        return shared.setdefault(key, key)

    restored = [[5, 0, "a", ["all", "channel=web"]], [9, 1, "b", ["all", "channel=web"]]]
    queue = frozen(restored, 3, intern)
    assert queue == ((5, 0, "a", ("all", "channel=web")), (9, 1, "b", ("all", "channel=web")))
    assert queue is not None and queue[0][3] is queue[1][3]
    assert frozen(None, 3, intern) is None and frozen([], 3, intern) is None


def test_a_queue_leaves_the_collectors_scans_once_collected() -> None:
    """What the tuples are for: held state that full collections need not traverse (a
    collection untracks a tuple whose items are untracked: one level of nesting each)."""
    labels = ("all", "channel=web")
    queue = enqueue(enqueue(None, (5, 0, "item_added", 1_000, labels)), (9, 1, "x", 0, labels))
    entity = (queue, 2, (labels, 9, 1_000, False), None)
    for _ in range(3):
        gc.collect()
    assert not gc.is_tracked(entity)
    assert not any(gc.is_tracked(item) for item in queue)
