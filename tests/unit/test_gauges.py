"""Prometheus exposition of KPI records (SPEC §4.2): names, labels, null values."""

from __future__ import annotations

from typing import Any

from cxpulse.agents.publish.gauges import KpiCollector
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families


def _scrape(records: list[dict[str, Any]], open_gauges: Any = None) -> dict[Any, float]:
    registry = CollectorRegistry()
    registry.register(KpiCollector(lambda: iter(records), ("channel",), open_gauges=open_gauges))
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


def test_duration_records_become_quantile_and_mean_series() -> None:
    rec = {
        "metric": "ticket_first_response_seconds_business",
        "window": "1h/1m",
        "segment": "channel=web",
        "value": 60.0,
        "n": 3,
        "stats": {"mean": 70.0, "p50": 60.0, "p90": 120.0, "max": 130.0},
    }
    got = _scrape([rec])
    base = (("channel", "web"), ("window", "1h/1m"))
    name = "cx_ticket_first_response_seconds_business"
    assert got[(name, (*base[:1], ("quantile", "0.5"), base[1]))] == 60.0
    assert got[(name, (*base[:1], ("quantile", "0.9"), base[1]))] == 120.0
    assert got[(name + "_mean", base)] == 70.0


def test_a_null_value_removes_the_series_and_all_is_a_label_value() -> None:
    records = [
        {
            "metric": "ticket_sla_breach",
            "window": "1h/1m",
            "segment": "all",
            "value": 0.25,
            "n": 4,
            "stats": {"breached": 1, "achieved": 3},
        },
        {
            "metric": "ticket_reopen",
            "window": "1h/1m",
            "segment": "all",
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
