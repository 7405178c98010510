"""Independent counts of a workload, and the check of the worker's final records against them.

A benchmark that only counts events per second would reward a fast wrong answer,
so every run ends with the worker's final records compared with numbers computed
here, from the produced events alone, without any code of the engine:

* survey: the NPS of every answer (promoters, passives, detractors);
* cart: every session's end (SPEC §3.2): converted at ``purchased``, abandoned
  ``abandon_after`` after its last event (the closing heartbeat ends the rest),
  and purchases within ``recovery_window`` of an abandonment as recoveries;
* ticket: ``created`` events, and those tagged ``complaint`` in any case.

Every event of a workload falls in the 30 days from ``DAY0``, so the ``30d/1d``
window ending at ``DAY0 + 30d`` (segment ``all``) holds all of them: its final
records are the totals counted here. Events must be fed in event-time order
(each cart's own events are then in order too), as the workloads release them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DAY_MS = 86_400_000
DAY0 = 1_795_046_400_000  # 2026-11-18T00:00:00Z, the workloads' first day
WINDOW = "30d/1d"
WINDOW_END_MS = DAY0 + 30 * DAY_MS
ABANDON_AFTER_MS = 30 * 60_000
RECOVERY_MS = 7 * DAY_MS

#: metric -> the topic family it verifies
CHECKED = {
    "nps": "survey",
    "cart_abandonment": "cart",
    "tickets_created": "ticket",
    "ticket_complaints": "ticket",
}


@dataclass
class _Cart:
    """A cart's open session (``last_ts`` set) or its last abandonment (``abandoned_at``)."""

    last_ts: int | None = None
    value: float = 0.0
    abandoned_at: int | None = None


@dataclass
class IndependentCounts:
    """Totals of the KPIs the benchmark verifies, fed one event at a time in event-time order."""

    promoters: int = 0
    passives: int = 0
    detractors: int = 0
    converted: int = 0
    abandoned: int = 0
    abandoned_values: list[float] = field(default_factory=list)
    recovered: int = 0
    recovered_values: list[float] = field(default_factory=list)
    created: int = 0
    complaints: int = 0
    _carts: dict[str, _Cart] = field(default_factory=dict, repr=False)

    def add(self, event: Mapping[str, Any]) -> None:
        kind = event["type"]
        if kind == "answer":
            if event["question"] == "nps":
                score = int(event["score"])
                if score >= 9:
                    self.promoters += 1
                elif score >= 7:
                    self.passives += 1
                else:
                    self.detractors += 1
        elif "cart_id" in event:
            self._cart(event)
        elif kind == "created":
            self.created += 1
            if any(str(tag).lower() == "complaint" for tag in event.get("tags") or ()):
                self.complaints += 1

    def _cart(self, event: Mapping[str, Any]) -> None:
        cart = self._carts.setdefault(event["cart_id"], _Cart())
        ts, value = int(event["ts"]), float(event["cart_value"])
        if cart.last_ts is not None and ts >= cart.last_ts + ABANDON_AFTER_MS:
            self._abandon(cart)
        if cart.last_ts is None:
            if (
                event["type"] == "purchased"
                and cart.abandoned_at is not None
                and ts - cart.abandoned_at <= RECOVERY_MS
            ):
                self.recovered += 1
                self.recovered_values.append(value)
                return  # the last session stays abandoned; no new session
            cart.abandoned_at = None
        cart.last_ts, cart.value = ts, value
        if event["type"] == "purchased":
            self.converted += 1
            cart.last_ts = None

    def _abandon(self, cart: _Cart) -> None:
        assert cart.last_ts is not None
        self.abandoned += 1
        self.abandoned_values.append(cart.value)
        cart.abandoned_at, cart.last_ts = cart.last_ts + ABANDON_AFTER_MS, None

    def finish(self) -> None:
        """The closing heartbeat passes every abandonment deadline: open sessions end."""
        for cart in self._carts.values():
            if cart.last_ts is not None:
                self._abandon(cart)

    def expected(self, families: tuple[str, ...]) -> dict[str, dict[str, Any]]:
        """``{metric: {"value", "n", "stats": {...}}}`` of the records to verify."""
        out: dict[str, dict[str, Any]] = {}
        n = self.promoters + self.passives + self.detractors
        if "survey" in families and n:
            out["nps"] = {
                "value": 100 * (self.promoters - self.detractors) / n,
                "n": n,
                "stats": {
                    "promoters": self.promoters,
                    "passives": self.passives,
                    "detractors": self.detractors,
                },
            }
        ended = self.abandoned + self.converted
        if "cart" in families and ended:
            out["cart_abandonment"] = {
                "value": self.abandoned / ended,
                "n": ended,
                "stats": {
                    "abandoned": self.abandoned,
                    "converted": self.converted,
                    "abandoned_value": math.fsum(self.abandoned_values),
                    "recovered": self.recovered,
                    "recovered_value": math.fsum(self.recovered_values),
                },
            }
        if "ticket" in families and self.created:
            out["tickets_created"] = {"value": self.created, "n": self.created, "stats": {}}
        if "ticket" in families and self.complaints:
            out["ticket_complaints"] = {
                "value": self.complaints,
                "n": self.complaints,
                "stats": {},
            }
        return out


def _same(got: Any, want: Any) -> bool:
    """Counts must be equal; sums of money and ratios within float rounding."""
    if isinstance(want, float) or isinstance(got, float):
        return (
            isinstance(got, (int, float))
            and not isinstance(got, bool)
            and math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9)
        )
    return bool(got == want)


def verify(
    expected: Mapping[str, Mapping[str, Any]], finals: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """Compare the worker's final records with the independent counts.

    ``finals`` maps a metric to the worker's final record of ``WINDOW``/``all``
    ending at ``WINDOW_END_MS``. Returns ``{"passed", "checks", "problems"}``;
    it passes only when every expected record is there and every figure matches.
    """
    checks: dict[str, Any] = {}
    problems: list[str] = []
    if not expected:
        problems.append("nothing to verify: the workload produced no countable events")
    for metric, want in expected.items():
        rec = finals.get(metric)
        got: dict[str, Any] | None = None
        if rec is None:
            problems.append(f"{metric}: no final {WINDOW} record for segment all")
        else:
            stats = rec.get("stats") or {}
            got = {
                "value": rec.get("value"),
                "n": rec.get("n"),
                "stats": {k: stats.get(k) for k in want["stats"]},
            }
            for name in ("value", "n"):
                if not _same(got[name], want[name]):
                    problems.append(f"{metric}.{name}: worker {got[name]}, expected {want[name]}")
            for name, value in want["stats"].items():
                if not _same(got["stats"][name], value):
                    problems.append(
                        f"{metric}.stats.{name}: worker {got['stats'][name]}, expected {value}"
                    )
        checks[metric] = {"expected": dict(want), "worker": got}
    return {"passed": not problems, "checks": checks, "problems": problems}
