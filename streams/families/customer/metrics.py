"""Customer KPI math (SPEC §3.4): pure functions over integer counters, no Faust.

A bucket holds window counters (signups, leads, spend, starts, cancellations, MRR
flows) and two *level deltas*: ``ACTIVE`` (+1 at a start, −1 at a cancellation)
and ``MRR`` (the change of the customer's MRR). Summed over all history before a
time ``t`` they give the levels ``active(t)`` and ``mrr(t)``; the merge stage
hands :func:`window_kpis` those all-history prefix sums at the window's start and
end, and the window's own counters are their difference. Money is in integer
micro-units, so every sum is exact whatever the merge order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cxpulse.streams.family import Kpi

MICROS = 1_000_000
#: the "monthly" of monthly churn (SPEC §3.4: ``customer_churn × 30 d / size``)
MONTH_MS = 30 * 86_400_000


class K:
    """Counter slots of a customer bucket aggregate (plain ints: indexed per event)."""

    SIGNUPS = 0
    REFERRED = 1
    CONVERTED = 2  # signups with a lead_id
    LEADS = 3
    SPEND = 4  # micro-units
    SPEND_EVENTS = 5
    STARTED = 6  # starts, reactivations included
    CANCELLED = 7
    NEW = 8  # MRR flows, micro-units
    REACTIVATED = 9
    EXPANSION = 10
    CONTRACTION = 11
    CHURNED = 12
    ACTIVE = 13  # level delta: active customers
    MRR = 14  # level delta: MRR, micro-units


SLOTS = 1 + max(v for k, v in vars(K).items() if k.isupper())
LEVEL_METRICS = ("mrr", "customer_churn", "revenue_churn", "clv")


def to_micros(value: float) -> int:
    return round(value * MICROS)


def _money(micros: int) -> float:
    return micros / MICROS


def window_kpis(
    before: Sequence[int] | None,
    after: Sequence[int] | None,
    size_ms: int,
    gross_margin: float,
) -> list[Kpi]:
    """Every customer KPI of the window ``[E − size, E)``.

    ``before`` and ``after`` are the sums of every counter over all history before
    ``E − size`` and before ``E`` (``None``: nothing yet). Level metrics have a
    record once a subscription started before ``E``; counting metrics when the
    window has an observation.
    """
    if after is None:
        return []
    w = list(after) if before is None else [a - b for a, b in zip(after, before, strict=True)]
    out: list[Kpi] = []
    clv: float | None = None
    if after[K.STARTED] > 0:
        levels = _level_kpis(before, after, w, size_ms, gross_margin)
        clv = levels[-1].value
        out.extend(levels)
    if w[K.SIGNUPS]:
        referred, signups = w[K.REFERRED], w[K.SIGNUPS]
        stats = {"referred": referred, "signups": signups}
        out.append(Kpi("referral_rate", referred / signups, signups, stats))
    if w[K.CONVERTED] or w[K.LEADS]:
        converted, leads = w[K.CONVERTED], w[K.LEADS]
        value = converted / leads if leads else None
        out.append(Kpi("lead_conversion", value, leads, {"converted": converted, "leads": leads}))
    if w[K.SPEND_EVENTS] or w[K.SIGNUPS]:
        signups = w[K.SIGNUPS]
        cac = w[K.SPEND] / (MICROS * signups) if signups else None
        stats_cac = {"spend": _money(w[K.SPEND]), "signups": signups}
        out.append(Kpi("cac", cac, signups, stats_cac))
        ratio = clv / cac if clv is not None and cac else None
        out.append(Kpi("ltv_cac", ratio, signups, {"clv": clv, "cac": cac}))
    return out


def _level_kpis(
    before: Sequence[int] | None,
    after: Sequence[int],
    w: Sequence[int],
    size_ms: int,
    gross_margin: float,
) -> list[Kpi]:
    """``mrr``, ``customer_churn``, ``revenue_churn`` and ``clv``, in that order."""
    active_start = before[K.ACTIVE] if before is not None else 0
    mrr_start = before[K.MRR] if before is not None else 0
    active_end, mrr_end = after[K.ACTIVE], after[K.MRR]
    mrr_stats: dict[str, Any] = {
        "active": active_end,
        "new": _money(w[K.NEW]),
        "reactivated": _money(w[K.REACTIVATED]),
        "expansion": _money(w[K.EXPANSION]),
        "contraction": _money(w[K.CONTRACTION]),
        "churned": _money(w[K.CHURNED]),
    }
    cancelled = w[K.CANCELLED]
    churn = cancelled / active_start if active_start else None
    churn_stats = {
        "cancelled": cancelled,
        "started": w[K.STARTED],
        "active_start": active_start,
        "active_end": active_end,
    }
    lost = w[K.CHURNED] + w[K.CONTRACTION]
    kept = mrr_start + w[K.EXPANSION] - w[K.CONTRACTION] - w[K.CHURNED]
    revenue_stats = {
        "mrr_start": _money(mrr_start),
        "mrr_end": _money(mrr_end),
        "churned": _money(w[K.CHURNED]),
        "contraction": _money(w[K.CONTRACTION]),
        "expansion": _money(w[K.EXPANSION]),
        "new": _money(w[K.NEW]),
        "nrr": kept / mrr_start if mrr_start else None,
    }
    arpa = mrr_end / (MICROS * active_end) if active_end else None
    monthly = churn * (MONTH_MS / size_ms) if churn is not None else None
    clv = arpa * gross_margin / monthly if arpa is not None and monthly else None
    clv_stats = {"arpa": arpa, "monthly_churn": monthly, "gross_margin": gross_margin}
    return [
        Kpi("mrr", _money(mrr_end), active_end, mrr_stats),
        Kpi("customer_churn", churn, active_start, churn_stats),
        Kpi("revenue_churn", lost / mrr_start if mrr_start else None, active_start, revenue_stats),
        Kpi("clv", clv, active_start, clv_stats),
    ]
