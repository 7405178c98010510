"""Customers (SPEC §3.4) through the real engine and merge stage, against the oracle.

Property: for random customer streams whose events arrive in any order within the
lateness (plus duplicates), cut into any batches, with the merge stage crashing and
being restored from its table at any point, the final records equal the oracle's
brute-force replay at every window end (levels included, windows without events
too). Examples pin the lifecycle rules: a reactivation, a change of an inactive
customer, a cancellation of an inactive one, the fixed segment, forgetting.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from cxpulse.schemas.input import RawRecord
from cxpulse.streams.engine import EngineConfig
from cxpulse.streams.families.customer.family import CustomerFamily
from cxpulse.streams.settings import ConfigError, load_settings
from cxpulse.streams.watermarks import TimePolicy
from cxpulse.streams.windows import parse_window
from tests.oracle import Produced, classify, customer_finals
from tests.simulation import Simulation

LATENESS = 120_000
POLICY = TimePolicy(LATENESS, 10**12, 300_000)
WINDOWS = tuple(parse_window(w) for w in ("1h/10m", "6h/1h", "1d/6h"))
CONFIG = EngineConfig(
    "customer", tuple(sorted({w.step_ms for w in WINDOWS})), POLICY, 86_400_000, ("channel",), 20
)
T0 = 1_795_046_400_000
NOW = 1_900_000_000_000
MINUTE = 60_000
HOUR = 3_600_000
DAY = 86_400_000
FORGET = 2 * DAY  # short, so that forgetting happens inside a test stream
MARGIN = 0.8
CLOSING = T0 + 12 * DAY
SUBSCRIPTION = ("subscription_started", "subscription_changed", "subscription_cancelled")


def event(n: int, kind: str, ts: int, **fields: Any) -> dict[str, Any]:
    return {"event_id": f"e-{n}-{kind}-{ts}", "type": kind, "ts": ts, **fields}


def closing_ts(items: Sequence[dict[str, Any]]) -> int:
    """A heartbeat that closes every window of the test (past any event)."""
    return max([CLOSING, *(it["ts"] + DAY for it in items)])


def run(
    items: Sequence[dict[str, Any]], cuts: Sequence[int] = (), crashes: Sequence[int] = ()
) -> Simulation:
    family = CustomerFamily(MARGIN, FORGET)
    sim = Simulation(family, CONFIG, WINDOWS, POLICY, NOW)
    closing = {"type": "heartbeat", "ts": closing_ts(items)}
    raw = [RawRecord(i, None, orjson.dumps(it), None) for i, it in enumerate([*items, closing])]
    points = sorted({c % (len(raw) + 1) for c in cuts} | {0, len(raw)})
    for i, (a, b) in enumerate(pairwise(points)):
        if b > a:
            crash = crashes[i] if i < len(crashes) else None
            sim.feed(raw[a:b], merge_durable=crash)
    return sim


def oracle(items: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    accepted = classify([Produced(0, it) for it in items], 1, LATENESS).accepted
    windows = [(w.name, w.size_ms, w.step_ms) for w in WINDOWS]
    want = customer_finals(accepted, windows, closing_ts(items) - LATENESS, MARGIN, FORGET)
    return {f"{m}|{w}|{s}|{end}": [v, n, st] for (m, w, s, end), (v, n, st) in want.items()}


def _close(a: Any, b: Any) -> bool:
    if a is None or b is None or (isinstance(a, int) and isinstance(b, int)):
        return bool(a == b)
    return bool(abs(a - b) <= 1e-9 * max(1.0, abs(b)))


def assert_equal(got: dict[str, list[Any]], want: dict[str, list[Any]]) -> None:
    assert set(got) == set(want), sorted(set(got) ^ set(want))[:5]
    for key, bodies in got.items():
        for body in bodies:
            assert _close(body[0], want[key][0]), (key, body[0], want[key][0])
            assert body[1] == want[key][1], key
            assert set(body[2]) == set(want[key][2]), key
            for name, value in want[key][2].items():
                assert _close(body[2][name], value), (key, name, body[2][name], value)


@st.composite
def customer_stream(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A few customers over a few days, with leads and spend, out of order within lateness."""
    events: list[dict[str, Any]] = []
    n = 0
    for c in range(draw(st.integers(1, 5))):
        ts = T0 + draw(st.integers(0, 48)) * 10 * MINUTE
        for _ in range(draw(st.integers(1, 8))):
            ts += draw(st.sampled_from([0, 5_000, 10 * MINUTE, HOUR, 7 * HOUR, DAY, 3 * DAY]))
            kind = draw(st.sampled_from(["signed_up", *SUBSCRIPTION, *SUBSCRIPTION[:2]]))
            ev = event(n, kind, ts, customer_id=f"c{c}")
            if draw(st.booleans()) or kind == "signed_up":
                ev["channel"] = draw(st.sampled_from(["web", "ads", "partner"]))
            if kind == "signed_up":
                if draw(st.booleans()):
                    ev["referred_by"] = "c0"
                if draw(st.booleans()):
                    ev["lead_id"] = f"l{c}"
            elif kind != "subscription_cancelled":
                ev["mrr"] = draw(st.sampled_from([0, 10, 10, 25.5, 99.99]))
            events.append(ev)
            n += 1
    for _ in range(draw(st.integers(0, 4))):
        ts = T0 + draw(st.integers(0, 5 * 24)) * HOUR
        channel = draw(st.sampled_from(["web", "ads"]))
        if draw(st.booleans()):
            events.append(event(n, "lead_created", ts, lead_id=f"l{n}", channel=channel))
        else:
            amount = draw(st.sampled_from([0, 100, 0.01, 1234.5]))
            events.append(event(n, "acquisition_spend", ts, amount=amount, channel=channel))
        n += 1
    rng = random.Random(draw(st.integers(0, 1000)))
    events.sort(key=lambda e: e["ts"] + rng.randrange(LATENESS))  # out of order, never late
    if events and draw(st.booleans()):
        events.insert(draw(st.integers(0, len(events))), dict(events[0]))  # a duplicate
    return events


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(
    customer_stream(),
    st.lists(st.integers(0, 100), max_size=5),
    st.lists(st.one_of(st.none(), st.integers(0, 30)), max_size=6),
)
def test_any_arrival_order_batches_and_merge_crashes_give_the_oracles_finals(
    items: list[dict[str, Any]], cuts: list[int], crashes: list[int | None]
) -> None:
    assert_equal(run(items, cuts, crashes).finals, oracle(items))


