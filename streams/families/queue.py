"""The queue of an entity's events waiting for the watermark (carts, tickets).

A cart or ticket applies its events only once the watermark has passed them, in
event-time order, ties by arrival (SPEC §3.2, §3.3). Its entity keeps them as a
list of items ``[ts, arrival, ...]``, ``arrival`` counting up per entity.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any

_ORDER = itemgetter(0, 1)  # event time, then arrival


def enqueue(queue: list[list[Any]] | None, item: list[Any]) -> list[list[Any]]:
    """A new queue with ``item`` in its place (the old one is left as it was).

    An item arriving in event-time order, the usual case, goes at the end with no sort.
    """
    if not queue:
        return [item]
    if queue[-1][0] <= item[0]:
        return [*queue, item]
    return sorted([*queue, item], key=_ORDER)
