"""One merged bucket series of the merge stage: every source's buckets on one grid.

The merge stage holds, per (family, segment, grid), each source partition's
latest snapshot of each bucket. Windows are sums of adjacent buckets, and the
stage needs many of them: every window end that closes, and the open window of
every window size at each emission. Summing ``size / step`` buckets times the
number of sources per window (240 merges for ``1h/1m`` on 4 partitions, 672 for
``7d/1h``) would be the largest cost of a worker (py-spy, ``benchmarks/profile.py``).
So a :class:`Series` also keeps

* ``combined``: per bucket start, the sum over sources, recomputed when a
  snapshot replaces one source's counts (a handful of sources, once per
  snapshot, instead of at every window that covers the bucket); a bucket with
  one source shares that source's list (no list is ever changed in place), and
* for all-sum aggregates, running prefix sums over the sorted starts, so a
  window total is one subtraction. Snapshots mostly touch the newest buckets,
  and prefixes are only recomputed from the first changed start on, on demand.

Everything is integer arithmetic, so totals are exact and equal to a direct
sum whatever the order of updates (property-tested against one).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterator
from typing import Any

from cxpulse.streams.aggregates import AggregateSpec

Bucket = dict[int, tuple[int, list[Any]]]  # source partition -> (version, counts)


class Series:
    """The buckets of one (family, segment, grid) (see the module docstring)."""

    __slots__ = ("_base", "_prefix", "_spec", "by_source", "combined", "starts")

    def __init__(self, spec: AggregateSpec) -> None:
        self._spec = spec
        self.by_source: dict[int, Bucket] = {}
        self.combined: dict[int, list[Any]] = {}
        #: bucket starts, ascending
        self.starts: list[int] = []
        #: all-sum specs only: ``_prefix[i]`` = expired totals + combined of starts[0..i];
        #: valid for the indices it has (cut at the first changed start)
        self._prefix: list[list[int]] = []
        self._base: list[int] | None = None  # the sum of expired buckets (all-sum specs)

    def __len__(self) -> int:
        return len(self.starts)

    def __iter__(self) -> Iterator[int]:
        return iter(self.starts)

    def bucket(self, start: int) -> Bucket:
        return self.by_source[start]

    def put(self, start: int, source: int, version: int, counts: list[Any]) -> bool:
        """Replace one source's counts of a bucket unless a newer version is held."""
        bucket = self.by_source.get(start)
        if bucket is None:
            bucket = self.by_source[start] = {}
            insort(self.starts, start)
        else:
            held = bucket.get(source)
            if held is not None and held[0] > version:
                return False
        bucket[source] = (version, counts)
        self._recombine(start, bucket)
        return True

    def _recombine(self, start: int, bucket: Bucket) -> None:
        spec = self._spec
        if len(bucket) == 1:  # the usual case: shared, never mutated in place
            ((_, total),) = bucket.values()
        else:
            total = spec.total([counts for _, counts in bucket.values()])
        self.combined[start] = total
        if spec.simple:
            i = bisect_left(self.starts, start)
            if i < len(self._prefix):
                del self._prefix[i:]

    def window(self, lo: int, hi: int) -> list[Any] | None:
        """The total of the buckets starting in ``[lo, hi)``; ``None`` when there are none."""
        starts = self.starts
        i = bisect_left(starts, lo)
        j = bisect_left(starts, hi)
        if i == j:
            return None
        spec = self._spec
        if not spec.simple:
            combined = self.combined
            return spec.total([combined[start] for start in starts[i:j]])
        upper = self._prefix_at(j - 1)
        assert upper is not None  # j - 1 >= 0
        lower = self._prefix_at(i - 1)
        if lower is None:
            return list(upper)
        return [a - b for a, b in zip(upper, lower, strict=True)]

    @property
    def base(self) -> list[int] | None:
        """All-sum specs: the sum of every expired bucket (``None`` before any expired)."""
        return self._base

    def set_base(self, base: list[int] | None) -> None:
        """Restore the sum of the buckets expired before a restart (all-sum specs)."""
        self._base = base
        self._prefix.clear()

    def level(self, hi: int) -> list[int] | None:
        """All-sum specs: the total of every bucket ever held starting before ``hi``
        (expired ones included); ``None`` when there are none. Not to be changed."""
        return self._prefix_at(bisect_left(self.starts, hi) - 1)

    def _prefix_at(self, i: int) -> list[int] | None:
        if i < 0:
            return self._base
        prefix = self._prefix
        combined, starts = self.combined, self.starts
        while len(prefix) <= i:
            k = len(prefix)
            before = prefix[k - 1] if k else self._base
            counts = combined[starts[k]]
            if before is None:
                prefix.append(list(counts))
            else:
                prefix.append([a + b for a, b in zip(before, counts, strict=True)])
        return prefix[i]

    def expire(self, upto: int) -> list[int]:
        """Drop the buckets starting at or before ``upto``; return their starts."""
        k = bisect_right(self.starts, upto)
        if not k:
            return []
        gone = self.starts[:k]
        if self._spec.simple:
            self._base = self._prefix_at(k - 1)
            del self._prefix[:k]
        del self.starts[:k]
        for start in gone:
            del self.by_source[start]
            del self.combined[start]
        return gone