def _finals(sim: Simulation, metric: str, window: str = "1d/6h", seg: str = "all") -> dict:
    prefix = f"{metric}|{window}|{seg}|"
    return {int(k[len(prefix) :]): v[0] for k, v in sim.finals.items() if k.startswith(prefix)}


def test_a_reactivation_counts_as_a_start_and_moves_reactivated_mrr() -> None:
    items = [
        event(1, "signed_up", T0, customer_id="c", channel="web"),
        event(2, "subscription_started", T0 + HOUR, customer_id="c", mrr=10),
        event(3, "subscription_cancelled", T0 + 2 * HOUR, customer_id="c"),
        event(4, "subscription_started", T0 + 3 * HOUR, customer_id="c", mrr=30),
    ]
    sim = run(items)
    assert_equal(sim.finals, oracle(items))
    value, n, stats = _finals(sim, "mrr")[T0 + 6 * HOUR]
    assert (value, n) == (30.0, 1)
    assert stats["new"] == 10.0 and stats["reactivated"] == 30.0 and stats["churned"] == 10.0
    churn = _finals(sim, "customer_churn")[T0 + 6 * HOUR]
    assert churn[2] == {"cancelled": 1, "started": 2, "active_start": 0, "active_end": 1}
    assert churn[0] is None  # no active customer at the window start


def test_a_change_of_an_inactive_customer_starts_it_and_a_start_of_an_active_one_changes_it() -> (
    None
):
    items = [
        event(1, "subscription_changed", T0, customer_id="c", mrr=20, channel="ads"),
        event(2, "subscription_started", T0 + HOUR, customer_id="c", mrr=50),
        event(3, "subscription_changed", T0 + 2 * HOUR, customer_id="c", mrr=50),
        event(4, "subscription_changed", T0 + 3 * HOUR, customer_id="c", mrr=5),
    ]
    sim = run(items)
    assert_equal(sim.finals, oracle(items))
    value, n, stats = _finals(sim, "mrr", seg="channel=ads")[T0 + 6 * HOUR]
    assert (value, n) == (5.0, 1)
    assert (stats["new"], stats["expansion"], stats["contraction"]) == (20.0, 30.0, 45.0)
    assert _finals(sim, "customer_churn")[T0 + 6 * HOUR][2]["started"] == 1


def test_a_cancellation_of_an_inactive_customer_changes_nothing() -> None:
    items = [
        event(1, "subscription_cancelled", T0, customer_id="c", channel="web"),
        event(2, "subscription_started", T0 + HOUR, customer_id="c", mrr=10, channel="ads"),
        event(3, "subscription_cancelled", T0 + 2 * HOUR, customer_id="c"),
        event(4, "subscription_cancelled", T0 + 3 * HOUR, customer_id="c"),
    ]
    sim = run(items)
    assert_equal(sim.finals, oracle(items))
    # the segment is the first event's channel, even a no-op cancellation's
    assert not _finals(sim, "mrr", seg="channel=ads")
    stats = _finals(sim, "customer_churn", seg="channel=web")[T0 + 6 * HOUR][2]
    assert stats == {"cancelled": 1, "started": 1, "active_start": 0, "active_end": 0}


def test_the_segment_is_the_first_event_in_event_time_even_when_it_arrives_later() -> None:
    items = [
        event(2, "subscription_started", T0 + MINUTE, customer_id="c", mrr=10, channel="web"),
        event(1, "signed_up", T0, customer_id="c", channel="ads"),
    ]
    sim = run(items)
    assert_equal(sim.finals, oracle(items))
    assert _finals(sim, "mrr", seg="channel=ads")[T0 + 6 * HOUR][0] == 10.0
    assert not _finals(sim, "mrr", seg="channel=web")


