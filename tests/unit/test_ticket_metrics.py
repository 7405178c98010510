"""Ticket quantiles from sketch bins: nearest rank, both quantiles from one pass."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cxpulse.streams.families.ticket.metrics import (
    MAPPING,
    ZERO_KEY,
    Layout,
    quantile_ms,
    quantiles_ms,
    ticket_kpis,
)


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


def _kpis_of(durations_ms: list[int]) -> dict[str, float]:
    """The first-response stats of a window holding exactly ``durations_ms``."""
    layout = Layout(business=False)
    acc = layout.spec.zero()
    for ms in durations_ms:
        layout.spec.apply(acc, layout.duration("ticket_first_response_seconds", ms))
    (kpi,) = [k for k in ticket_kpis(layout, acc) if k.metric == "ticket_first_response_seconds"]
    assert kpi.value == kpi.stats["p50"]
    return kpi.stats


def test_a_bin_above_the_max_is_clamped_to_the_max() -> None:
    """A bin's representative can lie above every duration in it: the percentile may not."""
    above = next(ms for ms in range(1000, 2000) if MAPPING.value(MAPPING.key(ms)) > ms)
    stats = _kpis_of([above])
    assert MAPPING.value(MAPPING.key(above)) > above  # the unclamped answer would be above
    assert stats["p50"] == stats["p90"] == stats["max"] == above / 1000


@given(durations=st.lists(st.integers(0, 10**9), min_size=1, max_size=40))
def test_percentiles_never_exceed_the_max_and_stay_within_one_percent(
    durations: list[int],
) -> None:
    stats = _kpis_of(durations)
    assert stats["p50"] <= stats["p90"] <= stats["max"] == max(durations) / 1000
    for q in (0.5, 0.9):
        exact = sorted(durations)[max(1, math.ceil(q * len(durations))) - 1] / 1000
        got = stats[f"p{round(q * 100)}"]
        assert abs(got - exact) <= 0.01 * exact + 1e-9, (q, got, exact)
