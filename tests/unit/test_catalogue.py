"""The metric catalogue is the one list of metrics: settings, gauges and docs read it."""

from __future__ import annotations

from pathlib import Path

from cxpulse.agents.publish.gauges import GAUGES
from cxpulse.streams.catalogue import Gauge, Metric, all_metrics, markdown, metric_table
from cxpulse.streams.settings import METRICS

ROOT = Path(__file__).resolve().parents[2]


def test_docs_metric_reference_is_generated_from_the_catalogue() -> None:
    assert (ROOT / "docs" / "metrics.md").read_text() == markdown(), (
        "regenerate: python -m cxpulse.streams.catalogue > docs/metrics.md"
    )


def test_settings_and_gauges_read_the_catalogue() -> None:
    names = set(all_metrics())
    assert set(METRICS) == names
    assert set(GAUGES) == names


def test_every_gauge_reads_a_field_the_record_has() -> None:
    for m in all_metrics().values():
        for g in m.gauges:
            assert g.name.startswith("cx_"), g.name
            field, _, stat = g.source.partition(".")
            assert field in ("value", "n", "stats"), g.source
            if field == "stats":
                assert stat in m.stats, (m.name, g.source)


def test_a_metric_declared_twice_is_refused() -> None:
    m = Metric("x", "f", "count", "x", (), ())
    try:
        metric_table([m, m])
    except ValueError as e:
        assert "twice" in str(e)
    else:
        raise AssertionError("a duplicate metric name was accepted")


def test_one_gauge_name_is_one_family_with_one_help_and_label_set() -> None:
    """``cx_ticket_first_response_seconds{stat=...}``: four entries, one Prometheus family."""
    p50 = Gauge("cx_x_seconds", "x", "stats.p50", (("stat", "p50"),))
    same = Metric(
        "x",
        "f",
        "seconds",
        "x",
        ("p50", "max"),
        (p50, Gauge("cx_x_seconds", "x", "stats.max", (("stat", "max"),))),
    )
    assert metric_table([same])["x"] is same
    for other in (
        Gauge("cx_x_seconds", "another help", "stats.max", (("stat", "max"),)),
        Gauge("cx_x_seconds", "x", "stats.max", (("quantile", "1"),)),
    ):
        try:
            metric_table([Metric("x", "f", "seconds", "x", ("p50", "max"), (p50, other))])
        except ValueError as e:
            assert "cx_x_seconds" in str(e)
        else:
            raise AssertionError(f"{other} was accepted beside {p50}")


def test_duration_gauges_use_the_stat_label() -> None:
    for m in all_metrics().values():
        for g in m.gauges:
            assert "quantile" not in dict(g.labels), g
            assert not g.name.endswith("_mean"), g
            if m.unit == "seconds":
                assert g.name.startswith(("cx_ticket_", "cx_ticket_business_")), g
                assert g.name.endswith("_seconds") and dict(g.labels)["stat"] == g.source[6:]
