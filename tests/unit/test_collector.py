"""The worker's garbage-collection policy (agents/worker/collector.py), on the real gc."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from cxpulse.agents.worker.collector import CollectionPolicy


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Blob:
    """An object in a reference cycle: only the cyclic collector can free it."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture(autouse=True)
def restore_gc() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    if enabled:
        gc.enable()
    else:  # pragma: no cover - the suite runs with the collector on
        gc.disable()


def _cycle() -> weakref.ref[Blob]:
    return weakref.ref(Blob())


def test_batches_turn_automatic_collection_off_and_a_rebalance_turns_it_back_on() -> None:
    policy = CollectionPolicy(clock=Clock())
    assert gc.isenabled() and not policy.driving
    policy.batches_begin()
    assert not gc.isenabled() and policy.driving
    policy.batches_end()
    assert gc.isenabled() and not policy.driving


def test_a_cycle_left_by_a_batch_is_collected_after_it() -> None:
    policy = CollectionPolicy(clock=Clock())
    policy.batches_begin()
    garbage = _cycle()
    for _ in range(20_000):  # allocations that would have triggered automatic collections
        [object()]
    assert garbage() is not None, "automatic collection is off while batches drive it"
    policy.after_batch()
    assert garbage() is None
    assert policy.young_runs == 1


def test_after_batch_does_nothing_while_tables_recover() -> None:
    policy = CollectionPolicy(clock=Clock())
    policy.after_batch()
    policy.tick()
    assert (policy.young_runs, policy.full_runs) == (0, 0)


def test_a_full_collection_reaches_garbage_promoted_to_the_oldest_generation() -> None:
    clock = Clock()
    policy = CollectionPolicy(min_interval_s=1.0, clock=clock)
    policy.batches_begin()
    blob = Blob()
    old = weakref.ref(blob)
    gc.collect(1)  # alive at a batch boundary: promoted to the oldest generation
    del blob
    policy.after_batch()
    assert old() is not None, "young collections do not scan the oldest generation"
    clock.now += 0.5
    policy.tick()
    assert old() is not None and policy.full_runs == 0, "not due before min_interval_s"
    clock.now += 0.6
    policy.tick()
    assert old() is None and policy.full_runs == 1


def test_full_collections_take_at_most_max_share_of_the_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    policy = CollectionPolicy(min_interval_s=1.0, max_share=0.02, clock=clock)
    policy.batches_begin()

    def slow_full_collection() -> None:
        clock.now += 0.5  # a full collection of a big state takes 0.5 s

    clock.now += 1.0
    original = gc.collect

    def timed(generation: int = 2) -> int:
        if generation == 2:
            slow_full_collection()
        return original(generation)

    monkeypatch.setattr(gc, "collect", timed)
    policy.tick()
    assert policy.full_runs == 1
    clock.now += 24.0  # 0.5 s / 0.02 = 25 s between full collections
    policy.tick()
    assert policy.full_runs == 1
    clock.now += 1.0
    policy.tick()
    assert policy.full_runs == 2
