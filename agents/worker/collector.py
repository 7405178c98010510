"""When a worker's cyclic garbage collector runs: at batch boundaries, not by allocation count.

Why. A fetched batch (up to 20k aiokafka records) is still alive when the young
collections its own allocation triggers run, so with CPython's default collector it
is promoted to the oldest generation; that generation growing by a quarter triggers
a full collection, which scans every record in flight and every state entry. A
worker draining 200k survey events then spends about a quarter of its CPU in
collections, most of it in full ones. Raising the young threshold instead lets
cyclic garbage linger and grows a flooded worker's memory
(``tests/integration/test_hostile_input.py``).

Policy, while the worker processes batches:

* automatic collection is off;
* after each batch the young generations are collected (``gc.collect(1)``): the
  batch's own records are dead by then (freed by reference counting), so the
  collection sees only what the batch left alive and the cycles it made;
* a full collection runs from the worker's timer once ``min_interval_s`` has passed
  since the last one *and* ``1 / max_share`` times the last one's duration, so full
  collections cost at most ``max_share`` of the time however large the state grows
  (held state is mostly tuples and ints the collector no longer scans, yet 1M open
  carts still make one take ~85 ms: docs/performance.md, "State and recovery").

While tables recover there are no batch boundaries, so the default automatic
collection is back on from a revocation until the rebalance completes.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable


class CollectionPolicy:
    """Drives :mod:`gc` for a worker (see the module docstring)."""

    def __init__(
        self,
        *,
        min_interval_s: float = 1.0,
        max_share: float = 0.02,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.min_interval_s = min_interval_s
        self.max_share = max_share
        self._clock = clock
        self._last_full_at = clock()
        self._last_full_s = 0.0
        #: collections this policy ran, for tests and the curious
        self.young_runs = 0
        self.full_runs = 0

    @staticmethod
    def freeze_startup() -> None:
        """Move the objects alive at start-up (modules, settings, the app) out of every scan."""
        gc.freeze()

    @property
    def driving(self) -> bool:
        """True while batches drive collection (automatic collection off)."""
        return not gc.isenabled()

    def batches_begin(self) -> None:
        """Tables are recovered and batches flow: collect at their boundaries from now on."""
        gc.disable()
        self._last_full_at = self._clock()

    def batches_end(self) -> None:
        """A rebalance starts (table recovery ahead, no batches): automatic collection again."""
        gc.enable()

    def after_batch(self) -> None:
        """Collect the young generations: what the batch just processed left behind."""
        if self.driving:
            gc.collect(1)
            self.young_runs += 1

    def tick(self) -> None:
        """From the worker's timer: the young generations, and a full collection when due."""
        if not self.driving:
            return
        now = self._clock()
        due = max(self.min_interval_s, self._last_full_s / self.max_share)
        if now - self._last_full_at < due:
            gc.collect(1)
            self.young_runs += 1
            return
        gc.collect()
        self.full_runs += 1
        self._last_full_at = self._clock()
        self._last_full_s = self._last_full_at - now
