"""The cart family's metrics (SPEC §3.2, §4.2)."""

from __future__ import annotations

from cxpulse.streams.catalogue import Gauge, Metric

METRICS: tuple[Metric, ...] = (
    Metric(
        "cart_abandonment",
        "cart",
        "ratio (0..1)",
        "Abandoned / ended cart sessions",
        ("abandoned", "converted", "abandoned_value", "recovered", "recovered_value"),
        (
            Gauge("cx_cart_abandonment_ratio", "Abandoned / ended cart sessions", "value"),
            Gauge("cx_carts_abandoned", "Abandoned cart sessions", "stats.abandoned"),
            Gauge("cx_carts_converted", "Converted cart sessions", "stats.converted"),
            Gauge("cx_cart_abandoned_value", "Value of abandoned carts", "stats.abandoned_value"),
            Gauge("cx_carts_recovered", "Abandoned carts bought later", "stats.recovered"),
        ),
    ),
    Metric(
        "checkout_abandonment",
        "cart",
        "ratio (0..1)",
        "Abandoned / ended sessions that reached checkout",
        ("abandoned", "converted"),
        (
            Gauge(
                "cx_checkout_abandonment_ratio",
                "Abandoned / ended sessions that reached checkout",
                "value",
            ),
        ),
    ),
    Metric(
        "average_order_value",
        "cart",
        "money per order",
        "Order value / orders, orders being conversions and recoveries",
        ("orders", "revenue"),
        (
            Gauge(
                "cx_average_order_value",
                "Order value / orders (conversions and recoveries)",
                "value",
            ),
        ),
    ),
)
