"""The customer family's metrics (SPEC §3.4, §4.2)."""

from __future__ import annotations

from cxpulse.streams.catalogue import Gauge, Metric

METRICS: tuple[Metric, ...] = (
    Metric(
        "mrr",
        "customer",
        "currency per month",
        "Monthly recurring revenue of the active customers at the window end (a level)",
        ("active", "new", "reactivated", "expansion", "contraction", "churned"),
        (
            Gauge("cx_mrr", "Monthly recurring revenue at the window end", "value"),
            Gauge("cx_customers_active", "Active customers at the window end", "stats.active"),
        ),
    ),
    Metric(
        "customer_churn",
        "customer",
        "ratio",
        "Cancellations in the window / active customers at its start",
        ("cancelled", "started", "active_start", "active_end"),
        (
            Gauge(
                "cx_customer_churn_ratio",
                "Cancellations / active customers at the window start",
                "value",
            ),
        ),
    ),
    Metric(
        "revenue_churn",
        "customer",
        "ratio",
        "(Churned + contraction MRR) / MRR at the window start; nrr in stats",
        ("mrr_start", "mrr_end", "churned", "contraction", "expansion", "new", "nrr"),
        (
            Gauge(
                "cx_revenue_churn_ratio",
                "(Churned + contraction MRR) / MRR at the window start",
                "value",
            ),
            Gauge(
                "cx_net_revenue_retention_ratio",
                "Net revenue retention of the MRR at the window start",
                "stats.nrr",
            ),
        ),
    ),
    Metric(
        "referral_rate",
        "customer",
        "ratio (0..1)",
        "Signups with referred_by / signups",
        ("referred", "signups"),
        (Gauge("cx_referral_ratio", "Referred signups / signups", "value"),),
    ),
    Metric(
        "lead_conversion",
        "customer",
        "ratio (may exceed 1)",
        "Signups with a lead_id / lead_created events",
        ("converted", "leads"),
        (Gauge("cx_lead_conversion_ratio", "Signups from a lead / leads created", "value"),),
    ),
    Metric(
        "cac",
        "customer",
        "currency per signup",
        "Acquisition spend / signups (customer acquisition cost)",
        ("spend", "signups"),
        (Gauge("cx_cac", "Customer acquisition cost: spend / signups", "value"),),
    ),
    Metric(
        "clv",
        "customer",
        "currency",
        "ARPA x gross margin / monthly churn (customer lifetime value)",
        ("arpa", "monthly_churn", "gross_margin"),
        (Gauge("cx_clv", "Customer lifetime value", "value"),),
    ),
    Metric(
        "ltv_cac",
        "customer",
        "ratio",
        "clv / cac of the same window and segment",
        ("clv", "cac"),
        (Gauge("cx_ltv_cac_ratio", "Lifetime value / acquisition cost", "value"),),
    ),
)
