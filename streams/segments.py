"""Segment labels (SPEC §3): ``all`` plus one label per configured dimension.

The cap is kept per source partition, in arrival order, and persisted with the
partition's state: that keeps it a function of the partition's records alone
(§6), at the price that a value admitted on one partition can be ``other`` on a
partition whose cap filled earlier. Memory and series stay bounded by
``partitions × max_segment_values`` per dimension.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

ALL = "all"
OTHER = "other"
UNKNOWN = "unknown"
_VALID = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


class SegmentCap:
    """Admits at most ``limit`` distinct values per dimension; the rest are ``other``."""

    __slots__ = ("_admitted", "_labels", "dimensions", "limit")

    def __init__(
        self, dimensions: Iterable[str], limit: int, admitted: dict[str, list[str]] | None = None
    ) -> None:
        self.dimensions = tuple(dimensions)
        self.limit = limit
        self._admitted: dict[str, list[str]] = {d: [] for d in self.dimensions}
        for dim, values in (admitted or {}).items():
            if dim in self._admitted:
                self._admitted[dim] = list(values)[:limit]
        self._labels: dict[tuple[str, str], str] = {}

    def label(self, dimension: str, raw: object) -> str:
        """``"channel=web"``, or ``"channel=other"`` once the cap is full."""
        key = (dimension, raw if isinstance(raw, str) else UNKNOWN)
        cached = self._labels.get(key)
        if cached is not None:
            return cached
        value = key[1]
        if value not in (UNKNOWN, OTHER):
            admitted = self._admitted[dimension]
            if not _VALID.fullmatch(value):
                value = OTHER
            elif value not in admitted:
                if len(admitted) >= self.limit:
                    value = OTHER
                else:
                    admitted.append(value)
        label = f"{dimension}={value}"
        if value == key[1]:
            # Cache admitted values (and the raw ``unknown``/``other``) only: at most
            # ``limit + 2`` keys per dimension. Rejections are not cached, so a flood of
            # random names cannot grow this dict; recomputing one gives the same answer.
            self._labels[key] = label
        return label

    def labels(self, source: object) -> tuple[str, ...]:
        """``("all", "channel=web", ...)`` for an event or entity with those attributes."""
        return (ALL, *(self.label(d, getattr(source, d, None)) for d in self.dimensions))

    def snapshot(self) -> dict[str, list[str]]:
        return {d: list(v) for d, v in self._admitted.items()}
