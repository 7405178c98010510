"""Prometheus exposition of KPI records (SPEC §4.2): names, labels, null values."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from cxpulse.agents.publish.gauges import KpiCollector, build_version, register_process_metrics


def _scrape(records: list[dict[str, Any]], open_gauges: Any = None) -> dict[Any, float]:
    registry = CollectorRegistry()
    registry.register(KpiCollector(lambda: iter(records), ("channel",), open_gauges=open_gauges))
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


def test_duration_records_become_one_gauge_with_a_stat_label() -> None:
    rec = {
        "metric": "ticket_first_response_seconds_business",
        "window": "1h/1m",
        "segment": "channel=web",
        "window_end": "2026-11-23T11:00:00.000Z",
        "value": 60.0,
        "n": 3,
        "stats": {"mean": 70.0, "p50": 60.0, "p90": 120.0, "max": 130.0},
    }
    got = _scrape([rec])
    name = "cx_ticket_business_first_response_seconds"
    stats = {
        dict(labels)["stat"]: value
        for (metric, labels), value in got.items()
        if metric == name and dict(labels)["window"] == "1h/1m" and ("channel", "web") in labels
    }
    assert stats == {"p50": 60.0, "p90": 120.0, "mean": 70.0, "max": 130.0}
    assert not any("quantile" in dict(labels) for _, labels in got)
    assert not any(metric.endswith("_mean") for metric, _ in got)


def test_window_end_is_the_as_of_time_of_each_window() -> None:
    """``cx_kpi_window_end_timestamp_seconds{window}``: the oldest end among the window's
    records (a topic behind the others makes the whole window's "as of" older)."""

    def rec(metric: str, window: str, end: str) -> dict[str, Any]:
        return {
            "metric": metric,
            "window": window,
            "segment": "all",
            "window_end": end,
            "value": 1.0,
            "n": 1,
            "stats": {},
        }

    records = [
        rec("tickets_created", "1h/1m", "2026-11-23T11:00:00.000Z"),
        rec("ticket_complaints", "1h/1m", "2026-11-23T10:58:00.000Z"),
        rec("tickets_created", "24h/15m", "2026-11-24T00:00:00.000Z"),
    ]
    got = _scrape(records)
    name = "cx_kpi_window_end_timestamp_seconds"
    assert got[(name, (("window", "1h/1m"),))] == 1_795_431_480.0  # 10:58Z
    assert got[(name, (("window", "24h/15m"),))] == 1_795_478_400.0
    assert len([k for k in got if k[0] == name]) == 2
    assert not any(k[0] == name for k in _scrape([]))


def test_a_null_value_removes_the_series_and_all_is_a_label_value() -> None:
    records = [
        {
            "metric": "ticket_sla_breach",
            "window": "1h/1m",
            "segment": "all",
            "window_end": "2026-11-23T11:00:00.000Z",
            "value": 0.25,
            "n": 4,
            "stats": {"breached": 1, "achieved": 3},
        },
        {
            "metric": "ticket_reopen",
            "window": "1h/1m",
            "segment": "all",
            "window_end": "2026-11-23T11:00:00.000Z",
            "value": None,
            "n": 0,
            "stats": {"reopened": 2, "solved": 0},
        },
    ]
    got = _scrape(records, open_gauges=lambda: {"cx_tickets_open": {"all": 5, "app": 2}})
    labels = (("channel", "all"), ("window", "1h/1m"))
    assert got[("cx_ticket_sla_breach_ratio", labels)] == 0.25
    assert not any(name == "cx_ticket_reopen_ratio" for name, _ in got)
    assert got[("cx_tickets_open", (("channel", "app"),))] == 2


def test_process_and_build_info_and_no_created_series() -> None:
    registry = CollectorRegistry()
    register_process_metrics(registry)
    Counter("cx_events_total", "x", ["topic"], registry=registry).labels("t").inc()
    names = {
        s.name
        for fam in text_string_to_metric_families(generate_latest(registry).decode())
        for s in fam.samples
    }
    assert "cx_events_total" in names and "cx_events_created" not in names
    assert not [n for n in names if n.endswith("_created")], names
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes"} <= names
    assert registry.get_sample_value("cx_build_info", {"version": build_version()}) == 1.0
    assert build_version() != "0+unknown"  # the editable install is a real distribution
