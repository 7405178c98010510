"""Bucket aggregates: merges (whole, sparse, column-wise) equal the slot-by-slot rule."""

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


def merged_slot_by_slot(spec: AggregateSpec, acc: list[Any], row: list[Any]) -> list[Any]:
    """The reference merge: every slot by its kind's rule, written out."""
    out = copy.deepcopy(acc)
    for i, kind in enumerate(spec.kinds):
        if kind == "sum":
            out[i] += row[i]
        elif kind == "max":
            out[i] = max(out[i], row[i])
        else:
            for key, count in row[i].items():
                out[i][key] = out[i].get(key, 0) + count
    return out


@given(spec_and_rows())
def test_merge_and_the_sparse_merge_equal_the_slot_by_slot_rule(
    case: tuple[AggregateSpec, list[list[Any]]],
) -> None:
    spec, rows = case
    acc, sparse = spec.zero(), spec.zero()
    reference = spec.zero()
    for row in rows:
        before = copy.deepcopy(row)
        reference = merged_slot_by_slot(spec, reference, row)
        spec.merge(acc, row)
        slots = spec.nonzero(row)
        assert all(value for _, value in slots)  # only slots that change something
        spec.merge_nonzero(sparse, slots)
        assert acc == sparse == reference
        assert row == before  # the merged row is not changed
    # a row longer than the spec (a newer writer's) merges its known slots only
    longer = spec.zero()
    spec.merge(longer, [*rows[0], 5])
    assert longer == merged_slot_by_slot(spec, spec.zero(), rows[0])


@given(spec_and_rows())
def test_zero_and_copy_share_no_sketch(case: tuple[AggregateSpec, list[list[Any]]]) -> None:
    spec, rows = case
    first, second = spec.zero(), spec.zero()
    assert first == second == [{} if k == "hist" else 0 for k in spec.kinds]
    for row in rows:
        copied = spec.copy(row)
        assert copied == row and copied is not row
        spec.merge(copied, row)  # changing the copy leaves the original as it was
        spec.merge(first, row)
    assert second == spec.zero()  # nor did merging into one zero change the other
    for i, kind in enumerate(spec.kinds):
        if kind == "hist":
            assert first[i] is not second[i]
            assert all(spec.copy(row)[i] is not row[i] for row in rows)
