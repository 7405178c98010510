"""The queue of an entity's events waiting for the watermark (carts, tickets).

A cart or ticket applies its events only once the watermark has passed them, in
event-time order, ties by arrival (SPEC §3.2, §3.3). Its entity keeps them as a
tuple of items ``(ts, arrival, ...)``, ``arrival`` counting up per entity.

Tuples, not lists: a tuple holding only ints, strings and tuples of them is left
out of the cyclic collector's scans once a collection has seen it (CPython untracks
it), so a full collection no longer walks every open cart's and customer's events and
session (a ticket's tuple, holding its state dict, stays tracked): with 1M open carts
one takes ~84 ms, against ~776 ms as lists (``benchmarks/state_size.py``). Values
restored from the changelog come back as lists: the families' ``compact`` makes them
tuples.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

_ORDER = itemgetter(0, 1)  # event time, then arrival

Item = tuple[Any, ...]
Queue = tuple[Item, ...]


def enqueue(queue: Queue | None, item: Item) -> Queue:
    """A new queue with ``item`` in its place (the old one is left as it was).

    An item arriving in event-time order, the usual case, goes at the end with no sort.
    """
    if not queue:
        return (item,)
    if queue[-1][0] <= item[0]:
        return (*queue, item)
    return tuple(sorted((*queue, item), key=_ORDER))


def frozen(
    queue: Sequence[Sequence[Any]] | None,
    labels_at: int,
    intern: Callable[[Sequence[str]], tuple[str, ...]],
) -> Queue | None:
    """A restored queue (lists, from JSON) as the tuples the families hold, the labels
    of each item (at ``labels_at``) as the family's shared tuple."""
    if not queue:
        return None
    return tuple(
        (*item[:labels_at], intern(item[labels_at]), *item[labels_at + 1 :]) for item in queue
    )
