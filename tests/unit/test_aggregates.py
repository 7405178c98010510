"""Bucket aggregates: a column-wise total equals merging the rows one by one."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from cxpulse.streams.aggregates import AggregateSpec

SPECS = [AggregateSpec.sums(3), AggregateSpec(["sum", "max", "hist", "sum", "hist", "max"])]


@st.composite
def spec_and_rows(draw: st.DrawFn) -> tuple[AggregateSpec, list[list[Any]]]:
    spec = draw(st.sampled_from(SPECS))
    bins = st.dictionaries(st.sampled_from(["-3", "0", "7", "12"]), st.integers(1, 9), max_size=3)
    cell = {"sum": st.integers(-100, 100), "max": st.integers(0, 100), "hist": bins}
    row = st.tuples(*(cell[k] for k in spec.kinds)).map(list)
    return spec, draw(st.lists(row, min_size=1, max_size=12))


@given(spec_and_rows())
def test_total_equals_merging_the_rows_one_by_one(
    case: tuple[AggregateSpec, list[list[Any]]],
) -> None:
    spec, rows = case
    before = copy.deepcopy(rows)
    expected = spec.copy(rows[0])
    for row in rows[1:]:
        spec.merge(expected, row)
    total = spec.total(rows)
    assert total == expected
    assert rows == before  # no row changed
    if len(rows) == 1:
        assert total is not rows[0]  # a new list, never one of the rows
    for i, kind in enumerate(spec.kinds):
        if kind == "hist":
            assert all(total[i] is not row[i] for row in rows)  # nor one of their sketches
