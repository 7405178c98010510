"""Drop detection (SPEC §4.3): rule evaluation, z-tests, transitions only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cxpulse.agents.publish.alerts import RESOLVE_AFTER, AlertState, evaluate, z_score
from cxpulse.agents.worker.runtime import Runtime
from cxpulse.streams.settings import load_settings

RULES = {r.name: r for r in load_settings(env={}).alerts}


def nps(promoters: int, passives: int, detractors: int) -> dict[str, Any]:
    n = promoters + passives + detractors
    stats = {"promoters": promoters, "passives": passives, "detractors": detractors}
    return {"value": 100 * (promoters - detractors) / n, "n": n, "stats": stats}


def test_nps_drop_fires_on_a_large_significant_drop_only() -> None:
    rule = RULES["nps_drop"]
    baseline = nps(600, 250, 150)  # +45
    assert evaluate(rule, nps(10, 10, 20), baseline).condition  # -25, n 40
    assert not evaluate(rule, nps(55, 30, 15), baseline).condition  # 40: a drop of 5 < 10
    small = evaluate(rule, nps(5, 3, 6), baseline)  # a big drop, but n 14 < 30
    assert not small.condition and small.delta is not None and small.delta > 10
    assert not evaluate(rule, nps(50, 30, 20), None).condition  # no baseline yet


def test_nps_z_uses_the_per_answer_variance() -> None:
    cur, base = nps(10, 10, 20), nps(600, 250, 150)
    p1, d1 = 10 / 40, 20 / 40
    p2, d2 = 600 / 1000, 150 / 1000
    var1 = (p1 + d1 - (p1 - d1) ** 2) * 1e4 / 40
    var2 = (p2 + d2 - (p2 - d2) ** 2) * 1e4 / 1000
    expected = (cur["value"] - base["value"]) / (var1 + var2) ** 0.5
    assert z_score("nps", cur, base) == pytest.approx(expected)


def test_csat_uses_a_two_proportion_z_test() -> None:
    rule = RULES["csat_drop"]
    base = {"value": 0.8, "n": 1000, "stats": {"satisfied": 800, "mean": 4.1}}
    low = {"value": 0.5, "n": 40, "stats": {"satisfied": 20, "mean": 3.0}}
    ev = evaluate(rule, low, base)
    assert ev.condition and ev.z is not None and ev.z > 1.96
    assert ev.delta == pytest.approx(0.3)


def test_relative_threshold_on_a_statistic() -> None:
    rule = RULES["first_response_slowdown"]  # p90 rise >= 50 %, n >= 20
    base = {"value": 100.0, "n": 500, "stats": {"p90": 600.0}}
    slow = {"value": 120.0, "n": 25, "stats": {"p90": 950.0}}
    assert evaluate(rule, slow, base).condition
    assert not evaluate(rule, {**slow, "stats": {"p90": 850.0}}, base).condition


def test_transitions_only_and_resolution_after_three_false_evaluations() -> None:
    state = AlertState()
    seq = [False, True, True, False, True, False, False, False, False, True]
    got = [state.step(c) for c in seq]
    assert got == [None, "firing", None, None, None, None, None, "resolved", None, "firing"]


@given(st.lists(st.booleans(), max_size=60))
def test_firing_and_resolved_alternate(conditions: list[bool]) -> None:
    state = AlertState()
    transitions = [t for t in (state.step(c) for c in conditions) if t]
    assert transitions == ["firing", "resolved"] * (len(transitions) // 2) + (
        ["firing"] if len(transitions) % 2 else []
    )
    if state.firing:
        assert state.false_streak < RESOLVE_AFTER


def correlation(r: float | None, n: int) -> dict[str, Any]:
    stats = {"sum_x": 0, "sum_y": 0, "sum_xx": 0, "sum_yy": 0, "sum_xy": 0}
    return {"value": r, "n": n, "stats": stats}


def test_correlations_compare_by_fishers_z() -> None:
    import math

    cur, base = correlation(0.2, 50), correlation(0.6, 800)
    expected = (math.atanh(0.2) - math.atanh(0.6)) / math.sqrt(1 / 47 + 1 / 797)
    for metric in ("overall_recommend_r", "overall_switch_r", "overall_repurchase_r"):
        assert z_score(metric, cur, base) == pytest.approx(expected)
    assert z_score("overall_recommend_r", correlation(None, 2), base) is None
    assert z_score("overall_recommend_r", correlation(1.0, 40), base) is None
    assert z_score("overall_recommend_r", correlation(0.5, 3), base) is None


def test_a_rule_on_the_correlation_with_the_overall_experience() -> None:
    from cxpulse.streams.settings import AlertRule

    windows = {w.name: w for w in load_settings(env={}).windows}
    rule = AlertRule(
        "recommend_r_drop",
        "overall_recommend_r",
        windows["1h/1m"],
        windows["7d/1h"],
        "drop",
        0.2,
        False,
        30,
        1.96,
    )
    base = correlation(0.6, 2000)
    assert evaluate(rule, correlation(0.2, 60), base).condition  # a significant drop of 0.4
    assert not evaluate(rule, correlation(0.5, 60), base).condition  # 0.1 < 0.2
    assert not evaluate(rule, correlation(0.3, 8), base).condition  # n 8 < 30
    assert not evaluate(rule, correlation(None, 2), base).condition  # no r yet


def test_the_merge_stage_looks_rules_up_by_metric_in_their_order(tmp_path: Path) -> None:
    rule = (
        '[[alerts.rules]]\nname = "{}"\nmetric = "{}"\nwindow = "15m/1m"\n'
        'baseline = "24h/15m"\ndirection = "drop"\nthreshold = 10\nmin_n = 30\nz = 1.96\n'
    )
    config = tmp_path / "cxpulse.toml"
    names = [("a", "nps"), ("b", "csat"), ("c", "nps")]
    config.write_text("".join(rule.format(name, metric) for name, metric in names))
    runtime = Runtime(load_settings(config, {}), "partials")
    by_metric = {m: [r.name for r in rules] for m, rules in runtime.rules_of.items()}
    assert by_metric == {"nps": ["a", "c"], "csat": ["b"]}  # no entry for a metric without
