"""Prometheus exposition of the live KPIs (SPEC §4.2), read at scrape time.

The worker keeps the latest provisional record of each KPI series it owns; this
collector turns them into gauges when Prometheus scrapes, so there is no
per-event metric work and a series disappears as soon as its record does (a
null value, or a partition lost in a rebalance).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from cxpulse.schemas.timestamps import parse_ts
from cxpulse.streams.catalogue import Gauge, all_metrics

#: Per window: the end of the window its KPI gauges describe (SPEC §4.2).
WINDOW_END = "cx_kpi_window_end_timestamp_seconds"

#: KPI metric -> the gauges its records feed (the catalogue, read once).
GAUGES: dict[str, tuple[Gauge, ...]] = {name: m.gauges for name, m in all_metrics().items()}


def _pick(record: Mapping[str, Any], where: str) -> Any:
    if where.startswith("stats."):
        return record["stats"].get(where[6:])
    return record[where]


def _seconds(text: str) -> float:
    """A record's RFC 3339 time as unix seconds."""
    ms = parse_ts(text)
    if ms is None:
        raise ValueError(f"not a record time: {text!r}")
    return ms / 1000.0


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
        #: window -> the oldest window end among its records (ISO text sorts as time)
        ends: dict[str, str] = {}
        for record in self._latest():
            window, end = record["window"], record["window_end"]
            if window not in ends or end < ends[window]:
                ends[window] = end
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
        if ends:
            fam = families[WINDOW_END] = GaugeMetricFamily(
                WINDOW_END,
                "End of the window the KPI gauges of this window describe (unix seconds):"
                " the wall's 'as of'; the oldest one when topics are at different times",
                labels=["window"],
            )
            for window, end in sorted(ends.items()):
                fam.add_metric([window], _seconds(end))
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


def build_version() -> str:
    """The installed cxpulse version (``0+unknown`` when run from an uninstalled tree)."""
    try:
        return version("cxpulse")
    except PackageNotFoundError:
        return "0+unknown"


def register_process_metrics(registry: CollectorRegistry) -> None:
    """``process_*``, ``python_info`` and ``cx_build_info{version}`` on ``registry``,
    and no ``*_created`` series (``cx_events_created``: a counter's creation time, a
    series per label set that no dashboard or rule reads).

    ``disable_created_metrics`` is process-wide in prometheus_client: it applies to
    every counter of the worker, which is what a worker wants.
    """
    disable_created_metrics()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    Info("cx_build", "The cxpulse build this worker runs", registry=registry).info(
        {"version": build_version()}
    )
