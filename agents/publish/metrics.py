"""The worker's own Prometheus registry: health counters and gauges, plus the KPI gauges."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge

from cxpulse.agents.publish.gauges import KpiCollector, register_process_metrics
from cxpulse.agents.worker.runtime import Runtime

#: The outcomes of an input record counted by ``cx_events_total`` (SPEC §4.2).
OUTCOMES = ("accepted", "invalid", "duplicate", "late")


class Metrics:
    """The worker's own Prometheus registry: health counters plus the KPI collector."""

    def __init__(self, runtime: Runtime, source_topics: Iterable[str]) -> None:
        self.registry = CollectorRegistry()
        register_process_metrics(self.registry)
        self.events = Counter(
            "cx_events_total",
            "Input records by outcome (heartbeats not counted)",
            ["topic", "outcome"],
            registry=self.registry,
        )
        for topic in source_topics:
            for outcome in OUTCOMES:
                self.events.labels(topic, outcome)
        self.watermark = Gauge(
            "cx_watermark_timestamp_seconds",
            "Event-time watermark of each input topic",
            ["topic"],
            registry=self.registry,
        )
        self.lag = Gauge(
            "cx_consumer_lag",
            "Records in the partition not yet processed",
            ["topic", "partition"],
            registry=self.registry,
        )
        self.state = Gauge(
            "cx_state_entries",
            "Entries of the state this worker holds (tables mirror it): per input topic its"
            " entities, buckets and dedup ids; the merge stage's buckets",
            ["part", "kind"],
            registry=self.registry,
        )
        self.alert_firing = Gauge(
            "cx_alert_firing",
            "1 while an alert fires",
            ["alert", "channel"],
            registry=self.registry,
        )
        self.registry.register(
            KpiCollector(
                runtime.latest_records,
                runtime.settings.segments.dimensions,
                open_gauges=runtime.open_gauges,
            )
        )
