"""The support-ticket family's metrics (SPEC §3.3, §4.2), business-time variants included."""

from __future__ import annotations

from cxpulse.streams.catalogue import Gauge, Metric

_DURATION_STATS = ("mean", "p50", "p90", "max")


def _duration(metric: str, gauge: str, what: str) -> Metric:
    """A duration metric: one gauge, its four stats told apart by the ``stat`` label.

    Not ``quantile``: Prometheus reserves that label for summaries (SPEC §4.2).
    """
    help_text = f"{what}; stat: p50, p90 (nearest rank), mean or max over the window"
    return Metric(
        metric,
        "ticket",
        "seconds",
        what,
        _DURATION_STATS,
        tuple(
            Gauge(gauge, help_text, f"stats.{stat}", (("stat", stat),))
            for stat in ("p50", "p90", "mean", "max")
        ),
    )


_DURATIONS = (
    ("ticket_first_response_seconds", "Seconds from ticket creation to first human reply"),
    ("ticket_first_resolution_seconds", "Seconds from creation to first solve"),
    ("ticket_full_resolution_seconds", "Seconds from creation to last solve before close"),
)

METRICS: tuple[Metric, ...] = (
    *(_duration(m, f"cx_{m}", what) for m, what in _DURATIONS),
    Metric(
        "ticket_sla_breach",
        "ticket",
        "ratio (0..1)",
        "First-response SLA breaches / (breaches + achieved)",
        ("breached", "achieved"),
        (Gauge("cx_ticket_sla_breach_ratio", "First-response SLA breaches", "value"),),
    ),
    Metric(
        "ticket_reopen",
        "ticket",
        "ratio",
        "Reopened / solved tickets",
        ("reopened", "solved"),
        (Gauge("cx_ticket_reopen_ratio", "Reopened / solved tickets", "value"),),
    ),
    Metric(
        "ticket_complaints",
        "ticket",
        "count",
        "Tickets created with tag complaint",
        (),
        (Gauge("cx_ticket_complaints", "Tickets tagged complaint", "value"),),
    ),
    Metric(
        "tickets_created",
        "ticket",
        "count",
        "Tickets created",
        (),
        (Gauge("cx_tickets_created", "Tickets created", "value"),),
    ),
    # business-time variants (only computed when [tickets.business_hours] is set): the
    # metric ``ticket_X_business`` (SPEC §3.3) is the gauge ``cx_ticket_business_X`` (§4.2),
    # so the unit stays the name's last word
    *(
        _duration(
            f"{m}_business",
            "cx_ticket_business_" + m.removeprefix("ticket_"),
            f"{what}, business time",
        )
        for m, what in _DURATIONS
    ),
    Metric(
        "ticket_sla_breach_business",
        "ticket",
        "ratio (0..1)",
        "First-response SLA breaches in business time",
        ("breached", "achieved"),
        (Gauge("cx_ticket_business_sla_breach_ratio", "SLA breaches in business time", "value"),),
    ),
)
