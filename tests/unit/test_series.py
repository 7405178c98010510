"""The merge stage's bucket series: window totals equal a direct sum, whatever the updates."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from cxpulse.streams.aggregates import AggregateSpec
from cxpulse.streams.series import Bucket, Series

SUMS = AggregateSpec.sums(3)
MIXED = AggregateSpec(["sum", "max", "hist"])


def direct(spec: AggregateSpec, buckets: dict[int, Bucket], lo: int, hi: int) -> list[Any] | None:
    """Every source's counts of the buckets in ``[lo, hi)``, merged one by one."""
    total: list[Any] | None = None
    for start in sorted(buckets):
        if lo <= start < hi:
            for _, counts in buckets[start].values():
                if total is None:
                    total = spec.copy(counts)
                else:
                    spec.merge(total, counts)
    return total


def counts_for(spec: AggregateSpec, a: int, b: int) -> list[Any]:
    if spec.simple:
        return [a, b, a - b]
    return [a, b, {str(a % 3): b + 1}]


def puts(starts: int, sources: int) -> st.SearchStrategy[tuple[Any, ...]]:
    """("put", start index, source, version, a, b)."""
    return st.tuples(
        st.just("put"),
        st.integers(0, starts),
        st.integers(0, sources),
        st.integers(0, 5),
        st.integers(-50, 50),
        st.integers(0, 50),
    )


def slides(
    lo: st.SearchStrategy[int], width: st.SearchStrategy[int], steps: st.SearchStrategy[int]
) -> st.SearchStrategy[tuple[Any, ...]]:
    """("slide", lo, width, steps, keep): windows of one size one step apart."""
    return st.tuples(st.just("slide"), lo, width, steps, st.booleans())


def expiries(upto: int) -> st.SearchStrategy[tuple[Any, ...]]:
    """("expire", k): the buckets starting at or before k go."""
    return st.tuples(st.just("expire"), st.integers(0, upto))


# one operation: a put, ("window", lo, width), a slide or an expiry
operations = st.lists(
    st.one_of(
        puts(6, 3),
        st.tuples(st.just("window"), st.integers(-1, 7), st.integers(1, 5)),
        slides(st.integers(-1, 7), st.integers(1, 6), st.integers(1, 6)),
        expiries(6),
    ),
    max_size=60,
)


@settings(max_examples=500, deadline=None)
@example(
    ops=[("put", 0, 0, 0, 1, 1), ("window", 0, 5), ("put", 0, 0, 1, 5, 5), ("window", 0, 5)],
    simple=True,
)
@example(
    ops=[("put", 0, 0, 0, 1, 1), ("window", 0, 5), ("put", 0, 0, 1, 5, 5), ("window", 0, 5)],
    simple=False,
)
@given(ops=operations, simple=st.booleans())
def test_window_totals_equal_a_direct_sum(ops: list[tuple[Any, ...]], simple: bool) -> None:
    check(SUMS if simple else MIXED, ops)


# non-sum totals slide from the last one of their size: many buckets, windows one step
# apart, and maxima that leave (the largest counts of the max slot come and go)
filled = st.lists(st.tuples(st.integers(-50, 50), st.integers(0, 50)), min_size=8, max_size=20)
sliding_ops = st.lists(
    st.one_of(
        puts(24, 2),
        # few sizes: a later slide finds its size's total held
        slides(st.integers(0, 12), st.sampled_from([4, 6]), st.integers(1, 12)),
        expiries(12),
    ),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@example(
    first=[(1, 0), (2, 9), (3, 2), (4, 3), (5, 4), (6, 5), (7, 6), (8, 7)],
    ops=[
        ("slide", 0, 4, 1, True),
        ("expire", 1),
        ("slide", 2, 4, 1, True),
        ("slide", 3, 4, 1, True),
    ],
)
@given(first=filled, ops=sliding_ops)
def test_sliding_totals_of_maxima_and_sketches_equal_a_direct_sum(
    first: list[tuple[int, int]], ops: list[tuple[Any, ...]]
) -> None:
    puts = [("put", start, 0, 0, a, b) for start, (a, b) in enumerate(first)]
    check(MIXED, [*puts, *ops])


def check(spec: AggregateSpec, ops: list[tuple[Any, ...]]) -> None:
    """Apply ``ops`` to a series and to a plain model; every window equals the model's."""
    series = Series(spec)
    model: dict[int, Bucket] = {}
    expired_upto = -1  # windows are never asked below what was expired
    for op in ops:
        if op[0] == "put":
            _, start, source, version, a, b = op
            if start <= expired_upto:
                continue  # the merge stage never puts into an expired bucket
            held = model.get(start, {}).get(source)
            changed = series.put(start, source, version, counts_for(spec, a, b))
            assert changed == (held is None or held[0] <= version)
            if changed:
                model.setdefault(start, {})[source] = (version, counts_for(spec, a, b))
        elif op[0] == "window":
            _, lo, width = op
            lo = max(lo, expired_upto + 1)
            assert series.window(lo, lo + width) == direct(spec, model, lo, lo + width)
        elif op[0] == "slide":
            _, first, width, steps, keep = op
            for lo in range(max(first, expired_upto + 1), first + steps):
                got = series.window(lo, lo + width, keep=keep)
                assert got == direct(spec, model, lo, lo + width)
        else:
            upto = op[1]
            gone = series.expire(upto)
            assert gone == sorted(s for s in model if s <= upto)
            for start in gone:
                del model[start]
            expired_upto = max(expired_upto, upto)
        assert list(series) == sorted(model)
        assert {s: series.bucket(s) for s in series} == model


def test_an_older_version_does_not_replace_a_newer_one() -> None:
    series = Series(SUMS)
    assert series.put(0, 1, 5, [1, 1, 1])
    assert not series.put(0, 1, 4, [9, 9, 9])
    assert series.put(0, 2, 1, [2, 0, 0])
    assert series.window(0, 1) == [3, 1, 1]


def test_an_empty_window_has_no_total() -> None:
    series = Series(SUMS)
    series.put(10, 0, 0, [0, 0, 0])
    assert series.window(0, 10) is None
    assert series.window(10, 11) == [0, 0, 0]  # a bucket of zeros is still a bucket
