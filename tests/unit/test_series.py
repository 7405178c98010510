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


# one operation: ("put", start index, source, version, a, b) | ("window", lo, width) | ("expire", k)
operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("put"),
            st.integers(0, 6),
            st.integers(0, 3),
            st.integers(0, 5),
            st.integers(-50, 50),
            st.integers(0, 50),
        ),
        st.tuples(st.just("window"), st.integers(-1, 7), st.integers(1, 5)),
        st.tuples(st.just("expire"), st.integers(0, 6)),
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
    spec = SUMS if simple else MIXED
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
