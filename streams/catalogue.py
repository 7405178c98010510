"""The metric catalogue: every KPI's name, unit, stats and Prometheus gauges, in one place.

Each family declares its metrics in its own ``catalogue.py``; this module gathers
them. Settings (which metrics an alert rule may watch), the gauge exposition and
the metric reference in ``docs/metrics.md`` all read it, so a metric is named once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

#: Labels a gauge adds to ``window`` and the segment dimensions: ``(("stat", "p50"),)``.
Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Gauge:
    """One Prometheus gauge fed by a KPI record.

    ``source`` says where the number is in the record: ``value``, ``n`` or
    ``stats.<name>``; a null there removes the series.
    """

    name: str
    help: str
    source: str
    labels: Labels = ()


@dataclass(frozen=True, slots=True)
class Metric:
    """One KPI metric of the contract (SPEC §3)."""

    name: str
    family: str
    unit: str
    description: str
    stats: tuple[str, ...]
    gauges: tuple[Gauge, ...]


def metric_table(metrics: Iterable[Metric]) -> dict[str, Metric]:
    """Metrics by name; a name given twice is a programming error.

    So is a gauge name whose entries disagree on help or label names: they are one
    Prometheus family (``cx_ticket_first_response_seconds{stat=...}``), with one help
    text and one label set.
    """
    table: dict[str, Metric] = {}
    families: dict[str, tuple[str, tuple[str, ...]]] = {}
    for m in metrics:
        if m.name in table:
            raise ValueError(f"metric {m.name!r} is declared twice")
        table[m.name] = m
        for g in m.gauges:
            shape = (g.help, tuple(k for k, _ in g.labels))
            if families.setdefault(g.name, shape) != shape:
                raise ValueError(f"gauge {g.name!r}: entries differ in help or label names")
    return table


def all_metrics() -> dict[str, Metric]:
    """Every metric of every family, business-time variants included, by name."""
    from cxpulse.streams.families.cart.catalogue import METRICS as CART
    from cxpulse.streams.families.customer.catalogue import METRICS as CUSTOMER
    from cxpulse.streams.families.survey.catalogue import METRICS as SURVEY
    from cxpulse.streams.families.ticket.catalogue import METRICS as TICKET

    return metric_table((*SURVEY, *CART, *TICKET, *CUSTOMER))


def markdown() -> str:
    """The metric reference (``docs/metrics.md``), generated from the catalogue."""
    lines = [
        "# Metrics",
        "",
        "Generated from the catalogue (`streams/catalogue.py` and each family's",
        "`catalogue.py`) by `python -m cxpulse.streams.catalogue > docs/metrics.md`;",
        "a test fails when this file and the catalogue differ. Formulas: [spec.md](spec.md) §3.",
        "",
        "| metric | family | unit | stats | Prometheus gauges (`source`) |",
        "|---|---|---|---|---|",
    ]
    for m in all_metrics().values():
        gauges = "<br>".join(
            f"`{g.name}"
            + ("{" + ",".join(f'{k}="{v}"' for k, v in g.labels) + "}" if g.labels else "")
            + f"` ({g.source})"
            for g in m.gauges
        )
        stats = ", ".join(f"`{s}`" for s in m.stats)
        lines.append(f"| `{m.name}` | {m.family} | {m.unit} | {stats} | {gauges} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover - the docs generator
    print(markdown(), end="")
