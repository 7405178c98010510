"""Drop detection on final windows (SPEC §4.3): pure evaluation and per-series state.

A rule compares a metric's short window (``1h/1m``) with its baseline window
(``7d/1h``) for one segment, each time a short window becomes final, against the
latest final baseline at or before the short window's end. It fires when the
move in the rule's direction reaches the threshold (absolute, or relative to the
baseline), the short window has at least ``min_n`` observations and, when ``z``
is set, the difference is significant: two-proportion z for ratios of counts,
the NPS variance ``p + d − (p − d)²`` per answer for NPS, Fisher's
``(atanh r₁ − atanh r₂) / √(1/(n₁−3) + 1/(n₂−3))`` for the correlations with the
overall experience (other metrics have no z: their rules set ``z = 0``). An alert record is
published on transitions only; a firing alert resolves after its condition has
been false for 3 evaluations in a row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from cxpulse.streams.families.survey.metrics import CORRELATIONS
from cxpulse.streams.settings import AlertRule

RESOLVE_AFTER = 3

#: metric -> (successes stat, total: "n") for the two-proportion z-test
_PROPORTIONS = {
    "csat": "satisfied",
    "switch_intent": "top_box",
    "repurchase_intent": "top_box",
    "cart_abandonment": "abandoned",
    "checkout_abandonment": "abandoned",
    "ticket_sla_breach": "breached",
    "ticket_sla_breach_business": "breached",
    # cancellations / active at the window start: may exceed 1 (see z_score)
    "customer_churn": "cancelled",
}
#: Pearson correlations, compared by Fisher's z
_CORRELATIONS = frozenset(metric for metric, _, _ in CORRELATIONS)


@dataclass(frozen=True, slots=True)
class Evaluation:
    """One evaluation of a rule for one segment and short-window end."""

    condition: bool
    current: float | None
    baseline: float | None
    delta: float | None
    z: float | None
    n: int


def _value(rule: AlertRule, record: dict[str, Any]) -> float | None:
    value = record["stats"].get(rule.stat) if rule.stat else record["value"]
    return None if value is None else float(value)


def z_score(metric: str, current: dict[str, Any], baseline: dict[str, Any]) -> float | None:
    """Significance of current − baseline (positive when current is higher)."""
    n1, n2 = current["n"], baseline["n"]
    if not n1 or not n2:
        return None
    if metric == "nps":

        def variance(r: dict[str, Any]) -> float:
            s = r["stats"]
            p, d = s["promoters"] / r["n"], s["detractors"] / r["n"]
            return (p + d - (p - d) ** 2) * 100**2

        se = math.sqrt(variance(current) / n1 + variance(baseline) / n2)
        diff = current["value"] - baseline["value"]
        return None if se == 0 else diff / se
    if metric in _CORRELATIONS:
        return _fisher_z(current["value"], n1, baseline["value"], n2)
    successes = _PROPORTIONS.get(metric)
    if successes is None:
        return None
    x1, x2 = current["stats"][successes], baseline["stats"][successes]
    pooled = (x1 + x2) / (n1 + n2)
    if pooled > 1:  # not a proportion (customers started and cancelled inside the window)
        return None
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return None if se == 0 else (x1 / n1 - x2 / n2) / se


def _fisher_z(r1: float | None, n1: int, r2: float | None, n2: int) -> float | None:
    """Fisher's z of two independent correlations; ``None`` for |r| = 1 or n ≤ 3."""
    if r1 is None or r2 is None or n1 <= 3 or n2 <= 3 or abs(r1) >= 1 or abs(r2) >= 1:
        return None
    return (math.atanh(r1) - math.atanh(r2)) / math.sqrt(1 / (n1 - 3) + 1 / (n2 - 3))


def evaluate(
    rule: AlertRule, current: dict[str, Any], baseline: dict[str, Any] | None
) -> Evaluation:
    """Whether the rule's condition holds for this short window and baseline."""
    cur = _value(rule, current)
    base = None if baseline is None else _value(rule, baseline)
    n = current["n"]
    if cur is None or base is None or baseline is None:
        return Evaluation(False, cur, base, None, None, n)
    delta = base - cur if rule.direction == "drop" else cur - base
    needed = rule.threshold * abs(base) if rule.relative else rule.threshold
    z = z_score(rule.metric, current, baseline) if rule.z else None
    z_moved = None if z is None else (-z if rule.direction == "drop" else z)
    significant = rule.z == 0 or (z_moved is not None and z_moved >= rule.z)
    condition = delta >= needed and n >= rule.min_n and significant and delta > 0
    return Evaluation(condition, cur, base, delta, z_moved, n)


@dataclass(slots=True)
class AlertState:
    """Per (rule, segment): firing or not, and how many false evaluations in a row."""

    firing: bool = False
    false_streak: int = 0

    def step(self, condition: bool) -> str | None:
        """Apply one evaluation; returns ``"firing"`` or ``"resolved"`` on a transition."""
        if condition:
            self.false_streak = 0
            if not self.firing:
                self.firing = True
                return "firing"
            return None
        if self.firing:
            self.false_streak += 1
            if self.false_streak >= RESOLVE_AFTER:
                self.firing, self.false_streak = False, 0
                return "resolved"
        return None
