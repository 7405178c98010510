"""Cart KPI math (SPEC §3.2): pure functions over integer counters, no Faust.

Money is counted in integer micro-units (value × 10⁶, rounded), so sums are exact
and independent of the order in which buckets and partitions are merged; the
published value is that integer / 10⁶.
"""

from __future__ import annotations

from collections.abc import Sequence

from cxpulse.streams.family import Kpi

MICROS = 1_000_000


class C:
    """Counter slots of a cart bucket aggregate.

    Plain ints, not an ``IntEnum``: every event indexes lists with them, and an enum
    member costs a lookup plus ``__index__`` each time (py-spy, ``benchmarks/profile.py``).
    """

    ABANDONED = 0
    CONVERTED = 1
    ABANDONED_VALUE = 2
    RECOVERED = 3
    RECOVERED_VALUE = 4
    CHECKOUT_ABANDONED = 5
    CHECKOUT_CONVERTED = 6
    CONVERTED_VALUE = 7  # order values of conversions (recoveries: RECOVERED_VALUE)


SLOTS = 1 + max(v for k, v in vars(C).items() if k.isupper())


def to_micros(value: float) -> int:
    return round(value * MICROS)


def _ratio(abandoned: int, converted: int) -> float | None:
    ended = abandoned + converted
    return abandoned / ended if ended else None


def cart_kpis(c: Sequence[int]) -> list[Kpi]:
    """Every cart KPI with at least one observation in the summed counters ``c``."""
    out: list[Kpi] = []
    if c[C.ABANDONED] or c[C.CONVERTED] or c[C.RECOVERED]:
        stats = {
            "abandoned": c[C.ABANDONED],
            "converted": c[C.CONVERTED],
            "abandoned_value": c[C.ABANDONED_VALUE] / MICROS,
            "recovered": c[C.RECOVERED],
            "recovered_value": c[C.RECOVERED_VALUE] / MICROS,
        }
        n = c[C.ABANDONED] + c[C.CONVERTED]
        out.append(Kpi("cart_abandonment", _ratio(c[C.ABANDONED], c[C.CONVERTED]), n, stats))
    if c[C.CHECKOUT_ABANDONED] or c[C.CHECKOUT_CONVERTED]:
        ab, conv = c[C.CHECKOUT_ABANDONED], c[C.CHECKOUT_CONVERTED]
        stats = {"abandoned": ab, "converted": conv}
        out.append(Kpi("checkout_abandonment", _ratio(ab, conv), ab + conv, stats))
    orders = c[C.CONVERTED] + c[C.RECOVERED]
    if orders:
        revenue = (c[C.CONVERTED_VALUE] + c[C.RECOVERED_VALUE]) / MICROS
        stats = {"orders": orders, "revenue": revenue}
        out.append(Kpi("average_order_value", revenue / orders, orders, stats))
    return out
