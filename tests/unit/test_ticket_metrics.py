"""Ticket quantiles from sketch bins: nearest rank, both quantiles from one pass."""

from __future__ import annotations

import math

import pytest
from cxpulse.streams.families.ticket.metrics import MAPPING, ZERO_KEY, quantile_ms, quantiles_ms
from hypothesis import given
from hypothesis import strategies as st


def brute_force(bins: dict[str, int], q: float) -> float:
    """The ceil(q·n)-th smallest of the expanded bins, as its representative value."""
    expanded = sorted(int(k) for k, count in bins.items() for _ in range(count))
    k = expanded[max(1, math.ceil(q * len(expanded))) - 1]
    return 0.0 if k == ZERO_KEY else float(MAPPING.value(k))


bins_strategy = st.dictionaries(
    st.one_of(st.just(ZERO_KEY), st.integers(0, 2000)).map(str), st.integers(1, 20), min_size=1
)


@given(bins=bins_strategy, qs=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=4))
def test_quantiles_are_the_nearest_rank_of_the_bins(bins: dict[str, int], qs: list[float]) -> None:
    qs = sorted(qs)
    assert quantiles_ms(bins, qs) == [brute_force(bins, q) for q in qs]
    assert [quantile_ms(bins, q) for q in qs] == [brute_force(bins, q) for q in qs]


def test_a_known_sketch() -> None:
    one_second = str(MAPPING.key(1000))
    ten_seconds = str(MAPPING.key(10_000))
    bins = {str(ZERO_KEY): 1, one_second: 5, ten_seconds: 4}  # 10 durations
    p50, p90 = quantiles_ms(bins, (0.5, 0.9))
    assert p50 == pytest.approx(1000, rel=0.01)  # 5th smallest
    assert p90 == pytest.approx(10_000, rel=0.01)  # 9th smallest
    assert quantile_ms(bins, 0.1) == 0.0  # the zero duration


def test_an_empty_sketch_has_no_quantile() -> None:
    with pytest.raises(ValueError, match="empty"):
        quantiles_ms({}, (0.5,))
