"""Prometheus exposition of the live KPIs (SPEC §4.2), read at scrape time.

The worker keeps the latest provisional record of each KPI series it owns; this
collector turns them into gauges when Prometheus scrapes, so there is no
per-event metric work and a series disappears as soon as its record does (a
null value, or a partition lost in a rebalance).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from cxpulse.streams.catalogue import Gauge, all_metrics
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

#: KPI metric -> the gauges its records feed (the catalogue, read once).
GAUGES: dict[str, tuple[Gauge, ...]] = {name: m.gauges for name, m in all_metrics().items()}


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
            for gauge in GAUGES.get(record["metric"], ()):
                name, extra = gauge.name, gauge.labels
                value = _pick(record, gauge.source)
                if value is None:
                    continue
                fam = families.get(name)
                if fam is None:
                    labels = ["window", *self._dimensions, *(k for k, _ in extra)]
                    fam = families[name] = GaugeMetricFamily(name, gauge.help, labels=labels)
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
