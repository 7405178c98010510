"""The support-ticket family's metrics (SPEC §3.3, §4.2), business-time variants included."""

from __future__ import annotations

from cxpulse.streams.catalogue import Gauge, Metric

_DURATION_STATS = ("mean", "p50", "p90", "max")


def _duration(metric: str, what: str) -> Metric:
    return Metric(
        metric,
        "ticket",
        "seconds",
        what,
        _DURATION_STATS,
        (
            Gauge(
                f"cx_{metric}",
                f"{what}, quantile over the window",
                "stats.p50",
                (("quantile", "0.5"),),
            ),
            Gauge(
                f"cx_{metric}",
                f"{what}, quantile over the window",
                "stats.p90",
                (("quantile", "0.9"),),
            ),
            Gauge(f"cx_{metric}_mean", f"{what}, mean over the window", "stats.mean"),
        ),
    )


_DURATIONS = (
    ("ticket_first_response_seconds", "Seconds from ticket creation to first human reply"),
    ("ticket_first_resolution_seconds", "Seconds from creation to first solve"),
    ("ticket_full_resolution_seconds", "Seconds from creation to last solve before close"),
)

METRICS: tuple[Metric, ...] = (
    *(_duration(m, what) for m, what in _DURATIONS),
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
    # business-time variants (only computed when [tickets.business_hours] is set)
    *(_duration(f"{m}_business", f"{what}, business time") for m, what in _DURATIONS),
    Metric(
        "ticket_sla_breach_business",
        "ticket",
        "ratio (0..1)",
        "First-response SLA breaches in business time",
        ("breached", "achieved"),
        (Gauge("cx_ticket_sla_breach_business_ratio", "SLA breaches in business time", "value"),),
    ),
)
