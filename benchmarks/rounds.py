"""The order in which a round runs its contenders: counterbalanced round by round.

The machine drifts within minutes and what ran just before a contender can leave
the broker or the CPU's caches busy, so a fixed order lets one contender always
run second, or always right after the same neighbour, and a ratio taken within a
round then carries that position. Rounds go in an ABBA pattern instead: every
even round runs the odd round before it backwards, and every two rounds the start
moves on by one contender. Two contenders ``a, b`` run ``ab, ba, ba, ab, ab, ...``:
over any four consecutive rounds each is first twice and last twice, so a steady
drift within a round falls on both alike. Used by ``cxpulse bench --repeat`` (the
workloads) and the peers' bench (the contenders).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")

__all__ = ["round_order"]


def round_order(items: Sequence[T], round_no: int) -> list[T]:
    """``items`` in the order round ``round_no`` (1-based) runs them; round 1 keeps
    the given order, so a single round runs as asked."""
    if round_no < 1:
        raise ValueError(f"rounds count from 1, not {round_no}")
    if not items:
        return []
    shift = (round_no - 1) // 2 % len(items)
    order = [*items[shift:], *items[:shift]]
    return order if round_no % 2 else order[::-1]
