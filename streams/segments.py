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
from operator import attrgetter

ALL = "all"
OTHER = "other"
UNKNOWN = "unknown"
_VALID = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


def _no_values(source: object) -> tuple[()]:
    return ()


class SegmentCap:
    """Admits at most ``limit`` distinct values per dimension; the rest are ``other``."""

    __slots__ = ("_admitted", "_labels", "_raw", "_tuples", "dimensions", "limit")

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
        #: the dimensions' raw values of a source: one value, or a tuple of several
        self._raw = attrgetter(*self.dimensions) if self.dimensions else _no_values
        self._tuples: dict[object, tuple[str, ...]] = {}

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
        """``("all", "channel=web", ...)`` for an event or entity with those attributes.

        Called once per accepted event: the whole tuple is cached per tuple of raw
        values once each of them is admitted (the bound of :meth:`label`'s cache,
        so a flood of names cannot grow it): building it on every event costs up to
        ~10 % of a survey worker's CPU.
        """
        try:
            raws = self._raw(source)
            cached = self._tuples.get(raws)
        except (AttributeError, TypeError):  # an attribute missing, a value unhashable
            return self._compute(source)
        if cached is not None:
            return cached
        labels = self._compute(source)
        values = raws if len(self.dimensions) != 1 else (raws,)
        if all(
            (type(raw) is str or raw is None) and label == f"{dim}={raw or UNKNOWN}"
            for dim, raw, label in zip(self.dimensions, values, labels[1:], strict=True)
        ):
            self._tuples[raws] = labels
        return labels

    def _compute(self, source: object) -> tuple[str, ...]:
        return (ALL, *(self.label(d, getattr(source, d, None)) for d in self.dimensions))

    def snapshot(self) -> dict[str, list[str]]:
        return {d: list(v) for d, v in self._admitted.items()}
