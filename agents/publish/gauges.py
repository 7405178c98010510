"""Prometheus exposition of the live KPIs (SPEC §4.2), read at scrape time.

The worker keeps the latest provisional record of each KPI series it owns; this
collector turns them into gauges when Prometheus scrapes, so there is no
per-event metric work and a series disappears as soon as its record does (a
null value, or a partition lost in a rebalance).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

# metric -> [(gauge name, help, where the number is: "value" | "n" | "stats.<name>", extra labels)]
Source = tuple[str, str, str, tuple[tuple[str, str], ...]]


def _duration_gauges(metric: str, what: str) -> list[Source]:
    return [
        (f"cx_{metric}", f"{what}, quantile over the window", "stats.p50", (("quantile", "0.5"),)),
        (f"cx_{metric}", f"{what}, quantile over the window", "stats.p90", (("quantile", "0.9"),)),
        (f"cx_{metric}_mean", f"{what}, mean over the window", "stats.mean", ()),
    ]


GAUGES: dict[str, list[Source]] = {
    "nps": [
        ("cx_nps_score", "Net Promoter Score, -100..100", "value", ()),
        ("cx_nps_margin_of_error", "95% margin of error of the NPS, points", "stats.moe95", ()),
        ("cx_nps_responses", "NPS answers behind the score", "n", ()),
    ],
    "csat": [
        ("cx_csat_ratio", "Share of CSAT answers scoring 4-5", "value", ()),
        ("cx_csat_mean_score", "Mean CSAT score, 1-5", "stats.mean", ()),
    ],
    "ces": [
        ("cx_ces_mean_score", "Mean Customer Effort Score, 1-7 (7 = very easy)", "value", ()),
        ("cx_ces_easy_ratio", "Share of CES answers scoring 5-7", "stats.easy_ratio", ()),
    ],
    "switch_intent": [("cx_switch_intent_ratio", "Share of switch answers 9-10", "value", ())],
    "repurchase_intent": [
        ("cx_repurchase_intent_ratio", "Share of repurchase answers 9-10", "value", ())
    ],
    "response_rate": [("cx_survey_response_ratio", "Survey responses / invitations", "value", ())],
    "cart_abandonment": [
        ("cx_cart_abandonment_ratio", "Abandoned / ended cart sessions", "value", ()),
        ("cx_carts_abandoned", "Abandoned cart sessions", "stats.abandoned", ()),
        ("cx_carts_converted", "Converted cart sessions", "stats.converted", ()),
        ("cx_cart_abandoned_value", "Value of abandoned carts", "stats.abandoned_value", ()),
        ("cx_carts_recovered", "Abandoned carts bought later", "stats.recovered", ()),
    ],
    "checkout_abandonment": [
        (
            "cx_checkout_abandonment_ratio",
            "Abandoned / ended sessions that reached checkout",
            "value",
            (),
        )
    ],
    "ticket_sla_breach": [
        ("cx_ticket_sla_breach_ratio", "First-response SLA breaches", "value", ())
    ],
    "ticket_sla_breach_business": [
        ("cx_ticket_sla_breach_business_ratio", "SLA breaches in business time", "value", ())
    ],
    "ticket_reopen": [("cx_ticket_reopen_ratio", "Reopened / solved tickets", "value", ())],
    "ticket_complaints": [("cx_ticket_complaints", "Tickets tagged complaint", "value", ())],
    "tickets_created": [("cx_tickets_created", "Tickets created", "value", ())],
}
for _m, _what in (
    ("ticket_first_response_seconds", "Seconds from ticket creation to first human reply"),
    ("ticket_first_resolution_seconds", "Seconds from creation to first solve"),
    ("ticket_full_resolution_seconds", "Seconds from creation to last solve before close"),
):
    GAUGES[_m] = _duration_gauges(_m, _what)
    GAUGES[f"{_m}_business"] = _duration_gauges(f"{_m}_business", _what + ", business time")


def _pick(record: Mapping[str, Any], where: str) -> Any:
    if where.startswith("stats."):
        return record["stats"].get(where[6:])
    return record[where]


def segment_labels(segment: str, dimensions: Sequence[str]) -> list[str]:
    """``channel=web`` → ``["web"]``; ``all`` → ``["all", ...]``; other dimensions read ``all``."""
    dim, _, value = segment.partition("=")
    return [value if d == dim else "all" for d in dimensions]


class KpiCollector(Collector):
    """Gauges from the latest records of the series this worker owns."""

    def __init__(
        self,
        latest: Callable[[], Iterator[Mapping[str, Any]]],
        dimensions: Sequence[str],
        open_gauges: Callable[[], Mapping[str, Mapping[str, int]]] | None = None,
    ) -> None:
        self._latest = latest
        self._dimensions = tuple(dimensions)
        self._open_gauges = open_gauges

    def collect(self) -> Iterator[Metric]:
        families: dict[str, GaugeMetricFamily] = {}
        for record in self._latest():
            for name, doc, where, extra in GAUGES.get(record["metric"], ()):
                value = _pick(record, where)
                if value is None:
                    continue
                fam = families.get(name)
                if fam is None:
                    labels = ["window", *self._dimensions, *(k for k, _ in extra)]
                    fam = families[name] = GaugeMetricFamily(name, doc, labels=labels)
                fam.add_metric(
                    [
                        record["window"],
                        *segment_labels(record["segment"], self._dimensions),
                        *(v for _, v in extra),
                    ],
                    float(value),
                )
        if self._open_gauges is not None:
            for name, by_channel in self._open_gauges().items():
                fam = GaugeMetricFamily(
                    name, f"{name} now (sum across workers)", labels=["channel"]
                )
                for channel, count in sorted(by_channel.items()):
                    fam.add_metric([channel], float(count))
                families[name] = fam
        yield from families.values()

    def describe(self) -> Iterator[Metric]:
        return iter(())
