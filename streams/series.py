"""One merged bucket series of the merge stage: every source's buckets on one grid.

The merge stage holds, per (family, segment, grid), each source partition's
latest snapshot of each bucket. Windows are sums of adjacent buckets, and the
stage needs many of them: every window end that closes, and the open window of
every window size at each emission. Summing ``size / step`` buckets times the
number of sources per window (240 merges for ``1h/1m`` on 4 partitions, 672 for
``7d/1h``) would be the largest cost of a worker (py-spy, ``benchmarks/profile.py``).
So a :class:`Series` also keeps

* ``combined``: per bucket start, the sum over sources, recomputed after a
  snapshot replaced one source's counts (a handful of sources, once, instead of
  at every window that covers the bucket), and only when a window, a level or
  an expiry next needs it: a merge batch carries snapshots of the same bucket
  from several source partitions, which then cost one sum, not one each; a
  bucket with one source shares that source's list (no list is ever changed in
  place), and
* for all-sum aggregates, running prefix sums over the sorted starts, so a
  window total is one subtraction. Snapshots mostly touch the newest buckets,
  and prefixes are only recomputed from the first changed start on, on demand;
* for other aggregates (ticket durations: maxima and quantile sketches, which
  prefixes cannot hold), the last total of each window size: the next window of
  that size is it plus the buckets that enter minus those that leave (a window
  closing per step: two buckets instead of up to 168), the maxima recomputed from
  the buckets only when a leaving one may have held them. A held total stays the
  sum of the buckets it covers: a snapshot changing one of them drops it, expiry
  takes the expired ones out of it.

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

    __slots__ = (
        "_base",
        "_owed",
        "_prefix",
        "_slides",
        "_spec",
        "by_source",
        "combined",
        "starts",
    )

    def __init__(self, spec: AggregateSpec) -> None:
        self._spec = spec
        self.by_source: dict[int, Bucket] = {}
        self.combined: dict[int, list[Any]] = {}
        #: starts whose ``combined`` is owed: replaced since it was last summed (:meth:`_settle`)
        self._owed: set[int] = set()
        #: bucket starts, ascending
        self.starts: list[int] = []
        #: all-sum specs only: ``_prefix[i]`` = expired totals + combined of starts[0..i];
        #: valid for the indices it has (cut at the first changed start)
        self._prefix: list[list[int]] = []
        self._base: list[int] | None = None  # the sum of expired buckets (all-sum specs)
        #: other specs: window size -> (lo, hi, total of the buckets starting in [lo, hi))
        self._slides: dict[int, tuple[int, int, list[Any]]] = {}

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
        self._owed.add(start)  # summed when next needed (_settle)
        if self._spec.simple:
            i = bisect_left(self.starts, start)
            if i < len(self._prefix):
                del self._prefix[i:]
        elif self._slides:
            slides = self._slides
            for size in [n for n, (lo, hi, _) in slides.items() if lo <= start < hi]:
                del slides[size]
        return True

    def _settle(self) -> None:
        """Sum the sources of every bucket replaced since: before ``combined`` is read."""
        owed = self._owed
        if not owed:
            return
        spec, by_source, combined = self._spec, self.by_source, self.combined
        for start in owed:
            bucket = by_source[start]
            if len(bucket) == 1:  # the usual case: shared, never mutated in place
                ((_, total),) = bucket.values()
            else:
                total = spec.total([counts for _, counts in bucket.values()])
            combined[start] = total
        owed.clear()

    def window(self, lo: int, hi: int, keep: bool = True) -> list[Any] | None:
        """The total of the buckets starting in ``[lo, hi)``; ``None`` when there are none.

        Not to be changed. ``keep=False`` for a window whose buckets are still filling
        (the open one): its total would soon be dropped, so the held one stays.
        """
        starts = self.starts
        i = bisect_left(starts, lo)
        j = bisect_left(starts, hi)
        if i == j:
            return None
        self._settle()
        spec = self._spec
        if not spec.simple:
            held = self._slides.get(hi - lo)
            total = None if held is None else self._slide(held, lo, hi, i, j)
            if total is None:
                combined = self.combined
                total = spec.total([combined[start] for start in starts[i:j]])
            if keep:
                self._slides[hi - lo] = (lo, hi, total)
            return total
        upper = self._prefix_at(j - 1)
        assert upper is not None  # j - 1 >= 0
        lower = self._prefix_at(i - 1)
        if lower is None:
            return list(upper)
        return [a - b for a, b in zip(upper, lower, strict=True)]

    def _slide(
        self, held: tuple[int, int, list[Any]], lo: int, hi: int, i: int, j: int
    ) -> list[Any] | None:
        """The total of ``[lo, hi)`` from a held one; ``None`` when summing costs less."""
        was_lo, was_hi, was = held
        starts, spec, run = self.starts, self._spec, self._indices
        enter = [*run(lo, min(hi, was_lo)), *run(max(lo, was_hi), hi)]
        leave = [*run(was_lo, min(was_hi, lo)), *run(max(was_lo, hi), was_hi)]
        if len(enter) + len(leave) >= j - i:
            return None
        combined = self.combined
        total = spec.copy(was)
        for k in enter:
            spec.merge(total, combined[starts[k]])
        stale: set[int] = set()
        for k in leave:
            stale.update(spec.remove(total, combined[starts[k]]))
        for slot in stale:
            total[slot] = max(combined[starts[k]][slot] for k in range(i, j))
        return total

    def _indices(self, lo: int, hi: int) -> range:
        """The indices of the starts in ``[lo, hi)`` (none when ``hi <= lo``)."""
        if hi <= lo:
            return range(0)
        return range(bisect_left(self.starts, lo), bisect_left(self.starts, hi))

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
        self._settle()
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
        self._settle()
        gone = self.starts[:k]
        if self._spec.simple:
            self._base = self._prefix_at(k - 1)
            del self._prefix[:k]
        elif self._slides:
            self._expire_slides(upto)
        del self.starts[:k]
        for start in gone:
            del self.by_source[start]
            del self.combined[start]
        return gone

    def _expire_slides(self, upto: int) -> None:
        """Take the buckets starting at or before ``upto`` out of the held totals."""
        spec, starts, combined = self._spec, self.starts, self.combined
        for size, (lo, hi, total) in list(self._slides.items()):
            if lo > upto:
                continue
            after = upto + 1
            gone = starts[bisect_left(starts, lo) : bisect_left(starts, min(hi, after))]
            if after >= hi:
                del self._slides[size]
                continue
            left = spec.copy(total)
            stale = False  # a maximum may have gone: recomputed when next asked
            for start in gone:
                stale = bool(spec.remove(left, combined[start])) or stale
            if stale:
                del self._slides[size]
            else:
                self._slides[size] = (after, hi, left)