def test_levels_have_a_record_at_every_window_end_also_without_events() -> None:
    items = [event(1, "subscription_started", T0 + 30 * MINUTE, customer_id="c", mrr=10)]
    sim = run(items)
    assert_equal(sim.finals, oracle(items))
    ends = sorted(_finals(sim, "mrr", window="1h/10m"))
    assert ends[0] == T0 + 40 * MINUTE
    assert ends == list(range(ends[0], closing_ts(items) - LATENESS + 1, 10 * MINUTE))


def test_a_customer_back_after_being_forgotten_is_new_in_its_new_segment() -> None:
    items = [
        event(1, "subscription_started", T0, customer_id="c", mrr=10, channel="web"),
        event(2, "subscription_cancelled", T0 + HOUR, customer_id="c"),
        event(3, "subscription_started", T0 + HOUR + FORGET, customer_id="c", mrr=7),
        event(4, "subscription_cancelled", T0 + 2 * HOUR + FORGET, customer_id="c"),
        event(
            5,
            "subscription_started",
            T0 + 2 * HOUR + 2 * FORGET + 1,
            customer_id="c",
            mrr=3,
            channel="ads",
        ),
    ]
    items.append(event(6, "subscription_cancelled", T0 + 3 * HOUR + 2 * FORGET, customer_id="c"))
    sim = run(items)
    assert_equal(sim.finals, oracle(items))
    end = T0 + 6 * HOUR + FORGET
    assert _finals(sim, "mrr", seg="channel=web")[end][2]["reactivated"] == 7.0
    later = _finals(sim, "mrr", seg="channel=ads")
    assert later[max(later)][0] == 0.0
    assert any(body[2]["new"] == 3.0 and body[2]["reactivated"] == 0 for body in later.values())
    assert sim.proc.entities == {}  # forgotten once cancelled a "year" ago


def test_counting_metrics_and_ltv_cac() -> None:
    items = [
        event(1, "lead_created", T0, lead_id="l1", channel="ads"),
        event(2, "lead_created", T0, lead_id="l2", channel="ads"),
        event(3, "acquisition_spend", T0, amount=300, channel="ads"),
        event(4, "signed_up", T0 + MINUTE, customer_id="a", channel="ads", lead_id="l1"),
        event(5, "signed_up", T0 + MINUTE, customer_id="b", channel="ads", referred_by="a"),
        event(6, "subscription_started", T0 + 2 * MINUTE, customer_id="a", mrr=100),
        event(7, "subscription_started", T0 + 2 * MINUTE, customer_id="b", mrr=100),
        event(8, "subscription_cancelled", T0 + HOUR, customer_id="b"),
    ]
    sim = run(items)
    assert_equal(sim.finals, oracle(items))
    end = T0 + DAY
    assert _finals(sim, "cac")[end][0] == 150.0
    assert _finals(sim, "lead_conversion")[end][0] == 0.5
    assert _finals(sim, "referral_rate")[end][0] == 0.5
    # churn 1 of 2 over 1d: monthly churn 15; arpa 100 x 0.8 / 15
    clv = _finals(sim, "clv", window="1d/6h")
    assert T0 + DAY not in clv or clv[T0 + DAY][0] is None  # active at the start: none
    assert _finals(sim, "ltv_cac")[end][2]["cac"] == 150.0


@pytest.mark.parametrize("bad", ["0", "1.5", "-0.2", "nan", "x"])
def test_gross_margin_is_validated(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"customers\.gross_margin"):
        load_settings(env={"CXPULSE_CUSTOMERS_GROSS_MARGIN": bad})
    assert load_settings(env={}).customers.gross_margin == 1.0
    assert (
        load_settings(env={"CXPULSE_CUSTOMERS_GROSS_MARGIN": "0.7"}).customers.gross_margin == 0.7
    )


def test_an_alert_rule_can_watch_customer_churn(tmp_path: Any) -> None:
    from cxpulse.agents.publish.alerts import evaluate

    config = tmp_path / "cx.toml"
    config.write_text(
        "[[alerts.rules]]\nname = 'customer_churn_rise'\nmetric = 'customer_churn'\n"
        "window = '1h/1m'\nbaseline = '7d/1h'\ndirection = 'rise'\nthreshold = 0.05\n"
        "min_n = 50\nz = 1.96\n"
    )
    (rule,) = load_settings(config, env={}).alerts
    assert rule.metric == "customer_churn"

    def record(cancelled: int, active: int) -> dict[str, Any]:
        stats = {"cancelled": cancelled, "started": 0, "active_start": active}
        return {"value": cancelled / active, "n": active, "stats": stats}

    assert evaluate(rule, record(30, 200), record(50, 2000)).condition
    assert not evaluate(rule, record(6, 200), record(50, 2000)).condition
    # more cancellations than customers at the start: no z, so no alert (not a proportion)
    assert not evaluate(rule, record(300, 200), record(50, 60)).condition
