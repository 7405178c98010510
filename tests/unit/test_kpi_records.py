"""Final KPI records: the batch builder equals the one-record one, in publishing order."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from cxpulse.agents.worker.runtime import in_publishing_order
from cxpulse.schemas.kpi import final_records, kpi_record, record_key
from cxpulse.streams.family import Kpi
from cxpulse.streams.merge import WindowKpi
from cxpulse.streams.windows import WindowSpec

MIN = 60_000
T0 = 1_795_000_000_000
WINDOWS = [WindowSpec(15 * MIN, MIN, "15m/1m"), WindowSpec(60 * MIN, MIN), WindowSpec(MIN, MIN)]
FAMILIES = ["survey", "cart", "ticket"]

kpis = st.builds(
    Kpi,
    metric=st.sampled_from(["nps", "csat", "cart_abandonment"]),
    value=st.none() | st.floats(allow_nan=False, allow_infinity=False),
    n=st.integers(0, 10**6),
    stats=st.dictionaries(st.sampled_from(["p50", "p90", "promoters"]), st.integers(0, 99)),
)
items = st.lists(
    st.builds(
        WindowKpi,
        family=st.sampled_from(FAMILIES),
        kpi=kpis,
        window=st.sampled_from(WINDOWS),
        segment=st.sampled_from(["all", "channel=web", "channel=other"]),
        end_ms=st.integers(0, 30).map(lambda k: T0 + k * MIN),
    ),
    max_size=40,
)
marks = st.fixed_dictionaries({f: st.none() | st.integers(T0, T0 + 40 * MIN) for f in FAMILIES})


@given(items=items, watermarks=marks, now=st.integers(T0, T0 + 10**9))
def test_final_records_equal_one_record_at_a_time(
    items: list[WindowKpi], watermarks: dict[str, int | None], now: int
) -> None:
    one_by_one: list[tuple[str, dict[str, Any]]] = [
        (
            record_key(item),
            kpi_record(item, final=True, watermark_ms=watermarks[item.family], now_ms=now),
        )
        for item in items
    ]
    assert list(final_records(items, watermarks, now)) == one_by_one


@given(items=items)
def test_publishing_order_is_by_end_then_longer_windows_first_ties_as_they_came(
    items: list[WindowKpi],
) -> None:
    expected = sorted(items, key=lambda f: (f.end_ms, -f.window.size_ms))
    got = in_publishing_order(list(items))
    assert [id(f) for f in got] == [id(f) for f in expected]
